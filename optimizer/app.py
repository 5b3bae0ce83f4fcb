"""The optimizer container: ``POST /optimize`` (SystemData in, Solution out) and ``GET /healthz``.

With :mod:`optimizer.__main__` (which starts it), the only module of :mod:`optimizer` that does
I/O, and the only one that imports the services' shared plumbing (:mod:`plumbing`: settings from
the environment, structlog JSON logs, JSON errors, the bearer-or-loopback guard); the optimizer
core stays pure.

The controller calls ``/optimize`` once per cycle with the collector's system data. Bad input
answers 422 with the loader's message (file, entry, field); a malformed body 400; a body above
``max_body_bytes`` 413; every error is JSON, never a trace. Optimization is CPU-bound, so it runs in
a worker thread, one at a time (a second request waits), keeping ``/healthz`` responsive and memory
bounded.

Settings: ``python -m optimizer --help-settings`` prints the table
(``INFERNO_OPTIMIZER_*``; the MILP time limit and the batch policy keep their historical names
``INFERNO_OPTIMIZER_TIME_LIMIT`` and ``INFERNO_OPTIMIZER_BATCH``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import ClassVar

import structlog
from aiohttp import web
from pydantic import Field, ValidationError, field_validator

from contract.data.loader import DataError, validate_system
from optimizer.optimize import optimize
from optimizer.settings import OptimizerSettings
from optimizer.solver.registry import get_solver
from plumbing.settings import ServiceSettings as BaseServiceSettings
from plumbing.settings import load_settings, port_field, token_file_field
from plumbing.web import error_middleware, guarded, json_error, read_json

ENV_PREFIX = "INFERNO_OPTIMIZER_"
log = structlog.get_logger()


class ServiceSettings(BaseServiceSettings, OptimizerSettings):
    """The optimizer service's settings: the core's fields (:class:`OptimizerSettings`, declared
    there once) and the service's own; :attr:`optimizer` is what the pure core receives."""

    env_names: ClassVar[Mapping[str, str]] = {
        "time_limit_s": "INFERNO_OPTIMIZER_TIME_LIMIT",
        "batch_policy": "INFERNO_OPTIMIZER_BATCH",
    }

    port: int = port_field(3302)
    token_file: str = token_file_field("POST /optimize")
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="largest POST /optimize body, bytes (then 413)"
    )

    @field_validator("solver", mode="before")
    @classmethod
    def _known_solver(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None
            get_solver(value)  # an unknown name fails at start-up, naming the known ones
        return value

    @property
    def optimizer(self) -> OptimizerSettings:
        """The core's settings: this model's values of every :class:`OptimizerSettings` field."""
        return OptimizerSettings(**{name: getattr(self, name) for name in OptimizerSettings.model_fields})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Read the environment; a bad value raises ``SettingsError`` naming the variable."""
        return load_settings(cls, ENV_PREFIX, environ)


SETTINGS_KEY = web.AppKey("settings", ServiceSettings)
CORE_KEY = web.AppKey("core_settings", OptimizerSettings)
LOCK_KEY = web.AppKey("lock", asyncio.Lock)


async def handle_optimize(request: web.Request) -> web.Response:
    body = await read_json(request)  # 400 / 413 as JSON
    try:
        system = validate_system(body, "request body")
    except DataError as exc:
        log.warning("optimize_rejected", error=str(exc)[:2000])
        return json_error(422, str(exc))
    async with request.app[LOCK_KEY]:
        started = time.perf_counter()
        try:
            solution = await asyncio.to_thread(optimize, system, request.app[CORE_KEY])
        except (ValueError, ValidationError) as exc:
            return json_error(422, f"cannot optimize this system: {exc}")
        except ArithmeticError as exc:
            # Extreme but "valid" parameters (alpha=1e308) overflow the model; the input is at
            # fault, so a 422 (permanent: retrying will not help), and the log keeps the detail.
            log.warning("optimize_numeric_failure", error=f"{type(exc).__name__}: {exc}")
            return json_error(
                422,
                f"cannot optimize this system: numeric failure ({type(exc).__name__}: {exc}); "
                "check the model and accelerator parameters for extreme values",
            )
        elapsed_ms = (time.perf_counter() - started) * 1000.0
    solution = solution.with_elapsed_ms(elapsed_ms)
    log.info(
        "optimized",
        servers=len(solution.decisions),
        solver=solution.solver.name,
        elapsed_ms=round(elapsed_ms, 1),
    )
    return web.json_response(text=solution.model_dump_json())


async def handle_healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app(settings: ServiceSettings | None = None, token: str | None = None) -> web.Application:
    settings = settings or ServiceSettings()
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[error_middleware])
    app[SETTINGS_KEY] = settings
    app[CORE_KEY] = settings.optimizer
    app[LOCK_KEY] = asyncio.Lock()
    app.router.add_post("/optimize", guarded(handle_optimize, token))
    app.router.add_get("/healthz", handle_healthz)
    return app
