"""The OpenAI API of every pod of a fleet engine, beside its metrics (the real-cluster demo).

The demo's emulated pods have no network of their own: one server on 127.0.0.1 serves their vLLM
metrics under per-pod paths (:mod:`load_emulator.metrics_http`), and with :func:`add_pod_routes`
their OpenAI API too:

===================================================  =============================================
``/pods/{namespace}/{deployment}/{pod}/v1/...``      that pod, as a client of the pod reaches it
``/deployments/{namespace}/{deployment}/v1/...``     the Deployment, routed like its Service
===================================================  =============================================

(``/v1/completions``, ``/v1/chat/completions``, ``/v1/models``, ``/health``; a base URL for a
client is everything before ``/v1``.) The served model name is the Deployment's model; the
replica's parameters are its model-data entry's. Requests join the pattern's load on the same
replicas, so the autoscaler sees them in the metrics it scrapes.
"""

from __future__ import annotations

import time

from aiohttp import web

from load_emulator.engine import Catalog
from load_emulator.openai_api import wire
from load_emulator.openai_api.app import Endpoint, add_openai_routes
from load_emulator.openai_api.live import LiveEngine
from load_emulator.openai_api.params import OutputLengths, ReplicaParams
from load_emulator.patterns import stable_seed

POD_PREFIX = "/pods/{namespace}/{deployment}/{pod}"
DEPLOYMENT_PREFIX = "/deployments/{namespace}/{deployment}"


class PodResolver:
    """Finds (and keeps) the endpoint of a request's pod or Deployment; 404 when it is gone."""

    def __init__(self, live: LiveEngine, catalog: Catalog, seed: int = 0) -> None:
        self.live = live
        self.catalog = catalog
        self.seed = seed
        self.created = int(time.time())
        self._endpoints: dict[tuple[str, str, str | None], Endpoint] = {}

    def __call__(self, request: web.Request) -> Endpoint:
        info = request.match_info
        namespace, deployment, pod = info["namespace"], info["deployment"], info.get("pod")
        entry = self.live.engine.entries.get((namespace, deployment))
        where = f"{namespace}/{deployment}" + (f"/{pod}" if pod else "")
        if entry is None or (pod is not None and pod not in entry.sim.replicas):
            raise wire.ApiError(404, f"no emulated pod or Deployment {where}", "NotFoundError")
        key = (namespace, deployment, pod)
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            state = entry.state
            accelerator = entry.sim.replicas[pod].accelerator if pod else state.accelerator
            perf = self.catalog.get((state.model, accelerator))
            if perf is None:
                raise wire.ApiError(404, f"no perf data for {state.model!r} on {accelerator!r} ({where})",
                                    "NotFoundError")  # fmt: skip
            params = ReplicaParams.from_entry(perf, max_batch=state.max_batch or perf.max_batch_size)
            lengths = OutputLengths(params, stable_seed(self.seed, where))
            endpoint = Endpoint(
                self.live, params, state.name, namespace, deployment, pod, lengths, self.created
            )
            self._endpoints[key] = endpoint
        return endpoint


def add_pod_routes(app: web.Application, live: LiveEngine, catalog: Catalog) -> None:
    resolver = PodResolver(live, catalog)
    add_openai_routes(app, resolver, POD_PREFIX)
    add_openai_routes(app, resolver, DEPLOYMENT_PREFIX)
