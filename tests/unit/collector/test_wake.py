"""Scale from zero: a server at zero replicas is loaded from its demand query, and only from it;
missing demand never wakes it and never counts as zero."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from collector.core import Ports, collect
from collector.labels import LabelLoad
from collector.load import KnownLoad, LoadEstimate, ResolvedLoad
from collector.ports import SourceError
from collector.settings import CollectorSettings
from collector.wake import Demand, demand_from_answer, load_at_zero
from contract.labels import DEMAND_QUERY
from tests.unit.collector.fakes import NOW_S, NS, FakeKube, FakeMetrics, deployment, healthy_answers

SETTINGS = CollectorSettings(prometheus_url="http://prometheus:9090")
QUERY = 'sum(rate(inferno_gateway_requests_total{deployment="granite"}[1m]))'
NOTHING = ResolvedLoad(None, "none", False, ("no load from any source",))


def sample(value: str) -> dict[str, Any]:
    return {"metric": {}, "value": [NOW_S, value]}


@pytest.mark.parametrize(
    ("answer", "rps", "note"),
    [
        ([sample("0.5"), sample("0.25")], 0.75, ""),
        ([sample("0")], 0.0, ""),
        ([], None, "demand query returned no series"),
        ([sample("NaN")], None, "demand query returned nan"),
        ([sample("-1")], None, "demand query returned -1.0"),
        ([{"metric": {}}], None, "malformed sample"),
        (SourceError("Prometheus unreachable"), None, "demand query failed: Prometheus unreachable"),
    ],
    ids=["sum", "zero", "empty-is-missing", "nan", "negative", "malformed", "error"],
)
def test_demand_answers(answer: Any, rps: float | None, note: str) -> None:
    demand = demand_from_answer(answer)
    assert demand.rps == rps
    assert note in demand.note


def test_demand_wakes_with_tokens_from_labels_then_last_known_then_defaults() -> None:
    last = KnownLoad(LoadEstimate(90, 200, 500), NOW_S - 60)
    woke = load_at_zero(NOTHING, Demand(0.5), LabelLoad(avg_in_tokens=100), last, (512, 256))
    assert woke.trusted and woke.source == "demand" and woke.load == LoadEstimate(30, 100, 500)
    woke = load_at_zero(NOTHING, Demand(2.0), LabelLoad(), None, (512, 256))
    assert woke.trusted and woke.load == LoadEstimate(120, 512, 256)
    assert "2 req/s at zero replicas: wake up (120 rpm)" in woke.notes[0]


def test_zero_demand_is_a_trusted_zero_and_missing_demand_changes_nothing() -> None:
    stays = load_at_zero(NOTHING, Demand(0.0), LabelLoad(), None, (512, 256))
    assert stays.trusted and stays.load is not None and stays.load.arrival_rpm == 0
    kept = load_at_zero(
        NOTHING, Demand(None, "demand query returned no series"), LabelLoad(), None, (512, 256)
    )
    assert not kept.trusted and kept.load is None
    assert kept.notes[-1] == "demand query returned no series"


class DemandMetrics(FakeMetrics):
    """FakeMetrics that also answers the demand queries it is given (by PromQL text)."""

    def __init__(self, settings: CollectorSettings, answers: dict[str, Any], demand: dict[str, Any]) -> None:
        super().__init__(settings, answers)
        self.demand = demand
        self.demand_calls: list[str] = []

    async def query(self, promql: str) -> list[dict[str, Any]]:
        if promql in self.demand:
            self.demand_calls.append(promql)
            answer = self.demand[promql]
            if isinstance(answer, Exception):
                raise answer
            return list(answer)
        return await super().query(promql)


def at_zero(name: str, query: str = QUERY) -> Any:
    dep = deployment(name, replicas=0, annotations={DEMAND_QUERY: query, "inferno.server/min-replicas": "0"})
    return dataclasses.replace(dep, ready_replicas=0)


@pytest.mark.parametrize(
    ("answer", "trusted", "rpm"),
    [([sample("1.5")], True, 90.0), ([sample("0")], True, 0.0), ([], False, None)],
    ids=["wakes", "stays-at-zero", "missing-keeps-as-is"],
)
async def test_collect_reads_the_demand_of_servers_at_zero_only(
    answer: Any, trusted: bool, rpm: float | None
) -> None:
    other_query = 'sum(rate(inferno_gateway_requests_total{deployment="running"}[1m]))'
    running = deployment("running", replicas=2, annotations={DEMAND_QUERY: other_query})
    kube = FakeKube([at_zero("granite"), running])
    metrics = DemandMetrics(
        SETTINGS, healthy_answers([(NS, "running")]), {QUERY: answer, other_query: [sample("9")]}
    )
    out = await collect(NOW_S, Ports(kube, kube, metrics), SETTINGS, {})
    assert metrics.demand_calls == [QUERY]  # the running server is read from its vLLM metrics
    server = next(s for s in out.result.servers if s.deployment == "granite")
    assert server.trusted is trusted
    assert server.arrival_rpm == rpm
    if trusted:
        assert server.load_source == "demand"
    assert not out.result.degraded


async def test_a_failing_demand_query_never_fails_the_collect() -> None:
    kube = FakeKube([at_zero("granite")])
    metrics = DemandMetrics(SETTINGS, {}, {QUERY: SourceError("Prometheus: 503")})
    out = await collect(NOW_S, Ports(kube, kube, metrics), SETTINGS, {})
    (server,) = out.result.servers
    assert not server.trusted and any("demand query failed" in n for n in server.notes)
