"""``python -m controller``: the cycle loop plus /invoke, /healthz, /readyz and /metrics.

``python -m controller --help-settings`` prints the environment variables and their defaults.
"""

from __future__ import annotations

import structlog

from controller.app import create_app, observed
from controller.common.main import run_service
from controller.common.settings import read_secret_file
from controller.common.web import is_loopback, serve
from controller.cycle import CycleRunner, HttpStages
from controller.loop import CycleLoop
from controller.metrics import ControllerMetrics
from controller.settings import ENV_PREFIX, ControllerSettings


async def _run(settings: ControllerSettings) -> None:
    log = structlog.get_logger()
    token = read_secret_file(settings.token_file)
    if not token and not is_loopback(settings.host):
        log.warning("no_token", detail="no token file: /invoke accepts only localhost callers")
    stages = HttpStages(settings, token)
    metrics = ControllerMetrics()
    loop = CycleLoop(observed(CycleRunner(stages, settings), metrics), settings.control_period_s)
    app = create_app(loop, metrics, settings, token, on_cleanup=stages.close)
    log.info(
        "starting",
        host=settings.host,
        port=settings.port,
        period_s=settings.control_period_s,
        dry_run=settings.dry_run,
    )
    await serve(app, settings.host, settings.port)


def main(argv: list[str] | None = None) -> int:
    return run_service("controller", ControllerSettings, ENV_PREFIX, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
