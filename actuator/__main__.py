"""``python -m actuator``: serve ``POST /update`` with the in-cluster (or local) kube config.

``python -m actuator --help-settings`` prints the environment variables and their defaults.
"""

from __future__ import annotations

import os
import sys

import structlog

from actuator.app import Actuator, make_app
from actuator.events import EventBroadcaster
from actuator.kube import KubernetesPort, kube_threads
from actuator.settings import ENV_PREFIX, ActuatorSettings, misplaced_variables
from plumbing.kube import load_api_client
from plumbing.main import run_service
from plumbing.settings import read_secret_file
from plumbing.web import is_loopback, serve


async def _run(settings: ActuatorSettings) -> None:
    token = read_secret_file(settings.token_file)
    log = structlog.get_logger()
    if not token and not is_loopback(settings.host):
        log.warning("no_token", detail="no token file: POST /update accepts only localhost callers")
    client = load_api_client(connection_pool_size=kube_threads(settings))  # StartupError: no config
    port = KubernetesPort(client, settings)
    events = (
        EventBroadcaster(
            port.create_event, queue_size=settings.event_queue_size, concurrency=settings.event_concurrency
        )
        if settings.event_queue_size > 0
        else None  # posted inside the cycle
    )
    actuator = Actuator(port, settings, events=events)
    log.info(
        "starting",
        host=settings.host,
        port=settings.port,
        dry_run=settings.dry_run,
        event_queue_size=settings.event_queue_size,
    )
    await serve(make_app(actuator, token), settings.host, settings.port)


def main(argv: list[str] | None = None) -> int:
    misplaced = misplaced_variables(os.environ)
    if misplaced:
        print(
            "actuator: the controller keeps the scale-down window: " + "; ".join(misplaced), file=sys.stderr
        )
        return 2
    return run_service("actuator", ActuatorSettings, ENV_PREFIX, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
