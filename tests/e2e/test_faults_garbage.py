"""E2e: Prometheus answering garbage, on the real kube-apiserver, Prometheus and load emulator.

Role: issue 7's "Prometheus returning garbage". The collector queries a small proxy in front of
the real Prometheus (harness.faults.GarbagePrometheus) that spoils every answer one way per cycle:
malformed JSON, HTTP 500, wrong types, NaN, +Inf, negative values. Every such cycle leaves the
oversized Deployment as it is, says why (collect errors or the value rejected, in the skipped
action's reasons; `inferno_untrusted_servers` in /metrics), and the controller stays healthy;
once the proxy passes the real answers through, the next cycle scales down, with its Event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .harness.faults import GARBAGE_MODES, GarbagePrometheus
from .harness.scenario import Scenario
from .test_faults import OVERSIZED, actions_of, applied

pytestmark = pytest.mark.e2e

# What each mode must leave in the report: (collect degraded?, text in collect errors or reasons).
EXPECTED = {
    "malformed-json": (True, "not a query result"),
    "http-500": (True, "Prometheus answered"),
    "wrong-types": (True, "malformed series ignored"),
    "nan": (False, "rejected NaN"),
    "inf": (False, "rejected +Inf"),
    "negative": (False, "rejected negative"),
}


@pytest.fixture
def garbage(scenario: Scenario) -> Iterator[GarbagePrometheus]:
    proxy = GarbagePrometheus(scenario.prometheus.url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def test_garbage_from_prometheus_scales_nothing_down_then_recovers(
    scenario: Scenario, garbage: GarbagePrometheus
) -> None:
    assert set(EXPECTED) == set(GARBAGE_MODES)
    scenario.add_nodes("L4", count=2, gpus_per_node=4)
    scenario.apply_data()
    scenario.add_servers(OVERSIZED)
    scenario.start_emulator()
    scenario.wait_load(OVERSIZED.name)
    autoscaler = scenario.start_autoscaler(prometheus_url=garbage.url)

    seen: dict[str, Any] = {}
    for mode in GARBAGE_MODES:
        garbage.mode = mode
        report = autoscaler.invoke()
        seen[mode] = report
        degraded, why = EXPECTED[mode]
        collected = report["collected"]
        assert collected["trusted"] == 0, (mode, collected)
        assert report["outcome"] == ("degraded" if degraded else "ok"), (mode, report)
        [action] = actions_of(report, OVERSIZED.name)
        assert action["outcome"] == "skipped", (mode, action)
        assert action["reasons"][0].startswith("data not trusted"), (mode, action["reasons"])
        said = collected["errors"] if degraded else action["reasons"]
        assert any(why in s for s in said), (mode, said)
        assert scenario.replicas(OVERSIZED.name) == OVERSIZED.replicas, mode
        assert autoscaler.metric("inferno_untrusted_servers") == 1, mode
    assert garbage.queries >= 13 * len(GARBAGE_MODES), "the collector did not ask the garbage proxy"
    assert autoscaler.metric("inferno_cycles_total", outcome="degraded") == 3
    assert autoscaler.healthy()
    assert not scenario.inferno_events(OVERSIZED.name)

    garbage.mode = "proxy"
    # Good answers again: the scale-down waits until every Ready pod's samples cover a rate window
    # (the partial-metrics hold), which a loaded machine's late scrapes can delay by a few seconds.
    report = autoscaler.invoke_until(
        applied(OVERSIZED.name), "a scale-down on good answers", tries=30, interval_s=1.0
    )
    assert report["outcome"] == "ok", report
    assert 1 <= scenario.replicas(OVERSIZED.name) < OVERSIZED.replicas
    assert autoscaler.metric("inferno_untrusted_servers") == 0
    assert any(e.startswith("InfernoScaled") for e in scenario.inferno_events(OVERSIZED.name))
