"""E2e: the loop under faults, against the real kube-apiserver, Prometheus and load emulator.

Role: issue 4's fault scenarios. Prometheus stopped (a real one of the test's own, stopped and
started again on the same port and data): the cycles are reported degraded, in /invoke and the
controller's metrics, and no Deployment is scaled down on data nobody trusts; once Prometheus
answers again the next cycle acts, with its Event. A malformed data ConfigMap: the cycle fails
with a message naming the ConfigMap and key, nothing is patched, and fixing the ConfigMap lets the
next cycle act. The other faults are in test_faults_*.py. Each scenario starts from a
state the optimizer would change, so "nothing changed" is a real assertion.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .cluster.prometheus import LocalPrometheus
from .harness.data import GPU_LABEL, PRODUCTS, STATIC_CONFIGMAP, ServerSpec, static_documents
from .harness.scenario import Scenario

pytestmark = pytest.mark.e2e

# Free llama_13b at light load holding 6 replicas of 2xL4 while the pool (and the capacity data)
# has 8 L4 cards: whatever the model says, a good cycle allocates at most 4, so it scales down.
OVERSIZED = ServerSpec(
    name="free-llama", model="llama_13b", service_class="Free", accelerator="L4",
    replicas=6, cards_per_replica=2, max_batch=9, rpm=60, in_tokens=128, out_tokens=32,
)  # fmt: skip
# Premium llama_13b on L4: the optimizer moves it to A100 (see test_autoscaling.py).
MISPLACED = ServerSpec(
    name="premium-llama", model="llama_13b", service_class="Premium", accelerator="L4",
    replicas=1, cards_per_replica=2, max_batch=9, rpm=600, in_tokens=128, out_tokens=32,
)  # fmt: skip


def actions_of(report: dict[str, Any], deployment: str) -> list[dict[str, Any]]:
    return [a for a in report.get("actions", []) if a.get("deployment") == deployment]


def applied(deployment: str) -> Any:
    return lambda r: any(a["outcome"] == "applied" for a in actions_of(r, deployment))


@pytest.fixture
def own_prometheus(local_prometheus: LocalPrometheus) -> Iterator[LocalPrometheus]:
    """A Prometheus of this test's own, so stopping it never disturbs the session's shared one."""
    with LocalPrometheus(local_prometheus.binary, scrape_interval_s=1.0) as prom:
        yield prom


def test_prometheus_stopped_degrades_without_scaling_down_then_recovers(
    own_prometheus: LocalPrometheus, scenario: Scenario
) -> None:
    scenario.prometheus = own_prometheus  # the emulator's targets and wait_load go to it too
    scenario.add_nodes("L4", count=2, gpus_per_node=4)
    scenario.apply_data()
    scenario.add_servers(OVERSIZED)
    scenario.start_emulator()
    scenario.wait_load(OVERSIZED.name)
    autoscaler = scenario.start_autoscaler()  # pointed at own_prometheus

    own_prometheus.stop_server()
    try:
        for cycle in (1, 2):  # a second cycle: nothing may turn into trust while it is down
            report = autoscaler.invoke()
            assert report["outcome"] == "degraded", report
            collected = report["collected"]
            assert collected["degraded"] and collected["trusted"] == 0, collected
            assert any("Prometheus unreachable" in e for e in collected["errors"]), collected["errors"]
            [action] = actions_of(report, OVERSIZED.name)
            assert action["outcome"] == "skipped", action
            assert any("not trusted" in r for r in action["reasons"]), action["reasons"]
            assert scenario.replicas(OVERSIZED.name) == OVERSIZED.replicas
            assert autoscaler.metric("inferno_cycles_total", outcome="degraded") == cycle
            assert autoscaler.metric("inferno_untrusted_servers") == 1
        assert autoscaler.healthy()
        assert not scenario.inferno_events(OVERSIZED.name)
    finally:
        own_prometheus.start_server()

    scenario.wait_load(OVERSIZED.name)  # same port and TSDB: the collector needs no restart
    # Back, Prometheus has a gap of its outage in every series: a pod counts as reporting again once
    # its samples cover a rate window (10 s here), and until all four do the server is held (no
    # scale-down on half a picture), so the scale-down may take a window.
    report = autoscaler.invoke_until(
        applied(OVERSIZED.name), "a scale-down after recovery", tries=30, interval_s=1.0
    )
    assert report["outcome"] == "ok", report
    after = scenario.replicas(OVERSIZED.name)
    assert 1 <= after < OVERSIZED.replicas, actions_of(report, OVERSIZED.name)
    assert autoscaler.metric("inferno_cycles_total", outcome="ok") >= 1
    assert autoscaler.metric("inferno_untrusted_servers") == 0
    assert any(e.startswith("InfernoScaled") for e in scenario.inferno_events(OVERSIZED.name))


def test_malformed_configmap_fails_the_cycle_with_a_clear_error_and_changes_nothing(
    scenario: Scenario,
) -> None:
    scenario.add_nodes("L4", count=1, gpus_per_node=4)
    scenario.add_nodes("A100", count=1, gpus_per_node=4)
    good = static_documents()
    bad = dict(good)
    models = json.loads(json.dumps(good["model-data.json"]))
    models["models"][0]["decodeParms"]["alpha"] = -1
    bad["model-data.json"] = models
    bad["serviceclass-data.json"] = '{"serviceClasses": [ not json'
    scenario.apply_data(static=bad)
    scenario.add_servers(MISPLACED)
    scenario.start_emulator()
    scenario.wait_load(MISPLACED.name)
    autoscaler = scenario.start_autoscaler()
    before = scenario.deployment(MISPLACED.name)

    report = autoscaler.invoke()
    assert report["outcome"] == "failed", report
    [error] = report["errors"]
    assert error["stage"] == "collect", error
    assert STATIC_CONFIGMAP in error["message"], error
    assert "serviceclass-data.json" in error["message"] or "model-data.json" in error["message"], error
    assert report["actions"] == [] and report["decisions"] == [], report
    after = scenario.deployment(MISPLACED.name)
    assert after.metadata is not None and before.metadata is not None
    assert after.metadata.generation == before.metadata.generation
    assert after.spec is not None and after.spec.replicas == MISPLACED.replicas
    assert not scenario.inferno_events(MISPLACED.name)

    # One broken document at a time: the message names the remaining bad field.
    bad["serviceclass-data.json"] = good["serviceclass-data.json"]
    scenario.apply_data(static=bad)
    report = autoscaler.invoke()
    assert report["outcome"] == "failed", report
    assert "model-data.json" in report["errors"][0]["message"], report["errors"]
    assert "alpha" in report["errors"][0]["message"], report["errors"]

    scenario.apply_data(static=good)
    report = autoscaler.invoke_until(applied(MISPLACED.name), "an applied action once the data is fixed")
    dep = scenario.deployment(MISPLACED.name)
    assert dep.spec is not None and dep.spec.template.spec is not None
    assert (dep.spec.template.spec.node_selector or {})[GPU_LABEL] == PRODUCTS["A100"]
