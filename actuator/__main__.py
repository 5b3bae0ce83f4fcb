"""``python -m actuator``: serve ``POST /update`` with the in-cluster (or local) kube config.

``python -m actuator --help-settings`` prints the environment variables and their defaults.
"""

from __future__ import annotations

import asyncio
import sys

import structlog

from actuator.kube import KubernetesPort, load_kube_client
from actuator.service import Actuator, create_app
from actuator.settings import ENV_PREFIX, ActuatorSettings, load_actuator_settings
from controller.common.logs import configure_logging
from controller.common.settings import read_secret_file, settings_table
from controller.common.web import is_loopback, serve


async def _run(settings: ActuatorSettings) -> None:
    token = read_secret_file(settings.token_file)
    log = structlog.get_logger()
    if not token and not is_loopback(settings.host):
        log.warning("no_token", detail="no token file: POST /update accepts only localhost callers")
    actuator = Actuator(KubernetesPort(load_kube_client(), settings), settings)
    log.info("starting", host=settings.host, port=settings.port, dry_run=settings.dry_run)
    await serve(create_app(actuator, token), settings.host, settings.port)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if "--help-settings" in args:
        print(settings_table(ActuatorSettings, ENV_PREFIX))
        return
    settings = load_actuator_settings()
    configure_logging("actuator", settings.log_level)
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
