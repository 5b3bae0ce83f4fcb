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
from typing import Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contract.data.loader import DataError, validate_system
from optimizer.optimize import optimize
from optimizer.settings import OptimizerSettings
from optimizer.solver.registry import get_solver
from plumbing.settings import load_settings
from plumbing.web import error_middleware, guarded, json_error, read_json

ENV_PREFIX = "INFERNO_OPTIMIZER_"
# The core's defaults, so the service and the library cannot drift apart.
_CORE = {name: field.default for name, field in OptimizerSettings.model_fields.items()}
log = structlog.get_logger()


class ServiceSettings(BaseModel):
    """The optimizer service's settings; ``optimizer`` is what the pure core receives."""

    model_config = ConfigDict(frozen=True)

    host: str = Field(
        default="127.0.0.1", description="address to bind; the pod's containers share localhost"
    )
    port: int = Field(default=3302, ge=1, le=65535, description="port to listen on")
    solver: str | None = Field(
        default=None, description="greedy or milp; empty: as optimizer-data's milpSolver says"
    )
    time_limit_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="MILP wall-clock limit, seconds",
        json_schema_extra={"env": "INFERNO_OPTIMIZER_TIME_LIMIT"},
    )
    batch_policy: Literal["default", "optimal"] = Field(
        default="default",
        description="default: floor(maxBatchSize*atTokens/out); optimal: smallest batch reaching 99% "
        "of the best SLO-bound throughput",
        json_schema_extra={"env": "INFERNO_OPTIMIZER_BATCH"},
    )
    max_batch_cap: int = Field(
        default=_CORE["max_batch_cap"],
        ge=0,
        description="largest batch (vLLM --max-num-seqs) chosen from model data; a server's own "
        "maxBatchSize is not capped; 0: no cap",
    )
    type_change_hold_s: float = Field(
        default=_CORE["type_change_hold_s"],
        ge=0,
        description="seconds after an accelerator change during which a server stays on it unless it "
        "cannot serve its load there at all; 0: off",
    )
    load_headroom: float = Field(
        default=_CORE["load_headroom"],
        ge=0,
        le=1,
        description="size replicas for the measured demand x (1 + this); 0: for the demand itself",
    )
    type_change_margin: float = Field(
        default=_CORE["type_change_margin"],
        ge=0,
        lt=1,
        description="type-change hysteresis: another accelerator is offered only when no dearer at "
        "the demand x (1 -/+ this) too; 0: off",
    )
    rollout_budget_share: float = Field(
        default=_CORE["rollout_budget_share"],
        ge=0,
        le=1,
        description="share of the running servers that may roll their pods (GPU type or batch "
        "change) at a time, unfinished rollouts included; 1: no budget",
    )
    rollout_budget_min: int = Field(
        default=_CORE["rollout_budget_min"],
        ge=0,
        description="servers that may always roll at a time, however few run",
    )
    batch_tolerance: float = Field(
        default=_CORE["batch_tolerance"],
        ge=0,
        le=1,
        description="on its current accelerator a server keeps its running batch when within this "
        "share of the computed one (a batch change rolls every pod); 0: off",
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="largest POST /optimize body, bytes (then 413)"
    )
    token_file: str = Field(
        default="",
        description="file holding a bearer token that POST /optimize requires (a mounted Secret); "
        "empty: only callers on localhost are accepted",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")

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
        return OptimizerSettings(
            solver=self.solver,
            time_limit_s=self.time_limit_s,
            batch_policy=self.batch_policy,
            max_batch_cap=self.max_batch_cap,
            type_change_hold_s=self.type_change_hold_s,
            type_change_margin=self.type_change_margin,
            batch_tolerance=self.batch_tolerance,
            load_headroom=self.load_headroom,
            rollout_budget_share=self.rollout_budget_share,
            rollout_budget_min=self.rollout_budget_min,
        )

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
