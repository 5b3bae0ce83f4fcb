"""Controller processes with leader election on, sharing one collector/optimizer/actuator.

Role: `ElectingController` starts `python -m plumbing.entry controller` with the env of an
`Autoscaler` started without its own controller (`services=("collector", "optimizer", "actuator")`),
its own free port, `INFERNO_CONTROLLER_LEADER_ELECTION=true`, the Lease in the scenario's namespace
and the given pod name as holder identity. `invoke()` returns the cycle report of GET /invoke
(a standby's says `outcome: standby`); `signal()` sends SIGKILL (a crash) or SIGTERM (a graceful
stop that releases the Lease). `lease_holder()` reads the Lease from the API server.
Callers: tests/e2e/test_leader_election.py.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..cluster.procs import ManagedProcess, free_port, wait_for
from .services import Autoscaler, _port_open, invoke_report

LEASE_NAME = "inferno-autoscaler"


class ElectingController:
    def __init__(self, base: Autoscaler, name: str, lease_namespace: str, **env: str) -> None:
        self.name = name
        self.port = free_port()
        proc_env = {
            **base.env,
            "INFERNO_CONTROLLER_PORT": str(self.port),
            "INFERNO_CONTROLLER_LEADER_ELECTION": "true",
            "INFERNO_CONTROLLER_LEASE_NAME": LEASE_NAME,
            "INFERNO_CONTROLLER_LEASE_NAMESPACE": lease_namespace,
            "INFERNO_CONTROLLER_POD_NAME": name,
            **env,
        }
        argv = [sys.executable, "-m", "plumbing.entry", "controller"]
        self.proc = ManagedProcess(name, argv, base.log_dir / f"{name}.log", env=proc_env)

    def start(self) -> ElectingController:
        self.proc.start()

        def up() -> bool:
            self.proc.check_running()
            return _port_open(self.port)

        wait_for(up, what=f"{self.name} listening on {self.port}", timeout_s=30, interval_s=0.1)
        return self

    def signal(self, sig: signal.Signals) -> None:
        pid = self.proc.pid
        if pid is None:
            raise RuntimeError(f"{self.name} is not running")
        os.kill(pid, sig)

    def wait_exit(self, timeout_s: float = 20.0) -> None:
        wait_for(lambda: not self.proc.running(), what=f"{self.name} to exit", timeout_s=timeout_s)
        self.proc.stop()  # reap and close the log

    def stop(self) -> None:
        self.proc.stop()

    def invoke(self, timeout_s: float = 90.0) -> dict[str, Any]:
        return invoke_report(self.port, timeout_s)

    def log_tail(self, lines: int = 40) -> str:
        return f"--- {self.name}\n{self.proc.log_tail(lines)}"


def lease_holder(api_client: client.ApiClient, namespace: str) -> tuple[str, int]:
    """(holderIdentity, leaseTransitions) of the Lease; ("", 0) when it does not exist yet."""
    try:
        lease = client.CoordinationV1Api(api_client).read_namespaced_lease(LEASE_NAME, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return "", 0
        raise
    spec = lease.spec
    return (spec.holder_identity or "", int(spec.lease_transitions or 0)) if spec else ("", 0)
