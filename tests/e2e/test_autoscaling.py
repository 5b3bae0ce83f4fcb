"""E2e: the full control cycle against the real kube-apiserver, Prometheus and the load emulator.

Role: proves issue 3's "done when": GET /invoke on the real controller collects load the
emulator exported through Prometheus, optimizes, and patches labelled Deployments (replicas,
accelerator node selector, GPU requests, batch size), after which pods run on the matching KWOK
nodes and Events record the change. Each test has its own namespace and node pool.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from typing import Any

import pytest

from .harness.data import GPU_LABEL, GPU_RESOURCE, PRODUCTS, ServerSpec
from .harness.scenario import Scenario

pytestmark = pytest.mark.e2e

# Premium llama_13b on 2xL4 per replica: the optimizer moves it to A100 (manifests/data) and,
# at this load, to more than one replica.
PREMIUM = ServerSpec(
    name="premium-llama", model="llama_13b", service_class="Premium", accelerator="L4",
    replicas=1, cards_per_replica=2, max_batch=9, rpm=3000, in_tokens=128, out_tokens=32,
)  # fmt: skip


def test_full_cycle_scales_up_and_moves_to_chosen_gpu(scenario: Scenario) -> None:
    scenario.add_nodes("L4", count=1, gpus_per_node=4)
    a100_nodes = set(scenario.add_nodes("A100", count=2, gpus_per_node=4))
    scenario.apply_data()
    scenario.add_servers(PREMIUM)
    scenario.wait(
        lambda: [p for p in scenario.pods(PREMIUM.name) if p.phase == "Running"], "first pod running"
    )
    scenario.start_emulator(pattern="ramp", params={"from": "0.5", "to": "1.5", "t0_s": "0", "t1_s": "30"})
    scenario.wait_load(PREMIUM.name)
    autoscaler = scenario.start_autoscaler()

    report = autoscaler.invoke_until(
        lambda r: any(a["deployment"] == PREMIUM.name and a["outcome"] == "applied" for a in r["actions"]),
        "an applied action",
    )
    assert report["outcome"] == "ok", report
    decision = next(d for d in report["decisions"] if d["server"] == PREMIUM.name)
    chosen, replicas = decision["accelerator"], decision["replicas"]
    assert chosen == "A100" and replicas > PREMIUM.replicas, decision
    assert decision["reasons"], "every decision explains itself"

    dep = scenario.deployment(PREMIUM.name)
    assert dep.spec is not None and dep.metadata is not None
    assert dep.spec.replicas == replicas
    pod_spec = dep.spec.template.spec
    assert pod_spec is not None
    assert (pod_spec.node_selector or {}).get(GPU_LABEL) == PRODUCTS[chosen]
    resources = pod_spec.containers[0].resources
    assert resources is not None and (resources.requests or {}).get(GPU_RESOURCE) == "1"  # A100: 1 card
    assert (dep.metadata.labels or {})["inferno.server.allocation.accelerator"] == chosen
    assert str(decision["max_batch"]) in (pod_spec.containers[0].args or [])

    def all_running_on_a100() -> bool:
        pods = scenario.pods(PREMIUM.name)
        return len(pods) == replicas and all(p.phase == "Running" and p.node in a100_nodes for p in pods)

    scenario.wait(all_running_on_a100, f"{replicas} pods running on A100 nodes", timeout_s=60)
    reasons = {e.reason for e in scenario.events(PREMIUM.name)}
    assert reasons & {"InfernoScaled", "InfernoReconfigured"}, reasons

    # The collector reads the length spread from vLLM's length histograms through the real
    # Prometheus: the e2e emulator's lengths are deterministic, so every request of a histogram is
    # in one bucket and the spread is 0 (even while the token means read high at start-up).
    url = f"http://127.0.0.1:{autoscaler.ports['collector']}/collect"
    with urllib.request.urlopen(url, timeout=30) as resp:
        collected = json.loads(resp.read())
    (entry,) = [s for s in collected["system"]["servers"]["servers"] if s["name"] == PREMIUM.name]
    load = entry["currentAlloc"]["load"]
    assert load["inTokensCv2"] == 0.0 and load["outTokensCv2"] == 0.0, load

    # The loop goes on: the next cycle (load now served by A100 pods) succeeds and fails no patch.
    again = autoscaler.invoke()
    assert again["outcome"] == "ok", again
    assert not [a for a in again["actions"] if a["outcome"] in {"failed", "conflict"}], again["actions"]


def decision_of(report: dict[str, Any], server: str) -> dict[str, Any]:
    """The server's decision, or {} when it had none (e.g. untrusted data this cycle)."""
    return next((d for d in report.get("decisions", []) if d["server"] == server), {})


def action_of(report: dict[str, Any], deployment: str) -> dict[str, Any]:
    return next((a for a in report.get("actions", []) if a["deployment"] == deployment), {})


WINDOW_S = 10.0
# Free llama_13b kept on A100: 240 rpm wants several replicas (about 55 rpm each within the
# class's ITL target on this prefill-first data), the 3% step one.
STEPPED = ServerSpec(
    name="free-llama", model="llama_13b", service_class="Free", accelerator="A100", replicas=2,
    cards_per_replica=1, max_batch=64, rpm=240, in_tokens=128, out_tokens=32, keep_accelerator=True,
)  # fmt: skip


