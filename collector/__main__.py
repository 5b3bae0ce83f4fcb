"""``python -m collector``: serve ``GET /collect`` on INFERNO_COLLECTOR_HOST:PORT (127.0.0.1:3301).

``python -m collector --help-settings`` prints the environment variables and their defaults.
"""

from __future__ import annotations

import structlog

from collector.app import CollectorService, make_app
from collector.core import Ports
from collector.kube_adapter import KubeAdapter
from collector.prom_adapter import PrometheusAdapter
from collector.settings import ENV_PREFIX, CollectorSettings
from plumbing.kube import load_api_client
from plumbing.main import run_service
from plumbing.settings import read_secret_file
from plumbing.web import serve

log = structlog.get_logger("collector")


def build_ports(settings: CollectorSettings) -> Ports:
    """The real adapters; loads the in-cluster config or the kubeconfig (a ``StartupError`` when
    neither loads)."""
    kube = KubeAdapter(
        load_api_client(), settings.kube_timeout_s, settings.managed_selector, settings.targets
    )
    metrics = None
    if settings.prometheus_enabled:
        metrics = PrometheusAdapter(settings.prometheus_url, settings.prometheus_timeout_s)
    return Ports(kube=kube, cluster=kube, metrics=metrics)


async def _serve(settings: CollectorSettings) -> None:
    ports = build_ports(settings)  # a StartupError when there is no kube config
    service = CollectorService(settings, ports)
    app = make_app(service, read_secret_file(settings.token_file))
    log.info(
        "collector.start", host=settings.host, port=settings.port, prometheus=settings.prometheus_enabled
    )
    await serve(app, settings.host, settings.port)


def main(argv: list[str] | None = None) -> int:
    return run_service("collector", CollectorSettings, ENV_PREFIX, _serve, argv)


if __name__ == "__main__":
    raise SystemExit(main())
