"""The four autoscaler services as child processes, wired on free loopback ports.

Role: `Autoscaler` starts `python -m plumbing.entry collector|optimizer|actuator|controller`
with a kubeconfig and `INFERNO_*` settings (the controller on demand only: period 0), waits for
each port, and stops them by pid (reverse order). `invoke()` runs one cycle through
`GET /invoke` and returns the cycle report. `restart_collector(...)` lets a scenario change the
collector's settings mid-test (e.g. point it at a closed Prometheus port).
Callers: the e2e scenarios via the `autoscaler` factory fixture in tests/e2e/harness/fixtures.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from ..cluster.procs import LOOPBACK, ManagedProcess, free_port, wait_for
from .data import REPO

SERVICES = ("collector", "optimizer", "actuator", "controller")


def invoke_report(port: int, timeout_s: float, token: str = "") -> dict[str, Any]:
    """GET /invoke on a controller at ``port`` (with ``token`` as the bearer token when given): its
    CycleReport as JSON (also on a non-2xx answer)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://{LOOPBACK}:{port}/invoke", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    report: dict[str, Any] = json.loads(body)
    return report


def scenario_settings(
    prometheus_url: str, namespaces: list[str], config_namespace: str, ports: Mapping[str, int]
) -> dict[str, str]:
    """The `INFERNO_*` settings the e2e scenarios run the services with: cycles on demand only,
    windows scaled down to seconds, and every service on its own loopback port (`ports`)."""
    env = {
        "INFERNO_PROMETHEUS_URL": prometheus_url,
        "INFERNO_NAMESPACES": ",".join(namespaces),
        "INFERNO_COLLECTOR_CONFIG_NAMESPACE": config_namespace,
        "INFERNO_COLLECTOR_RATE_WINDOW_S": "10",
        "INFERNO_COLLECTOR_TOKEN_WINDOW_S": "30",  # scaled like the rate window (600 s of 120)
        "INFERNO_COLLECTOR_PROMETHEUS_TIMEOUT_S": "2",
        "INFERNO_CONTROL_PERIOD": "0",
        "INFERNO_CONTROLLER_INVOKE_RATE_PER_S": "0",
        "INFERNO_OPTIMIZER_TIME_LIMIT": "5",
        "INFERNO_CONTROLLER_SCALE_DOWN_WINDOW_S": "0",
    }
    for name, port in ports.items():
        env[f"INFERNO_{name.upper()}_PORT"] = str(port)
        if name != "controller":
            env[f"INFERNO_CONTROLLER_{name.upper()}_PORT"] = str(port)
    return env


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


