"""No token in the logs: the real services, started as the image starts them
(``python -m plumbing.entry <service>``) with a token file and DEBUG logging, take authorised,
unauthorised and failing calls; their whole stdout and stderr must not contain the token.

The controller's failing call is the nasty one: its fake actuator answers 500 with an error body
that echoes the request's ``Authorization`` header and the bare token, and the controller logs that
error text. Redaction (``plumbing.logs``) must catch both forms. All traffic is loopback.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from contract.data.loader import dump_system, load_system_dir
from tests.conftest import REPO, SAMPLES
from tests.unit.actuator.fakes import decision, solution
from tests.unit.controller.fakes import collect_result

TOKEN = "tok-9b1e2f7c4d3a5e6f8a0b"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def echoing_upstream(port: int) -> web.AppRunner:
    """Collector and optimizer that work, and an actuator whose 500 echoes the credentials."""

    async def collect(_request: web.Request) -> web.Response:
        return web.json_response(collect_result().model_dump(mode="json"))

    async def optimize(_request: web.Request) -> web.Response:
        return web.json_response(solution(decision(replicas=3)).model_dump(mode="json"))

    async def update(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        bare = header.partition(" ")[2]
        return web.Response(status=500, text=f"actuator exploded; you sent {header!r}, i.e. token={bare}")

    app = web.Application()
    app.router.add_get("/collect", collect)
    app.router.add_post("/optimize", optimize)
    app.router.add_post("/update", update)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


class Service:
    def __init__(self, name: str, env: dict[str, str], tmp_path: Path) -> None:
        self.out_path, self.err_path = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "plumbing.entry", name],
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                stdout=out,
                stderr=err,
            )

    async def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.logs()
                try:
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"not ready within {START_TIMEOUT_S} s:\n{self.logs()}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.logs()

    def logs(self) -> str:
        return self.out_path.read_text(errors="replace") + self.err_path.read_text(errors="replace")


WRONG = [
    {},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": f"Token {TOKEN}"},
    {"Authorization": "Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode()},
]


@pytest.fixture
async def token_file(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    yield path


async def test_controller_never_logs_the_token(tmp_path: Path, token_file: Path) -> None:
    upstream_port, port = free_port(), free_port()
    upstream = await echoing_upstream(upstream_port)
    env = {
        "INFERNO_CONTROLLER_PORT": str(port),
        "INFERNO_CONTROLLER_TOKEN_FILE": str(token_file),
        "INFERNO_CONTROLLER_LOG_LEVEL": "DEBUG",
        "INFERNO_CONTROL_PERIOD": "0",
        "INFERNO_CONTROLLER_INVOKE_RATE_PER_S": "0",
        **{
            f"INFERNO_CONTROLLER_{s.upper()}_PORT": str(upstream_port)
            for s in ("collector", "optimizer", "actuator")
        },
    }
    service = Service("controller", env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        await service.wait_ready(f"{base}/readyz")
        async with aiohttp.ClientSession() as session:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with session.get(f"{base}/invoke", headers=auth) as resp:
                assert resp.status == 200
                report = await resp.json()
            for headers in WRONG:
                async with session.get(f"{base}/invoke", headers=headers) as resp:
                    assert resp.status == 401, headers
                    assert TOKEN not in await resp.text()
            async with session.get(f"{base}/invoke", params={"token": TOKEN}) as resp:
                assert resp.status == 401
            async with session.post(f"{base}/invoke", headers=auth) as resp:
                assert resp.status == 405
    finally:
        logs = service.stop()
        await upstream.cleanup()
    # the failing call happened and was logged (so the check below can fail)
    assert report["outcome"] == "failed" and report["errors"][0]["stage"] == "update", report
    assert "actuator exploded" in logs and "[redacted]" in logs, logs[-2000:]
    assert TOKEN not in logs, [line for line in logs.splitlines() if TOKEN in line][:3]
    assert TOKEN not in str(report)


async def test_optimizer_never_logs_the_token(tmp_path: Path, token_file: Path) -> None:
    port = free_port()
    env = {
        "INFERNO_OPTIMIZER_PORT": str(port),
        "INFERNO_OPTIMIZER_TOKEN_FILE": str(token_file),
        "INFERNO_OPTIMIZER_LOG_LEVEL": "DEBUG",
        "INFERNO_OPTIMIZER_SOLVER": "greedy",
    }
    service = Service("optimizer", env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    body = dump_system(load_system_dir(SAMPLES / "small"))
    try:
        await service.wait_ready(f"{base}/healthz")
        async with aiohttp.ClientSession() as session:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with session.post(f"{base}/optimize", json=body, headers=auth) as resp:
                assert resp.status == 200
            for headers in WRONG:
                async with session.post(f"{base}/optimize", json=body, headers=headers) as resp:
                    assert resp.status == 401, headers
            bad = {**body, "servers": {"servers": [{"name": TOKEN, "model": "nope"}]}}
            async with session.post(f"{base}/optimize", json=bad, headers=auth) as resp:
                assert resp.status == 422
    finally:
        logs = service.stop()
    assert '"event": "optimized"' in logs, logs[-2000:]
    # the rejected body named the token as a server: logged, redacted
    assert '"event": "optimize_rejected"' in logs and "[redacted]" in logs, logs[-2000:]
    assert TOKEN not in logs, [line for line in logs.splitlines() if TOKEN in line][:3]
