"""The optimizer container: ``POST /optimize`` (SystemData in, Solution out) and ``GET /healthz``.

The only module of :mod:`optimizer` that does I/O. The controller calls ``/optimize`` once per
cycle with the collector's system data. Bad input answers 422 with the loader's message (file,
entry, field); a malformed body 400. Optimization is CPU-bound, so it runs in a worker thread, one
at a time (a second request waits), keeping ``/healthz`` responsive and memory bounded.

Settings (environment, read once at start-up):

================================  =========  ==================================================
``INFERNO_OPTIMIZER_HOST``        127.0.0.1  address to bind; the pod's containers share localhost
``INFERNO_OPTIMIZER_PORT``        3302       port
``INFERNO_OPTIMIZER_SOLVER``      (data)     greedy | milp; empty: optimizer-data's milpSolver
``INFERNO_OPTIMIZER_TIME_LIMIT``  10         MILP wall-clock limit, seconds
``INFERNO_OPTIMIZER_BATCH``       default    default | optimal batch-size policy
``INFERNO_MAX_BODY_BYTES``        33554432   largest accepted request body
================================  =========  ==================================================
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from optimizer.data.loader import DataError, validate_system
from optimizer.optimize import optimize
from optimizer.settings import OptimizerSettings
from optimizer.solver.registry import get_solver


class ServiceSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=3302, ge=1, le=65535)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    optimizer: OptimizerSettings = OptimizerSettings()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServiceSettings:
        """Map ``INFERNO_*`` variables onto the settings; unknown solver names fail here."""
        solver = env.get("INFERNO_OPTIMIZER_SOLVER") or None
        if solver:
            get_solver(solver)
        optimizer = OptimizerSettings(
            solver=solver,
            time_limit_s=float(env.get("INFERNO_OPTIMIZER_TIME_LIMIT", "10")),
            batch_policy=env.get("INFERNO_OPTIMIZER_BATCH", "default"),
        )
        return cls(
            host=env.get("INFERNO_OPTIMIZER_HOST", "127.0.0.1"),
            port=int(env.get("INFERNO_OPTIMIZER_PORT", "3302")),
            max_body_bytes=int(env.get("INFERNO_MAX_BODY_BYTES", str(32 * 1024 * 1024))),
            optimizer=optimizer,
        )


SETTINGS_KEY = web.AppKey("settings", ServiceSettings)
LOCK_KEY = web.AppKey("lock", asyncio.Lock)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def handle_optimize(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    try:
        body = json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(400, f"request body is not JSON: {exc}")
    try:
        system = validate_system(body, "request body")
    except DataError as exc:
        return _error(422, str(exc))
    async with request.app[LOCK_KEY]:
        started = time.perf_counter()
        try:
            solution = await asyncio.to_thread(optimize, system, settings.optimizer)
        except (ValueError, ValidationError) as exc:
            return _error(422, f"cannot optimize this system: {exc}")
        elapsed_ms = (time.perf_counter() - started) * 1000.0
    solution = solution.with_elapsed_ms(elapsed_ms)
    return web.json_response(text=solution.model_dump_json())


async def handle_healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app(settings: ServiceSettings | None = None) -> web.Application:
    settings = settings or ServiceSettings()
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS_KEY] = settings
    app[LOCK_KEY] = asyncio.Lock()
    app.router.add_post("/optimize", handle_optimize)
    app.router.add_get("/healthz", handle_healthz)
    return app


def main() -> None:
    settings = ServiceSettings.from_env(os.environ)
    web.run_app(make_app(settings), host=settings.host, port=settings.port, print=None)


if __name__ == "__main__":
    main()
