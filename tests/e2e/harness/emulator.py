"""The load emulator (`python -m load_emulator serve --kube`) as a child process, scraped by Prometheus.

Role: `Emulator` runs the emulated vLLM fleet over the Deployments of the local cluster (it reads
them through the admin kubeconfig), and a small thread copies the emulator's `/targets` list
(one target per pod, with `__metrics_path__`, `namespace`, `deployment`, `pod`) into the local
Prometheus' file_sd targets, keeping only the scenario's namespaces. This stands in for the
pod-role Kubernetes discovery plus relabelling a real cluster would use (collector/README.md).
Faults: `hidden` pods are left out of the targets (a pod dropped from the scrape), and `redirect`
sends one pod's scrape to another address (a `harness.faults.ScrapeProxy` in front of it).
With `gateway`, each Deployment's gateway counter (`/gateway/targets`, there at zero replicas too)
is scraped as well: the demand signal of scale-from-zero (collector/wake.py).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from ..cluster.local_cluster import LocalCluster
from ..cluster.procs import LOOPBACK, ManagedProcess, free_port, wait_for
from ..cluster.prometheus import LocalPrometheus, ScrapeTarget
from .data import REPO, ServerSpec, emulator_samples


class Emulator:
    def __init__(
        self,
        cluster: LocalCluster,
        prometheus: LocalPrometheus,
        work_dir: Path,
        servers: list[ServerSpec],
        cards: dict[str, int],
        *,
        namespaces: Sequence[str],
        pattern: str = "constant",
        params: dict[str, str] | None = None,
        gateway: bool = False,
    ) -> None:
        self.prometheus = prometheus
        self.gateway = gateway
        self.namespaces = set(namespaces)
        self.port = free_port()
        samples = emulator_samples(work_dir / "emulator-samples", servers, cards)
        argv = [sys.executable, "-m", "load_emulator", "serve", str(samples), "--kube",
                "--port", str(self.port), "--pattern", pattern, "--startup-delay-s", "0",
                "--duration-s", "900", "--tokens", "deterministic"]  # fmt: skip
        for key, value in (params or {}).items():
            argv += ["--param", f"{key}={value}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        env.update({"KUBECONFIG": str(cluster.kubeconfig_path), "PYTHONPATH": str(REPO)})
        self._proc = ManagedProcess("load-emulator", argv, work_dir / "load-emulator.log", env=env)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sync_loop, name="emulator-targets", daemon=True)
        self.targets: list[ScrapeTarget] = []
        self.hidden: set[str] = set()  # pod names left out of the scrape
        self.redirect: dict[str, str] = {}  # pod name -> the address that scrapes it instead

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Emulator:
        self._proc.start()
        try:
            wait_for(self._healthy, what="load emulator serving", timeout_s=30, interval_s=0.2)
        except BaseException:
            self._proc.stop()
            raise
        self._thread.start()
        return self

    def _healthy(self) -> bool:
        self._proc.check_running()
        with urllib.request.urlopen(self.url + "/targets", timeout=2) as resp:
            return bool(resp.status == 200)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._proc.stop()
        self.prometheus.set_targets([])

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sync_targets(self) -> list[ScrapeTarget]:
        with urllib.request.urlopen(self.url + "/targets", timeout=5) as resp:
            groups = json.loads(resp.read())
        if self.gateway:
            with urllib.request.urlopen(self.url + "/gateway/targets", timeout=5) as resp:
                groups += json.loads(resp.read())
        targets = [
            ScrapeTarget(self.redirect.get(group["labels"].get("pod", ""), address), dict(group["labels"]))
            for group in groups
            if group["labels"].get("namespace") in self.namespaces
            and group["labels"].get("pod") not in self.hidden
            for address in group["targets"]
        ]
        if targets != self.targets:
            self.prometheus.set_targets(targets)
            self.targets = targets
        return targets

    def _sync_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.sync_targets()
            except OSError:
                continue  # the emulator is restarting or busy: try again next second

    def log_tail(self, lines: int = 30) -> str:
        return self._proc.log_tail(lines)
