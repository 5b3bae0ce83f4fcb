"""E2e: 409 conflicts from a concurrent writer, on the real kube-apiserver.

Role: issue 7's conflict fault. A thread keeps rewriting one of the Deployment's labels in a loop
while cycles run, so the actuator's patch, which carries the resourceVersion it read, is refused
with 409 by the API server; the re-read shows a label moved, which a plan reads. The action is
reported `conflict` (in /invoke, and `inferno_actions_total{outcome="conflict"}`), the cycle is
degraded, the writer's change is not clobbered and nothing of the plan is applied; once the writer
stops, the next cycle re-reads and applies, with its Event, and the writer's label survives.

A writer of what no plan reads (an annotation here; the Deployment controller's status writes
during a rollout in real clusters) also makes the patch a 409, but the actuator re-reads, sees
nothing it planned on moved, and patches again in the same cycle.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cluster.local_cluster import client_for
from .harness.data import ServerSpec
from .harness.faults import ConcurrentWriter, add_label_load_servers
from .harness.scenario import Scenario

pytestmark = pytest.mark.e2e

# Free llama_13b at 60 rpm holding 6 replicas of 2xL4 with 8 L4 cards in the capacity data: the
# plan allocates at most 4, so every good cycle wants to scale it down.
OVERSIZED = ServerSpec(
    name="free-llama", model="llama_13b", service_class="Free", accelerator="L4",
    replicas=6, cards_per_replica=2, max_batch=9, rpm=60, in_tokens=128, out_tokens=32,
)  # fmt: skip
TRIES = 12  # cycles; a conflict needs the writer to land between the actuator's read and patch
RE_READ = "re-read, only status or annotations moved; patched again"


def action_of(report: dict[str, Any]) -> dict[str, Any]:
    actions: list[dict[str, Any]] = report.get("actions", [])
    [action] = [a for a in actions if a.get("deployment") == OVERSIZED.name]
    return action


def test_concurrent_writer_gets_a_409_not_a_clobber_and_the_next_cycle_applies(scenario: Scenario) -> None:
    scenario.add_nodes("L4", count=2, gpus_per_node=4)
    scenario.apply_data()
    add_label_load_servers(scenario, OVERSIZED)
    autoscaler = scenario.start_autoscaler(prometheus_url="")
    writer_client = client_for(scenario.cluster.kubeconfig_path)
    writer = ConcurrentWriter(writer_client, scenario.ns, OVERSIZED.name, max_s=90).start()
    conflict: dict[str, Any] = {}
    outcomes = []
    try:
        for _ in range(TRIES):
            report = autoscaler.invoke()
            action = action_of(report)
            outcomes.append(action["outcome"])
            if action["outcome"] == "conflict":
                conflict = report
                break
            # The writer was not fast enough this time: the plan landed. Undo it and try again.
            assert action["outcome"] == "applied", report
            scenario.apps.patch_namespaced_deployment(
                OVERSIZED.name, scenario.ns, {"spec": {"replicas": OVERSIZED.replicas}}
            )
        else:
            raise AssertionError(f"no 409 in {TRIES} cycles: {outcomes}, writer wrote {writer.writes}")
        print(f"[e2e faults] 409 after {len(outcomes)} cycle(s) {outcomes}; writer: {writer.writes} writes")
        assert scenario.replicas(OVERSIZED.name) == OVERSIZED.replicas, "a conflicting patch was applied"
    finally:
        writer.stop()
        writer_client.close()  # type: ignore[no-untyped-call]

    action = action_of(conflict)
    assert conflict["outcome"] == "degraded", conflict
    assert action["error_kind"] == "conflict", action
    why = "labels changed by someone else since read"
    assert action["reasons"][-1] == f"conflict (409): {why}; retry next cycle", action["reasons"]
    assert writer.writes > 0 and writer.written(scenario.deployment(OVERSIZED.name)) == str(writer.writes), (
        "the writer's change was lost"
    )
    assert autoscaler.metric("inferno_actions_total", outcome="conflict") == 1
    assert autoscaler.metric("inferno_cycles_total", outcome="degraded") == 1
    assert not any(e.startswith("InfernoUpdateFailed") for e in scenario.inferno_events(OVERSIZED.name))

    report = autoscaler.invoke()  # the writer has stopped: re-read, re-planned, applied
    assert report["outcome"] == "ok", report
    action = action_of(report)
    assert action["outcome"] == "applied", report
    target = action["replicas_target"]
    assert 1 <= target < OVERSIZED.replicas and scenario.replicas(OVERSIZED.name) == target, action
    assert writer.written(scenario.deployment(OVERSIZED.name)) == str(writer.writes), (
        "the actuator's patch clobbered the writer's label"
    )
    scaled = [e for e in scenario.inferno_events(OVERSIZED.name) if e.startswith("InfernoScaled")]
    assert any(f"{OVERSIZED.replicas}->{target}" in e for e in scaled), scaled


def test_a_writer_of_what_no_plan_reads_costs_a_re_read_not_a_cycle(scenario: Scenario) -> None:
    scenario.add_nodes("L4", count=2, gpus_per_node=4)
    scenario.apply_data()
    add_label_load_servers(scenario, OVERSIZED)
    autoscaler = scenario.start_autoscaler(prometheus_url="", INFERNO_ACTUATOR_CONFLICT_RECHECKS="10")
    writer_client = client_for(scenario.cluster.kubeconfig_path)
    writer = ConcurrentWriter(writer_client, scenario.ns, OVERSIZED.name, max_s=90, field="annotations")
    outcomes, re_read = [], []
    try:
        writer.start()
        for _ in range(TRIES):
            report = autoscaler.invoke()
            action = action_of(report)
            outcomes.append(action["outcome"] if action["outcome"] == "applied" else action["reasons"][-1])
            re_read = [r for r in action["reasons"] if RE_READ in r]
            if re_read:
                break
            # Applied with no 409 (or, rarely, still a 409 after every re-read): undo and try again.
            scenario.apps.patch_namespaced_deployment(
                OVERSIZED.name, scenario.ns, {"spec": {"replicas": OVERSIZED.replicas}}
            )
        else:
            raise AssertionError(f"no re-read in {TRIES} cycles: {outcomes}, writer wrote {writer.writes}")
    finally:
        writer.stop()
        writer_client.close()  # type: ignore[no-untyped-call]
    print(f"[e2e faults] re-read after {len(outcomes)} cycle(s) {outcomes}: {re_read}")
    assert action["outcome"] == "applied" and report["outcome"] == "ok", report
    target = action["replicas_target"]
    live = scenario.deployment(OVERSIZED.name)
    assert live.spec is not None and live.spec.replicas == target < OVERSIZED.replicas, action
    assert writer.written(live) == str(writer.writes), "the actuator's patch clobbered the annotation"
    assert action["patch"]["metadata"]["resourceVersion"] == re_read[-1].rsplit(" ", 1)[-1]
    assert any(f"{OVERSIZED.replicas}->{target}" in e for e in scenario.inferno_events(OVERSIZED.name))
