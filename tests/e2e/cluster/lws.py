"""Upstream CRDs and the LeaderWorkerSet controller, on the local control plane.

Role: `install_crds` creates the CRDs copied from the upstream Go modules (addons.py) and waits
until each is Established; `LwsController` runs the LWS controller manager built from
`sigs.k8s.io/lws` against the cluster, with its own admission webhooks (the pod webhook labels a
group's pods, which the controller needs to create the worker pods) served on 127.0.0.1 with a
certificate from the cluster's CA. Callers: the session fixtures in tests/e2e/conftest.py.

The webhook configurations are LWS's own (config/webhook/manifests.yaml in the module), with
`clientConfig.service` replaced by a loopback `url` and the pod webhooks limited to pods that carry
the LWS name label (as LWS's kustomize patch does), so no other test's pods ever reach it.
"""

from __future__ import annotations

import base64
import copy
import shutil
import ssl
import urllib.request
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from kubernetes import client, utils
from kubernetes.client.exceptions import ApiException

from .local_cluster import LocalCluster
from .pki import Pki
from .procs import ManagedProcess, free_port

LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def install_crds(cluster: LocalCluster, files: list[Path], timeout_s: float = 60.0) -> list[str]:
    """Create each CRD (an existing one is left as it is) and wait until all are Established."""
    ext = client.ApiextensionsV1Api(cluster.api_client)
    names = []
    for path in files:
        for doc in _documents(path):
            names.append(doc["metadata"]["name"])
            try:
                utils.create_from_dict(cluster.api_client, doc)  # type: ignore[no-untyped-call]
            except utils.FailToCreateError as exc:
                if {getattr(e, "status", None) for e in exc.api_exceptions} != {409}:
                    raise

    def established() -> bool:
        for name in names:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    cluster.wait_for(established, what=f"CRDs established: {', '.join(names)}", timeout_s=timeout_s)
    return names


class LwsController:
    """The LWS controller manager and its webhooks; `start()` returns once the webhooks answer."""

    def __init__(self, cluster: LocalCluster, binary: Path, webhooks_yaml: Path) -> None:
        self.cluster = cluster
        self.binary = binary
        self.webhooks_yaml = webhooks_yaml
        self.root = cluster.layout.root / "lws"
        self.port = free_port()
        self.health_port = free_port()
        self.proc: ManagedProcess | None = None
        self.webhook_names: list[tuple[str, str]] = []

    def start(self) -> LwsController:
        self.root.mkdir(parents=True, exist_ok=True)
        certs = self.root / "certs"
        certs.mkdir(exist_ok=True)
        pki = Pki(self.cluster.layout.pki)
        cert = pki.issue("lws-webhook", "/CN=lws-webhook", server_sans=["IP:127.0.0.1"])
        shutil.copy(cert.cert, certs / "tls.crt")
        shutil.copy(cert.key, certs / "tls.key")
        config = self.root / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "config.lws.x-k8s.io/v1alpha1",
                    "kind": "Configuration",
                    "leaderElection": {"leaderElect": False},
                    "internalCertManagement": {"enable": False},
                    "webhook": {"port": self.port, "host": "127.0.0.1", "certDir": str(certs)},
                    "metrics": {"bindAddress": "0"},
                    "health": {"healthProbeBindAddress": f"127.0.0.1:{self.health_port}"},
                }
            )
        )
        argv = [
            str(self.binary),
            f"--config={config}",
            f"--kubeconfig={self.cluster.kubeconfig_path}",
            "--zap-log-level=info",
        ]
        self.proc = ManagedProcess("lws-controller", argv, self.cluster.log_dir / "lws-controller.log")
        self.proc.start()
        ca = pki.ca_cert.read_bytes()
        self._register_webhooks(base64.b64encode(ca).decode())
        context = ssl.create_default_context(cafile=str(pki.ca_cert))

        def serving() -> bool:
            assert self.proc is not None
            self.proc.check_running()
            url = f"https://127.0.0.1:{self.port}/healthz"
            try:  # any HTTP answer from the webhook server means it serves TLS with our cert
                urllib.request.urlopen(url, context=context, timeout=2)
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
            return True

        self.cluster.wait_for(serving, what="LWS webhook server", timeout_s=60)
        return self

    def _register_webhooks(self, ca_bundle: str) -> None:
        admission = client.AdmissionregistrationV1Api(self.cluster.api_client)
        for doc in _documents(self.webhooks_yaml):
            body = copy.deepcopy(doc)
            body["metadata"]["name"] = f"inferno-e2e-lws-{doc['metadata']['name']}"
            for hook in body["webhooks"]:
                path = hook["clientConfig"]["service"]["path"]
                hook["clientConfig"] = {"url": f"https://127.0.0.1:{self.port}{path}", "caBundle": ca_bundle}
                if any(r.get("resources") == ["pods"] for r in hook.get("rules", [])):
                    hook["objectSelector"] = {
                        "matchExpressions": [{"key": LWS_NAME_LABEL, "operator": "Exists"}]
                    }
            if doc["kind"] == "MutatingWebhookConfiguration":
                admission.create_mutating_webhook_configuration(body)
            else:
                admission.create_validating_webhook_configuration(body)
            self.webhook_names.append((doc["kind"], body["metadata"]["name"]))

    def stop(self) -> None:
        """Remove the webhooks first (so no pod creation waits on a stopped server), then stop."""
        admission = client.AdmissionregistrationV1Api(self.cluster.api_client)
        for kind, name in self.webhook_names:
            try:
                if kind == "MutatingWebhookConfiguration":
                    admission.delete_mutating_webhook_configuration(name)
                else:
                    admission.delete_validating_webhook_configuration(name)
            except (ApiException, OSError):
                pass  # the cluster may be stopping too
        self.webhook_names = []
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
