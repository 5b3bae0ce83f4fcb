"""The four real services as subprocesses on 127.0.0.1, for the demo: start, health-wait, invoke, stop.

Each runs ``python -m plumbing.entry <name>`` with ``KUBECONFIG`` pointing at the API server
and its ``INFERNO_*`` settings (free ports, no Prometheus unless ``extra_env`` names one, a
controller that cycles only on ``GET /invoke``, a short actuator scale-down window). Output goes
to ``<workdir>/<name>.log``. :func:`stop_services` ends each process by its pid (SIGTERM, then
SIGKILL after a grace period). Called by :mod:`load_emulator.demo.run` and :mod:`.cluster_run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp

NAMES = ("collector", "optimizer", "actuator", "controller")


@dataclass
class Service:
    name: str
    port: int
    process: asyncio.subprocess.Process
    log: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(
    kubeconfig: Path,
    ports: dict[str, int],
    scale_down_window_s: float,
    solver: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Settings shared by the four processes (each reads only its own prefix); ``extra`` wins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env.update({
        "KUBECONFIG": str(kubeconfig),
        "PYTHONUNBUFFERED": "1",
        "INFERNO_PROMETHEUS_URL": "",
        "INFERNO_COLLECTOR_PORT": str(ports["collector"]),
        "INFERNO_OPTIMIZER_PORT": str(ports["optimizer"]),
        "INFERNO_OPTIMIZER_SOLVER": solver,
        "INFERNO_ACTUATOR_PORT": str(ports["actuator"]),
        "INFERNO_CONTROLLER_PORT": str(ports["controller"]),
        "INFERNO_CONTROLLER_SCALE_DOWN_WINDOW_S": str(scale_down_window_s),
        "INFERNO_CONTROLLER_COLLECTOR_PORT": str(ports["collector"]),
        "INFERNO_CONTROLLER_OPTIMIZER_PORT": str(ports["optimizer"]),
        "INFERNO_CONTROLLER_ACTUATOR_PORT": str(ports["actuator"]),
        "INFERNO_CONTROL_PERIOD": "0",
        "INFERNO_CONTROLLER_INVOKE_RATE_PER_S": "0",
        "INFERNO_CONTROLLER_LOG_LEVEL": "WARNING",
    })  # fmt: skip
    env.update(extra or {})
    return env


async def start_services(
    workdir: Path,
    kubeconfig: Path,
    scale_down_window_s: float,
    solver: str,
    extra_env: Mapping[str, str] | None = None,
) -> list[Service]:
    """Start the four services; the caller must :func:`stop_services` whatever happens next."""
    ports = {name: free_port() for name in NAMES}
    env = service_env(kubeconfig, ports, scale_down_window_s, solver, extra_env)
    services: list[Service] = []
    try:
        for name in NAMES:
            log = (workdir / f"{name}.log").open("wb")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "plumbing.entry", name,
                env=env, start_new_session=True,  # Ctrl-C reaches the demo only; it stops them
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            services.append(Service(name, ports[name], proc, log))
    except BaseException:
        await stop_services(services)
        raise
    return services


async def wait_healthy(services: list[Service], timeout_s: float = 30.0) -> float:
    """Poll every service's ``/healthz`` until all answer 200; returns the seconds it took."""
    start = time.monotonic()
    pending = {s.name: s for s in services}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while pending:
            for name, s in list(pending.items()):
                if s.process.returncode is not None:
                    raise RuntimeError(f"{name} exited with {s.process.returncode}; see {s.log.name}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{s.url}/healthz") as resp:
                        if resp.status == 200:
                            del pending[name]
            if time.monotonic() - start > timeout_s:
                raise TimeoutError(f"not healthy after {timeout_s:.0f} s: {sorted(pending)}")
            await asyncio.sleep(0.2)
    return time.monotonic() - start


async def invoke(controller: Service, timeout_s: float = 60.0) -> dict[str, Any]:
    """``GET /invoke``: one cycle; the CycleReport as a dict."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http,
        http.get(f"{controller.url}/invoke") as resp,
    ):
        body: dict[str, Any] = await resp.json(content_type=None)
        if resp.status != 200:
            raise RuntimeError(f"/invoke answered {resp.status}: {body}")
        return body


async def stop_services(services: list[Service], grace_s: float = 10.0) -> list[int | None]:
    """SIGTERM each process by pid, SIGKILL whatever is left after ``grace_s``; the exit codes."""
    for s in services:
        if s.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(s.process.pid, signal.SIGTERM)
    codes: list[int | None] = []
    for s in services:
        try:
            codes.append(await asyncio.wait_for(s.process.wait(), grace_s))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(s.process.pid, signal.SIGKILL)
            codes.append(await s.process.wait())
        s.log.close()
    return codes
