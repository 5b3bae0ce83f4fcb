"""The four autoscaler services as child processes, wired on free loopback ports.

Role: `Autoscaler` starts `python -m controller.entry collector|optimizer|actuator|controller`
with a kubeconfig and `INFERNO_*` settings (the controller on demand only: period 0), waits for
each port, and stops them by pid (reverse order). `invoke()` runs one cycle through
`GET /invoke` and returns the cycle report. `restart_collector(...)` lets a scenario change the
collector's settings mid-test (e.g. point it at a closed Prometheus port).
Callers: the e2e scenarios via the `autoscaler` factory fixture in tests/e2e/harness/fixtures.py.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..cluster.procs import LOOPBACK, ManagedProcess, free_port, wait_for
from .data import REPO

SERVICES = ("collector", "optimizer", "actuator", "controller")


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
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.ports = {name: free_port() for name in SERVICES}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERNO_", "KUBERNETES_"))}
        env.update(
            {
                "KUBECONFIG": str(kubeconfig),
                "PYTHONPATH": str(REPO),
                "INFERNO_PROMETHEUS_URL": prometheus_url,
                "INFERNO_NAMESPACES": ",".join(namespaces),
                "INFERNO_COLLECTOR_CONFIG_NAMESPACE": config_namespace,
                "INFERNO_COLLECTOR_RATE_WINDOW_S": "10",
                "INFERNO_COLLECTOR_PROMETHEUS_TIMEOUT_S": "2",
                "INFERNO_CONTROL_PERIOD": "0",
                "INFERNO_CONTROLLER_INVOKE_RATE_PER_S": "0",
                "INFERNO_OPTIMIZER_TIME_LIMIT": "5",
                "INFERNO_ACTUATOR_SCALE_DOWN_WINDOW_S": "0",
            }
        )
        for name, port in self.ports.items():
            env[f"INFERNO_{name.upper()}_PORT"] = str(port)
            if name != "controller":
                env[f"INFERNO_CONTROLLER_{name.upper()}_PORT"] = str(port)
        env.update(extra_env or {})
        self.env = env
        self._procs: dict[str, ManagedProcess] = {}

    def start(self) -> Autoscaler:
        try:
            for name in SERVICES:
                self._start_one(name)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_one(self, name: str) -> None:
        argv = [sys.executable, "-m", "controller.entry", name]
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
        url = f"http://{LOOPBACK}:{self.ports['controller']}/invoke"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
        report: dict[str, Any] = json.loads(body)
        return report

    def invoke_until(
        self, check: Callable[[dict[str, Any]], bool], what: str, tries: int = 8
    ) -> dict[str, Any]:
        """Invoke cycles until `check(report)` holds; at most `tries` cycles (each takes ~1 s)."""
        report: dict[str, Any] = {}
        for _ in range(tries):
            report = self.invoke()
            if check(report):
                return report
        raise AssertionError(
            f"no cycle reached {what} in {tries} tries; last report: {report}\n{self.logs()}"
        )

    def logs(self, lines: int = 40) -> str:
        return "\n".join(f"--- {n}\n{p.log_tail(lines)}" for n, p in self._procs.items())
