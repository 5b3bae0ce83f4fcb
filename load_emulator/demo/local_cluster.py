"""The local real cluster (``tests/e2e/cluster``) for the demo: its state file, or a child process running it.

:class:`ClusterState` reads the JSON state file that ``PYTHONPATH=tests python -m e2e.cluster``
writes once etcd, kube-apiserver, controller-manager, scheduler, KWOK and Prometheus are up
(keys ``kubeconfig``, ``prometheus``, ``prometheus_targets_dir``).

:class:`LocalClusterProcess` runs that command as a child (no GPU nodes: the demo adds its own;
own session, so Ctrl-C reaches only the demo, which stops it last), waits up to
``START_TIMEOUT_S`` for the state file, and stops it by pid: SIGTERM (the command then stops its
servers by pid), SIGKILL after ``STOP_GRACE_S``. Binaries must be installed
(``tests/e2e/cluster/install.sh``; ``scripts/demo-cluster.sh`` does it).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120.0
STOP_GRACE_S = 45.0


@dataclass(frozen=True)
class ClusterState:
    kubeconfig: Path
    prometheus_url: str
    targets_dir: Path

    @classmethod
    def read(cls, path: Path) -> ClusterState:
        """The state file's addresses; a missing key or a cluster without Prometheus is a clear error."""
        try:
            doc = json.loads(path.read_text())
            kubeconfig, prometheus, targets = (
                doc["kubeconfig"],
                doc["prometheus"],
                doc["prometheus_targets_dir"],
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"cluster state {path}: {type(exc).__name__}: {exc}") from None
        if not prometheus or not targets:
            raise ValueError(f"cluster state {path}: no Prometheus (started with --no-prometheus?)")
        return cls(Path(kubeconfig), str(prometheus), Path(targets))


class LocalClusterProcess:
    """``python -m e2e.cluster --fleet '' --state-file <workdir>/cluster-state.json`` as a child."""

    def __init__(self, workdir: Path) -> None:
        self.state_file = workdir / "cluster-state.json"
        self.log_path = workdir / "cluster.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ClusterState:
        """Start it and wait for its state file; stops it again if that fails."""
        self.state_file.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO)])
        argv = [sys.executable, "-m", "e2e.cluster", "--fleet", "", "--state-file", str(self.state_file)]
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            self._wait_state()
            return ClusterState.read(self.state_file)
        except BaseException:
            self.stop()
            raise

    def _wait_state(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        for _ in range(int(START_TIMEOUT_S / 0.25) + 1):
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"local cluster exited with {self._proc.returncode}:\n{self.log_tail()}")
            if self.state_file.exists() and self.state_file.stat().st_size > 0:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        raise TimeoutError(f"local cluster not up after {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM by pid, SIGKILL after the grace period; the exit code (None if never started)."""
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                code = proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                code = proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
