"""Child processes, free loopback ports and bounded waits for the local test servers.

Role: shared plumbing for `local_cluster.LocalCluster` and `prometheus.LocalPrometheus`.
Every server runs in its own session (process group) so that stop() can signal the group by the
child's own process id, and with PR_SET_PDEATHSIG so the kernel terminates it if the test process
dies without running its cleanup (SIGKILL, OOM): no orphan ever outlives the run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class ProcessExitedError(RuntimeError):
    """A server died: waits stop at once instead of running out their time."""


def make_run_dir(prefix: str) -> Path:
    """A fresh temp dir tagged with our pid; first removes dirs left by runs that were killed.

    A dir counts as stale only when the process named in its owner.pid no longer exists, so
    concurrent test sessions on the same machine keep theirs.
    """
    for old in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((old / "owner.pid").read_text())
            os.kill(owner, 0)  # signal 0: existence check only, nothing is sent
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except (OSError, ValueError):
            continue  # no pid file yet (being created) or not ours to judge
    root = Path(tempfile.mkdtemp(prefix=prefix))
    (root / "owner.pid").write_text(str(os.getpid()))
    return root


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it; the window for a race is tiny)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Runs in the child between fork and exec.
    libc = ctypes.CDLL(None, use_errno=True)
    # SIGKILL, not SIGTERM: when the test process died uncleanly, etcd dies at the same moment
    # and kube-apiserver's graceful shutdown would then hang on it indefinitely.
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def wait_for(
    check: Callable[[], T | None], *, what: str, timeout_s: float = 60.0, interval_s: float = 0.25
) -> T:
    """Call `check` until it returns something other than None/False; bounded by `timeout_s`.

    Exceptions from `check` count as "not yet" and the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout_s
    max_tries = int(timeout_s / interval_s) + 2  # also bound the count, whatever the clock does
    last_error: BaseException | None = None
    for _ in range(max_tries):
        try:
            result = check()
            if result is not None and result is not False:
                return result
        except ProcessExitedError:
            raise
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    detail = f" (last error: {last_error!r})" if last_error else ""
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}{detail}")


class ManagedProcess:
    """One server binary with its log file; stop() is idempotent and escalates to SIGKILL."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # preexec_fn only calls prctl(2) in the child, which is safe even with threads around.
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def check_running(self) -> None:
        """Raise with the log tail if the process has exited (used inside waits to fail fast)."""
        if self._proc is not None and self._proc.poll() is not None:
            raise ProcessExitedError(f"{self.name} exited with {self._proc.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                self._signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout_s)
                except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
                    # Too slow, or the user pressed Ctrl-C again: stop waiting politely.
                    self._signal_group(proc, signal.SIGKILL)
                    proc.wait(timeout=timeout_s)
                    if isinstance(exc, KeyboardInterrupt):
                        raise
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        # start_new_session made the child a group leader: its group id is its own pid. Only called
        # before the leader is reaped, so that pid cannot have been reused by an unrelated process.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