class Autoscaler:
    """collector + optimizer + actuator + controller, started from this checkout's code."""

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        *,
        prometheus_url: str,
        namespaces: list[str],
        config_namespace: str,
        extra_env: Mapping[str, str] | None = None,
        services: tuple[str, ...] = SERVICES,  # e.g. without "controller": see harness/controllers.py
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.ports = {name: free_port() for name in SERVICES}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERNO_", "KUBERNETES_"))}
        env.update({"KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(REPO)})
        env.update(scenario_settings(prometheus_url, namespaces, config_namespace, self.ports))
        env.update(extra_env or {})
        self.env = env
        self.services = services
        self._procs: dict[str, ManagedProcess] = {}

    def start(self) -> Autoscaler:
        try:
            for name in self.services:
                self._start_one(name)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_one(self, name: str) -> None:
        argv = [sys.executable, "-m", "plumbing.entry", name]
        proc = ManagedProcess(name, argv, self.log_dir / f"{name}.log", env=dict(self.env))
        self._procs[name] = proc
        proc.start()
        port = self.ports[name]

        def up() -> bool:
            proc.check_running()
            return _port_open(port)

        wait_for(up, what=f"{name} listening on {port}", timeout_s=30, interval_s=0.1)

    def restart(self, name: str, **env: str) -> None:
        """Stop one service and start it again with `env` added (e.g. a new Prometheus URL)."""
        if proc := self._procs.pop(name, None):
            proc.stop()
        self.env.update(env)
        self._start_one(name)

    def stop(self) -> None:
        for name in reversed(list(self._procs)):
            self._procs.pop(name).stop()

    def __enter__(self) -> Autoscaler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def invoke(self, timeout_s: float = 90.0) -> dict[str, Any]:
        """One cycle via GET /invoke; the CycleReport as JSON (also on a non-2xx answer)."""
        return invoke_report(self.ports["controller"], timeout_s)

    def invoke_until(
        self, check: Callable[[dict[str, Any]], bool], what: str, tries: int = 8, interval_s: float = 0.0
    ) -> dict[str, Any]:
        """Invoke cycles until `check(report)` holds; at most `tries` cycles, `interval_s` apart."""
        report: dict[str, Any] = {}
        for attempt in range(tries):
            if attempt and interval_s > 0:
                time.sleep(interval_s)
            report = self.invoke()
            if check(report):
                return report
        raise AssertionError(
            f"no cycle reached {what} in {tries} tries; last report: {report}\n{self.logs()}"
        )

    # --- fault injection and read-back (tests/e2e/test_faults*.py) ---------------------------
    def signal(self, name: str, sig: signal.Signals) -> None:
        """Send `sig` to one service's process by its pid (SIGSTOP hangs it, SIGCONT resumes it)."""
        pid = self._procs[name].pid
        if pid is None:
            raise RuntimeError(f"{name} is not running")
        os.kill(pid, sig)

    def kill(self, name: str) -> None:
        """SIGKILL one service (a container crash) and reap it; `restart(name)` brings it back."""
        self.signal(name, signal.SIGKILL)
        self._procs.pop(name).stop(timeout_s=5)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The controller's GET /metrics as {(sample name, sorted labels): value}."""
        url = f"http://{LOOPBACK}:{self.ports['controller']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): float(s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the controller's metrics; 0 when the series does not exist (yet)."""
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def actuator_metric(self, name: str, **labels: str) -> float:
        """One sample of the actuator's GET /metrics (its Events); AssertionError when it is missing."""
        url = f"http://{LOOPBACK}:{self.ports['actuator']}/metrics"
        with urllib.request.urlopen(url, timeout=2) as resp:
            text = resp.read().decode()
        wanted = tuple(sorted(labels.items()))
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and tuple(sorted(sample.labels.items())) == wanted:
                    return float(sample.value)
        raise AssertionError(f"no {name}{dict(labels)} in the actuator's /metrics:\n{text}")

    def events_pending(self) -> float:
        """Events the actuator has queued or is posting; it posts them after answering /update, so
        a cycle's Events may land just after /invoke returns."""
        return self.actuator_metric("inferno_actuator_events_pending")

    def wait_events_posted(self, timeout_s: float = 20.0) -> None:
        """Until the actuator has posted every Event it queued (bounded); at once without an actuator."""
        if "actuator" not in self._procs:
            return
        try:
            wait_for(
                lambda: self.events_pending() == 0,
                what="the actuator to post its queued Events",
                timeout_s=timeout_s,
                interval_s=0.05,
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    def log_count(self, name: str, *needles: str) -> int:
        """How many lines of one service's log contain all `needles` (e.g. the collector's collect.done)."""
        try:
            text = self._procs[name].log_path.read_text(errors="replace")
        except (KeyError, OSError):
            return 0
        return sum(all(n in line for n in needles) for line in text.splitlines())

    def healthy(self) -> bool:
        """The controller's GET /healthz answers 200 (its loop is alive and no cycle is stuck)."""
        url = f"http://{LOOPBACK}:{self.ports['controller']}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return bool(resp.status == 200)
        except urllib.error.URLError:
            return False

    def logs(self, lines: int = 40) -> str:
        return "\n".join(f"--- {n}\n{p.log_tail(lines)}" for n, p in self._procs.items())
