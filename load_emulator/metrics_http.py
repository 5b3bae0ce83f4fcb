"""HTTP endpoints of the emulated fleet (aiohttp), on loopback only.

One server, one port (default 8000; 0 picks a free one), paths:

=====================================  ===========================================================
``GET /metrics``                       every pod; samples carry ``namespace``, ``deployment``,
                                       ``pod`` (scrape with ``honor_labels: true``)
``GET /metrics/{ns}/{deployment}``     that Deployment's pods, same labels
``GET /metrics/{ns}/{deployment}/{pod}``  one pod exactly as vLLM exposes it (``model_name``,
                                       ``engine`` only); 404 when the pod does not exist
``GET /targets``                       Prometheus HTTP service discovery: one target per pod with
                                       ``__metrics_path__`` and the labels ``namespace``,
                                       ``deployment``, ``pod`` that a pod scrape would get
``GET /gateway/{ns}/{deployment}``     the server's gateway counter ``inferno_gateway_requests_total``
                                       (``model_name``), there at zero replicas too
``GET /gateway/targets``               service discovery of those: one target per Deployment with
                                       the labels ``namespace``, ``deployment``
``GET /healthz``                       ``ok``
``/pods/{ns}/{deployment}/{pod}/v1/``  with a :class:`LiveEngine`: each pod's OpenAI API, and the
``/deployments/{ns}/{deployment}/v1/`` Deployment's (routed), :mod:`load_emulator.openai_api.pods`
=====================================  ===========================================================

A Prometheus job for per-pod scraping (what the collector sees in e2e)::

    - job_name: vllm-emulated
      http_sd_configs: [{url: "http://127.0.0.1:8000/targets"}]

Callers: the ``serve`` CLI command and e2e tests. Handlers run on the event loop that advances the
engine, so a scrape always sees a consistent state.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from load_emulator.engine import FleetEngine
from load_emulator.exporter import GatewayCollector, Selector, make_registry
from load_emulator.openai_api.live import LiveEngine
from load_emulator.openai_api.pods import add_pod_routes

LOOPBACK = "127.0.0.1"
ENGINE_KEY = web.AppKey("engine", FleetEngine)


def metrics_app(engine: FleetEngine, live: LiveEngine | None = None) -> web.Application:
    """The metrics paths; with ``live`` (pacing ``engine``) also every pod's OpenAI API."""
    app = web.Application()
    app[ENGINE_KEY] = engine
    app.router.add_get("/metrics", _fleet)
    app.router.add_get("/metrics/{namespace}/{deployment}", _deployment)
    app.router.add_get("/metrics/{namespace}/{deployment}/{pod}", _pod)
    app.router.add_get("/targets", _targets)
    app.router.add_get("/gateway/targets", _gateway_targets)
    app.router.add_get("/gateway/{namespace}/{deployment}", _gateway)
    app.router.add_get("/healthz", _healthz)
    if live is not None:
        add_pod_routes(app, live, engine.catalog)
    return app


async def start_metrics_server(app: web.Application, port: int = 8000) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on 127.0.0.1; returns the runner (call ``cleanup()``) and the bound port."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


def _exposition(request: web.Request, selector: Selector, *, target_labels: bool) -> web.Response:
    registry = make_registry(request.app[ENGINE_KEY], selector, target_labels=target_labels)
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _fleet(request: web.Request) -> web.Response:
    return _exposition(request, Selector(), target_labels=True)


async def _deployment(request: web.Request) -> web.Response:
    info = request.match_info
    return _exposition(request, Selector(info["namespace"], info["deployment"]), target_labels=True)


async def _pod(request: web.Request) -> web.Response:
    info = request.match_info
    selector = Selector(info["namespace"], info["deployment"], info["pod"])
    engine = request.app[ENGINE_KEY]
    if not any(selector.matches(state, replica) for state, replica in engine.replicas()):
        raise web.HTTPNotFound(
            text=f"no emulated pod {info['namespace']}/{info['deployment']}/{info['pod']}\n"
        )
    return _exposition(request, selector, target_labels=False)


async def _targets(request: web.Request) -> web.Response:
    host = request.host
    groups = [
        {
            "targets": [host],
            "labels": {
                "__metrics_path__": f"/metrics/{state.namespace}/{state.name}/{replica.pod}",
                "namespace": state.namespace,
                "deployment": state.name,
                "pod": replica.pod,
            },
        }
        for state, replica in request.app[ENGINE_KEY].replicas()
    ]
    return web.json_response(groups)


async def _gateway(request: web.Request) -> web.Response:
    info = request.match_info
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(request.app[ENGINE_KEY], info["namespace"], info["deployment"]))
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _gateway_targets(request: web.Request) -> web.Response:
    host = request.host
    groups = [
        {
            "targets": [host],
            "labels": {
                "__metrics_path__": f"/gateway/{state.namespace}/{state.name}",
                "namespace": state.namespace,
                "deployment": state.name,
            },
        }
        for state, _ in request.app[ENGINE_KEY].gateways()
    ]
    return web.json_response(groups)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")
