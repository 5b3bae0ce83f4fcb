"""E2e: capacity shrinking below the current allocation, with a Premium and a Free server.

Role: issue 7's capacity fault. Two servers of one model and load, Premium (priority 1) and Free
(priority 3), kept on A100, are first sized with room to spare. Then the capacity ConfigMap
shrinks below what they hold: the Premium server keeps its replicas (its SLO), the Free one
shrinks, with the reason in its decision, its action and its `InfernoScaled` Event, and the
controller's `inferno_desired_replicas`. Shrinking further, to what Premium alone needs: Free
cannot go to zero (scale-to-zero is not allowed), so the optimizer counts its floor of one card
first and Premium keeps the rest (optimizer/solver/reservations.py: without the reservation, Free
would be left unallocated and kept while its card is counted for Premium too). Nothing is placed
beyond the cards.
"""

from __future__ import annotations

from typing import Any

import pytest

from .harness.data import ServerSpec
from .harness.faults import add_label_load_servers
from .harness.scenario import Scenario
from .harness.services import Autoscaler

pytestmark = pytest.mark.e2e

PREMIUM = ServerSpec(
    name="premium-llama", model="llama_13b", service_class="Premium", accelerator="A100", replicas=1,
    cards_per_replica=1, max_batch=64, rpm=60, in_tokens=128, out_tokens=32, keep_accelerator=True,
)  # fmt: skip
FREE = ServerSpec(
    name="free-llama", model="llama_13b", service_class="Free", accelerator="A100", replicas=1,
    cards_per_replica=1, max_batch=64, rpm=60, in_tokens=128, out_tokens=32, keep_accelerator=True,
)  # fmt: skip


LOAD_LEVELS_RPM = (60, 240, 960, 2400)


def decision_of(report: dict[str, Any], server: str) -> dict[str, Any]:
    return next((d for d in report.get("decisions", []) if d["server"] == server), {})


def action_of(report: dict[str, Any], server: str) -> dict[str, Any]:
    return next((a for a in report.get("actions", []) if a["server"] == server), {})


def invoke_past_conflicts(autoscaler: Autoscaler) -> dict[str, Any]:
    """A cycle, again while its only trouble is a 409: the Deployment controller updates the status
    of the Deployments the previous cycle patched, so a patch carrying the resourceVersion read a
    moment earlier may conflict (by design: retried next cycle, see test_faults_conflict.py)."""
    return autoscaler.invoke_until(
        lambda r: not any(a.get("outcome") == "conflict" for a in r.get("actions", [])),
        "a cycle without a 409",
        tries=5,
        interval_s=1.0,
    )


def test_capacity_shrinking_keeps_premium_and_shrinks_free_never_to_zero(scenario: Scenario) -> None:
    scenario.add_nodes("A100", count=2, gpus_per_node=4)
    scenario.apply_data()  # capacity: 8 A100 cards
    add_label_load_servers(scenario, PREMIUM, FREE)
    autoscaler = scenario.start_autoscaler(prometheus_url="")

    # The lightest load (of a few) at which both fit in 8 cards with >= 2 replicas for Free, so
    # that Free has room to shrink; the load levels keep this independent of the model's numbers.
    tried = []
    for rpm in LOAD_LEVELS_RPM:
        for spec in (PREMIUM, FREE):
            body = {"metadata": {"labels": {"inferno.server.load.rpm": str(rpm)}}}
            scenario.apps.patch_namespaced_deployment(spec.name, scenario.ns, body)
        report = autoscaler.invoke()
        assert report["outcome"] == "ok", report
        premium, free = decision_of(report, PREMIUM.name), decision_of(report, FREE.name)
        tried.append(
            (rpm, premium.get("status"), premium.get("replicas"), free.get("status"), free.get("replicas"))
        )
        if premium["status"] == free["status"] == "allocated" and free["replicas"] >= 2:
            break
    else:
        raise AssertionError(f"no load level gives both servers room in 8 cards: {tried}")
    held = {s.name: scenario.replicas(s.name) for s in (PREMIUM, FREE)}
    assert held == {PREMIUM.name: premium["replicas"], FREE.name: free["replicas"]}, report["actions"]

    # Capacity below the current allocation: Premium's replicas plus one card for Free.
    premium_events = scenario.inferno_events(PREMIUM.name)
    smaller = held[PREMIUM.name] + 1
    assert smaller < sum(held.values())
    scenario.apply_data(cards={"A100": smaller})
    report = invoke_past_conflicts(autoscaler)
    assert report["outcome"] == "ok", report
    premium, free = decision_of(report, PREMIUM.name), decision_of(report, FREE.name)
    assert premium["status"] == "allocated" and premium["replicas"] == held[PREMIUM.name], premium
    assert scenario.replicas(PREMIUM.name) == held[PREMIUM.name]
    assert free["status"] == "partial" and free["reasons"], free
    shrunk = scenario.replicas(FREE.name)
    assert 1 <= shrunk < held[FREE.name], (free, action_of(report, FREE.name))
    assert action_of(report, FREE.name)["outcome"] == "applied", report["actions"]
    labels = {"namespace": scenario.ns, "deployment": FREE.name, "server": FREE.name}
    assert autoscaler.metric("inferno_desired_replicas", **labels) == shrunk
    scaled = [e for e in scenario.inferno_events(FREE.name) if e.startswith("InfernoScaled")]
    assert any(f"{held[FREE.name]}->{shrunk}" in e for e in scaled), scaled
    assert scenario.inferno_events(PREMIUM.name) == premium_events, "Premium was changed"

    # Only Premium's share left: Free keeps its floor of one card (never zero), Premium the rest.
    scenario.apply_data(cards={"A100": held[PREMIUM.name]})
    report = invoke_past_conflicts(autoscaler)
    premium, free = decision_of(report, PREMIUM.name), decision_of(report, FREE.name)
    assert free["status"] == "partial" and free["replicas"] == 1, free
    assert any("capacity floor" in r for r in free["reasons"]), free["reasons"]
    assert premium["replicas"] == max(held[PREMIUM.name] - 1, 1), premium
    assert scenario.replicas(FREE.name) == 1
    assert scenario.replicas(PREMIUM.name) == premium["replicas"]
    assert autoscaler.metric("inferno_unallocated_servers") == 0
