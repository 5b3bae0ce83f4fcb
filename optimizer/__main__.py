"""``python -m optimizer``: serve ``POST /optimize`` on INFERNO_OPTIMIZER_HOST:PORT (127.0.0.1:3302).

``python -m optimizer --help-settings`` prints the environment variables and their defaults. The
offline CLI is :mod:`optimizer.cli`.
"""

from __future__ import annotations

import structlog

from optimizer.app import ENV_PREFIX, ServiceSettings, make_app
from plumbing.main import run_service
from plumbing.settings import read_secret_file
from plumbing.web import is_loopback, serve


async def _serve(settings: ServiceSettings) -> None:
    log = structlog.get_logger()
    token = read_secret_file(settings.token_file)
    if not token and not is_loopback(settings.host):
        log.warning("no_token", detail="no token file: POST /optimize accepts only localhost callers")
    log.info("starting", host=settings.host, port=settings.port, solver=settings.solver or "(data)")
    await serve(make_app(settings, token), settings.host, settings.port)


def main(argv: list[str] | None = None) -> int:
    return run_service("optimizer", ServiceSettings, ENV_PREFIX, _serve, argv)


if __name__ == "__main__":
    raise SystemExit(main())
