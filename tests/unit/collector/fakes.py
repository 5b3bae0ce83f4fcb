"""Hand-written fakes of the collector's ports, and small builders for their records.

The fakes record every call, can be told to fail, and never touch the network. ``FakeMetrics``
answers by query *name*: it recognises the PromQL text it receives among the templates of
:mod:`collector.promql` built with the same settings, so a test says "completions returns X".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from collector.ports import DeploymentInfo, NodeInfo, PodInfo, SourceError
from collector.promql import build_queries
from collector.settings import CollectorSettings
from tests.conftest import SAMPLES

NOW_S = 1_700_000_000.0
NS = "llm"
STATIC_FILES = (
    "accelerator-data.json",
    "model-data.json",
    "serviceclass-data.json",
    "optimizer-data.json",
    "placement-data.json",
)


def static_cm() -> dict[str, str]:
    """The static ConfigMap's data, from samples/small."""
    return {name: (SAMPLES / "small" / name).read_text() for name in STATIC_FILES}


def dynamic_cm(**counts: int) -> dict[str, str]:
    cards = counts or {"A100": 64, "L4": 64, "AIU2": 64, "G2": 64}
    return {"capacity-data.json": json.dumps({"count": [{"type": t, "count": n} for t, n in cards.items()]})}


def deployment(
    name: str = "granite",
    ns: str = NS,
    replicas: int = 2,
    annotations: dict[str, str] | None = None,
    *,
    service_class: str = "Premium",
    **labels: str,
) -> DeploymentInfo:
    """A managed Deployment; keyword labels name ``inferno.server.<key>`` with '__' for '.'."""
    base = {
        "inferno.server.managed": "true",
        "inferno.server.model": "granite_13b",
        "inferno.server.class": service_class,
        "inferno.server.allocation.accelerator": "A100",
    }
    base.update({"inferno.server." + k.replace("__", "."): v for k, v in labels.items()})
    base = {k: v for k, v in base.items() if v != ""}
    return DeploymentInfo(ns, name, base, annotations or {}, replicas, replicas)


def sample(ns: str, dep: str, value: float | str, at_s: float = NOW_S, **extra: str) -> dict[str, Any]:
    return {"metric": {"namespace": ns, "deployment": dep, **extra}, "value": [at_s, str(value)]}


def healthy_answers(
    deps: list[tuple[str, str]],
    completions_rps: float = 2.0,
    growth_rps: float = 0.0,
    running: float = 3.0,
    waiting: float = 0.0,
    age_s: float = 5.0,
) -> dict[str, list[dict[str, Any]]]:
    """Answers of a healthy vLLM fleet (new metric names): 200 in / 500 out tokens per request."""
    per_query = {
        "completions": completions_rps,
        "token_completions": completions_rps,
        "queue_growth": growth_rps,
        "prompt_tokens": 200 * completions_rps,
        "generation_tokens": 500 * completions_rps,
        "ttft_sum": 0.3 * completions_rps,
        "ttft_count": completions_rps,
        "itl_sum": 0.02 * 500 * completions_rps,
        "itl_count": 500 * completions_rps,
        "running": running,
        "waiting": waiting,
        "last_sample": NOW_S - age_s,
    }
    return {q: [sample(ns, d, v) for ns, d in deps] for q, v in per_query.items()}


def buckets(
    ns: str, dep: str, cumulative: list[tuple[str, float | str]], at_s: float = NOW_S, **extra: str
) -> list[dict[str, Any]]:
    """A histogram bucket query's answer for one Deployment: one series per ``le``."""
    return [sample(ns, dep, rate, at_s, le=le, **extra) for le, rate in cumulative]


class FakeKube:
    def __init__(
        self,
        deployments: list[DeploymentInfo] | None = None,
        config_maps: dict[tuple[str, str], dict[str, str]] | None = None,
        nodes: list[NodeInfo] | None = None,
        pods: list[PodInfo] | None = None,
    ) -> None:
        self.deployments = deployments or []
        self.config_maps = (
            config_maps
            if config_maps is not None
            else {
                ("inferno", "inferno-static-data"): static_cm(),
                ("inferno", "inferno-dynamic-data"): dynamic_cm(),
            }
        )
        self.nodes = nodes or []
        self.pods = pods or []
        self.calls: list[tuple[str, Any]] = []
        self.fail: set[str] = set()

    def _maybe_fail(self, call: str) -> None:
        if call in self.fail:
            raise SourceError(f"Kubernetes API: {call}: 503 Service Unavailable")

    async def list_managed_deployments(self, namespaces: tuple[str, ...]) -> list[DeploymentInfo]:
        self.calls.append(("list_managed_deployments", namespaces))
        self._maybe_fail("list_managed_deployments")
        return [d for d in self.deployments if not namespaces or d.namespace in namespaces]

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        self.calls.append(("read_config_map", (namespace, name)))
        self._maybe_fail("read_config_map")
        return self.config_maps.get((namespace, name))

    async def list_nodes(self) -> list[NodeInfo]:
        self.calls.append(("list_nodes", None))
        self._maybe_fail("list_nodes")
        return self.nodes

    async def list_pods(self, namespaces: tuple[str, ...]) -> list[PodInfo]:
        self.calls.append(("list_pods", namespaces))
        self._maybe_fail("list_pods")
        return [p for p in self.pods if not namespaces or p.namespace in namespaces]


@dataclass
class FakeMetrics:
    settings: CollectorSettings
    answers: dict[str, Any] = field(default_factory=dict)
    down: bool = False
    calls: list[str] = field(default_factory=list)

    async def query(self, promql: str) -> list[dict[str, Any]]:
        names = {
            text: name
            for name, text in build_queries(
                self.settings.namespaces,
                self.settings.rate_window_s,
                self.settings.metrics_grouping,
                self.settings.token_window_s,
            ).items()
        }
        self.calls.append(names[promql])
        if self.down:
            raise SourceError("Prometheus unreachable: ConnectionError")
        answer = self.answers.get(names[promql], [])
        if isinstance(answer, Exception):
            raise answer
        return list(answer)