def test_scale_down_waits_for_the_stabilisation_window(scenario: Scenario) -> None:
    scenario.add_nodes("A100", count=2, gpus_per_node=4)
    scenario.apply_data()
    scenario.add_servers(STEPPED)
    scenario.start_emulator(pattern="steps", params={"factors": "1,0.03", "step_s": "25"})
    scenario.wait_load(STEPPED.name)
    autoscaler = scenario.start_autoscaler(INFERNO_CONTROLLER_SCALE_DOWN_WINDOW_S=str(WINDOW_S))

    last_high_s, high, held = 0.0, 0, list[dict[str, Any]]()
    seen: list[tuple[float, int | None, str | None, int | None]] = []
    for _ in range(90):  # one cycle a second, so the last high recommendation is recent when load drops
        report = autoscaler.invoke()
        assert report["outcome"] == "ok", report
        wanted = decision_of(report, STEPPED.name).get("replicas")
        action = action_of(report, STEPPED.name)
        target = action.get("replicas_target")
        # The load's count: once the controller hands the window's floor to the optimizer, the
        # decision's replicas include the held ones and replicas_needed is what the load needs.
        if action.get("replicas_needed") is not None:
            wanted = action["replicas_needed"]
        seen.append((report["started_at_s"], wanted, action.get("outcome"), target))
        if wanted is None or target is None:  # no trusted data this cycle: nothing to judge
            time.sleep(1.0)
            continue
        if target == 1:
            break
        if wanted < target:  # a lower recommendation held up by a higher one in the window
            held.append(action)
            assert any("window" in r for r in action["reasons"]), action["reasons"]
        if wanted > 1:
            last_high_s, high = report["started_at_s"], max(high, wanted)
        time.sleep(1.0)
    else:
        raise AssertionError(f"no scale-down to 1 within 90 cycles; high={high}, held={len(held)}")
    waited_s = report["started_at_s"] - last_high_s
    assert high > 1 and held, f"high={high}, held={held}, cycles (start, wanted, outcome, target): {seen}"
    # The actuator stamps recommendations with its own clock during the update stage: allow skew.
    assert waited_s >= WINDOW_S - 0.5, (
        f"scaled down {waited_s:.1f}s after the last high recommendation: {seen}"
    )
    assert scenario.replicas(STEPPED.name) == 1
    assert any("replicas" in e and "->1" in e for e in scenario.inferno_events(STEPPED.name))


# Same model and load in two classes, 4 A100 cards: priority 1 (Premium) gets what its SLO needs
# (3 replicas at 140 rpm: 2 serve up to ~110, 3 up to ~165, so measurement noise does not
# change the count), the Free class what is left (1 of the 3 it would need).
PRIORITY_1 = ServerSpec(
    name="premium-llama", model="llama_13b", service_class="Premium", accelerator="A100", replicas=2,
    cards_per_replica=1, max_batch=64, rpm=140, in_tokens=128, out_tokens=32,
)  # fmt: skip
PRIORITY_3 = dataclasses.replace(PRIORITY_1, name="free-llama", service_class="Free")


def test_limited_capacity_keeps_priority_class_and_reduces_the_lower_one(scenario: Scenario) -> None:
    a100 = set(scenario.add_nodes("A100", count=1, gpus_per_node=4))
    scenario.apply_data()  # capacity: the pool's 4 A100 cards, nothing else
    scenario.add_servers(PRIORITY_1, PRIORITY_3)
    scenario.start_emulator()
    scenario.wait_load(PRIORITY_1.name)
    scenario.wait_load(PRIORITY_3.name)
    autoscaler = scenario.start_autoscaler()

    # Until a cycle scales Premium up: the first cycles may see a rate still ramping up from the
    # emulator's start (the collector's rate window reaches back before it) and size for less.
    report = autoscaler.invoke_until(
        lambda r: (
            action_of(r, PRIORITY_1.name).get("outcome") == "applied"
            and (action_of(r, PRIORITY_1.name).get("replicas_target") or 0) > PRIORITY_1.replicas
        ),
        "premium scaled up",
        tries=20,
        interval_s=1.0,
    )
    premium, free = decision_of(report, PRIORITY_1.name), decision_of(report, PRIORITY_3.name)
    assert premium["status"] == "allocated" and premium["replicas"] > PRIORITY_1.replicas, premium
    assert free["status"] in {"partial", "unallocated"}, free
    assert (free["replicas"] or 0) < PRIORITY_3.replicas, free
    assert premium["replicas"] + (free["replicas"] or 0) <= 4
    assert scenario.replicas(PRIORITY_1.name) == premium["replicas"]
    assert scenario.replicas(PRIORITY_3.name) < PRIORITY_3.replicas

    def premium_running() -> bool:
        pods = scenario.pods(PRIORITY_1.name)
        return len(pods) == premium["replicas"] and all(p.phase == "Running" and p.node in a100 for p in pods)

    try:
        scenario.wait(premium_running, f"{premium['replicas']} premium pods running", timeout_s=60)
    except TimeoutError as exc:
        pods = {s.name: scenario.pods(s.name) for s in (PRIORITY_1, PRIORITY_3)}
        raise AssertionError(f"{exc}: {pods}; actions {report['actions']}") from None
