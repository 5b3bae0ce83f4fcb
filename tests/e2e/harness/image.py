"""The container image, built by scripts/build-image.sh and run as manifests/deployment.yaml says.

Role: `build_image` runs the project's build script (buildah; the Debian base made once with
mmdebstrap and kept in ~/.cache/inferno-image) and returns its exit code and log. `ImagePod`
starts the Deployment's containers in one podman pod on the host's network, each with the
manifest's args, env and security settings translated to podman flags (uid/gid, read-only root,
no privilege escalation, capabilities dropped, the emptyDir as a tmpfs, the Secret and the
ServiceAccount token mounted where the services read them); a setting it cannot translate is an
error, so the manifest and the test cannot drift apart silently. The test overrides only what a
shared machine needs: loopback ports, Prometheus and namespaces, and the scenario's short windows.
Callers: tests/e2e/test_image.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..cluster.procs import LOOPBACK, free_port, wait_for
from .data import REPO
from .rbac import manifest_documents

BUILD_SCRIPT = REPO / "scripts" / "build-image.sh"
TOOLS = ("buildah", "podman", "mmdebstrap", "catatonit", "runc")
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def podman_env() -> dict[str, str]:
    """This process's environment plus the storage and engine configuration the build script keeps."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-env"], check=True, capture_output=True, text=True
    ).stdout
    env = dict(os.environ)
    env.update(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return env


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def build_image(
    tag: str, *, context: Path = REPO, target: str = "", env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`scripts/build-image.sh --tag TAG` (stdout and stderr together); never raises on failure."""
    argv = ["bash", str(BUILD_SCRIPT), "--tag", tag, "--context", str(context)]
    if target:
        argv += ["--target", target]
    return subprocess.run(
        ["nice", "-n", "10", *argv],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=3600,
        check=False,
    )


def podman(*args: str, check: bool = True, timeout_s: float = 300) -> str:
    done = subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return done.stdout


def autoscaler_deployment() -> dict[str, Any]:
    [deployment] = [d for d in manifest_documents("deployment.yaml") if d.get("kind") == "Deployment"]
    return deployment


def write_secret_dir(path: Path, files: Mapping[str, str], gid: int) -> Path:
    """A mounted Secret as the kubelet makes it with fsGroup and defaultMode 0440: readable by the
    pod's group only."""
    path.mkdir(parents=True)
    os.chown(path, 0, gid)
    path.chmod(0o750)
    for name, text in files.items():
        file = path / name
        file.write_text(text)
        os.chown(file, 0, gid)
        file.chmod(0o440)
    return path


class ImagePod:
    """The manifest's pod template as a podman pod on the host's network."""

    def __init__(
        self,
        image: str,
        name: str,
        namespace: str,
        *,
        secrets: Mapping[str, Path],
        service_account_dir: Path,
        apiserver: tuple[str, int],
        overrides: Mapping[str, str],
    ) -> None:
        self.image = image
        self.name = name
        self.namespace = namespace
        self.secrets = secrets  # Secret name -> host directory with its files
        self.service_account_dir = service_account_dir
        self.apiserver = apiserver
        self.overrides = overrides
        self.ports = {n: free_port() for n in ("controller", "collector", "optimizer", "actuator")}
        self.template: dict[str, Any] = autoscaler_deployment()["spec"]["template"]
        self.containers: list[str] = []

    # --- manifest -> podman ------------------------------------------------------------------
    def run_args(self, container: dict[str, Any]) -> list[str]:
        """`podman run` arguments for one container of the pod template."""
        spec = self.template["spec"]
        pod_sc: dict[str, Any] = dict(spec.get("securityContext", {}))
        sc: dict[str, Any] = dict(container.get("securityContext", {}))
        uid, gid = (
            sc.pop("runAsUser", pod_sc.pop("runAsUser")),
            sc.pop("runAsGroup", pod_sc.pop("runAsGroup")),
        )
        args = ["--user", f"{uid}:{gid}"]
        if sc.pop("runAsNonRoot", pod_sc.pop("runAsNonRoot", False)) and int(uid) == 0:
            raise ValueError("runAsNonRoot with uid 0")
        if "fsGroup" in pod_sc:
            args += ["--group-add", str(pod_sc.pop("fsGroup"))]
        if pod_sc.pop("seccompProfile", {"type": "RuntimeDefault"}) != {"type": "RuntimeDefault"}:
            raise ValueError("only the RuntimeDefault seccomp profile (podman's default) is translated")
        if sc.pop("readOnlyRootFilesystem", False):
            args += ["--read-only", "--read-only-tmpfs=false"]
        if sc.pop("allowPrivilegeEscalation", True) is False:
            args += ["--security-opt", "no-new-privileges"]
        caps: dict[str, list[str]] = sc.pop("capabilities", {})
        args += [a for cap in caps.pop("drop", []) for a in ("--cap-drop", cap)]
        args += [a for cap in caps.pop("add", []) for a in ("--cap-add", cap)]
        if sc or pod_sc or caps:
            raise ValueError(f"security settings the test does not translate: {sc} {pod_sc} {caps}")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if "emptyDir" in volume:
                size = volume["emptyDir"].get("sizeLimit", "64Mi").replace("Mi", "m")
                args += ["--tmpfs", f"{mount['mountPath']}:rw,nosuid,nodev,size={size},mode=1777"]
            elif "secret" in volume:
                source = self.secrets[volume["secret"]["secretName"]]
                args += ["--volume", f"{source}:{mount['mountPath']}:ro"]
            else:
                raise ValueError(f"volume type the test does not translate: {volume}")
        if spec.get("automountServiceAccountToken", True):
            host, port = self.apiserver
            args += ["--volume", f"{self.service_account_dir}:{SA_DIR}:ro"]
            args += ["--env", f"KUBERNETES_SERVICE_HOST={host}", "--env", f"KUBERNETES_SERVICE_PORT={port}"]
        for key, value in self.env(container).items():
            args += ["--env", f"{key}={value}"]
        return [*args, self.image, *container.get("args", [])]

    def env(self, container: dict[str, Any]) -> dict[str, str]:
        fields = {"metadata.name": self.name, "metadata.namespace": self.namespace}
        env: dict[str, str] = {}
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = str(item["value"])
            else:
                env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
        env.update(self.overrides)
        for name, port in self.ports.items():
            env[f"INFERNO_{name.upper()}_PORT"] = str(port)
            if name != "controller":
                env[f"INFERNO_CONTROLLER_{name.upper()}_PORT"] = str(port)
        return env

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout_s: float = 120.0) -> ImagePod:
        podman("pod", "create", "--name", self.name, "--network", "host")
        try:
            for container in self.template["spec"]["containers"]:
                name = f"{self.name}-{container['name']}"
                podman("run", "--detach", "--pod", self.name, "--name", name, *self.run_args(container))
                self.containers.append(name)
            for container in self.template["spec"]["containers"]:
                self._wait_ready(container, timeout_s)
        except BaseException:
            logs = self.logs()
            self.stop()
            raise RuntimeError(f"the pod did not come up\n{logs}") from None
        return self

    def _wait_ready(self, container: dict[str, Any], timeout_s: float) -> None:
        """The container's readinessProbe (httpGet on a named port), as the kubelet runs it."""
        probe = container["readinessProbe"]["httpGet"]
        port = self.ports[probe["port"]]
        url = f"http://{LOOPBACK}:{port}{probe['path']}"
        name = f"{self.name}-{container['name']}"

        def ready() -> bool:
            state = podman("inspect", "--format", "{{.State.Status}}", name).strip()
            if state not in {"running", "created", "configured"}:
                raise RuntimeError(f"{name} is {state}\n{self.logs()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    return bool(resp.status == 200)
            except (urllib.error.URLError, ConnectionError):
                return False

        wait_for(ready, what=f"{name} ready at {url}", timeout_s=timeout_s, interval_s=0.5)

    def inspect(self, container: str) -> dict[str, Any]:
        [info] = json.loads(podman("inspect", f"{self.name}-{container}"))
        return dict(info)

    def logs(self, lines: int = 40) -> str:
        parts = []
        for name in self.containers:
            out = subprocess.run(
                ["podman", "logs", "--tail", str(lines), name],
                env=podman_env(), capture_output=True, text=True, check=False, timeout=60,
            )  # fmt: skip
            parts.append(f"--- {name}\n{out.stdout}{out.stderr}")
        return "\n".join(parts)

    def stop(self) -> None:
        podman("pod", "rm", "--force", "--time", "5", self.name, check=False)
        self.containers.clear()
