"""E2e: a pod-template change on full GPUs, on a real control plane (scheduler + Deployment controller).

Role: the rollout deadlock guard (actuator/rollout.py). One node with 2 A100 cards, one server with
2 one-card replicas: every card is taken. With Kubernetes' default RollingUpdate (maxSurge 25%),
a template change starts a surge pod that can never be scheduled: shown first by patching the
template directly, which leaves a Pending pod and an unfinished rollout. The actuator then must not
start such a rollout: it defers the batch change with the reason. With maxSurge 0 /
maxUnavailable 1 (as the samples ship) the same change rolls in place and completes.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from actuator.deployment import flag_value

from .harness.data import ServerSpec
from .harness.faults import add_label_load_servers
from .harness.scenario import Scenario

pytestmark = pytest.mark.e2e

SERVER = ServerSpec(
    name="full-llama", model="llama_13b", service_class="Premium", accelerator="A100", replicas=2,
    cards_per_replica=1, max_batch=7, rpm=30, in_tokens=128, out_tokens=32, min_replicas=2,
    max_replicas=2, keep_accelerator=True,
)  # fmt: skip
DEFAULT_STRATEGY = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
IN_PLACE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def batch_of(scenario: Scenario) -> str | None:
    dep = scenario.deployment(SERVER.name)
    assert dep.spec is not None and dep.spec.template.spec is not None
    return flag_value(list(dep.spec.template.spec.containers[0].args or []), "--max-num-seqs")


def phases(scenario: Scenario) -> list[str]:
    return sorted(p.phase for p in scenario.pods(SERVER.name))


def set_args(scenario: Scenario, batch: int) -> None:
    args = ["--model", SERVER.model, "--max-num-seqs", str(batch)]
    body = {"spec": {"template": {"spec": {"containers": [{"name": "vllm", "args": args}]}}}}
    scenario.apps.patch_namespaced_deployment(SERVER.name, scenario.ns, body)


def action_of(report: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in report.get("actions", []) if a["server"] == SERVER.name)


def test_template_change_on_full_gpus_is_deferred_not_deadlocked(scenario: Scenario) -> None:
    scenario.add_nodes("A100", count=1, gpus_per_node=2)
    scenario.apply_data()  # capacity: 2 A100 cards
    add_label_load_servers(scenario, SERVER)
    patch = {"spec": {"strategy": DEFAULT_STRATEGY}}
    scenario.apps.patch_namespaced_deployment(SERVER.name, scenario.ns, patch)
    scenario.wait(lambda: phases(scenario) == ["Running", "Running"] or None, "both replicas running")

    # The deadlock itself: a template change with the default surge on full cards.
    set_args(scenario, 9)
    scenario.wait(lambda: "Pending" in phases(scenario) or None, "a surge pod")
    time.sleep(5.0)  # it stays so: the only cards are held by the old pods the rollout waits on
    assert phases(scenario) == ["Pending", "Running", "Running"], scenario.pods(SERVER.name)
    set_args(scenario, SERVER.max_batch)  # roll back: the Pending surge pod goes away
    scenario.wait(lambda: phases(scenario) == ["Running", "Running"] or None, "rolled back")

    # The actuator does not start that rollout: the batch change is deferred, with the reason.
    autoscaler = scenario.start_autoscaler(prometheus_url="")
    report = autoscaler.invoke()
    assert report["outcome"] == "ok", report
    (decision,) = [d for d in report["decisions"] if d["server"] == SERVER.name]
    wanted = str(decision["max_batch"])
    assert wanted != str(SERVER.max_batch), decision  # the optimizer wants another batch
    action = action_of(report)
    assert any("rollout would deadlock" in r for r in action["reasons"]), action
    assert batch_of(scenario) == str(SERVER.max_batch)
    time.sleep(2.0)
    assert phases(scenario) == ["Running", "Running"], scenario.pods(SERVER.name)

    # Rolling in place (as the samples ship): the same change goes through and completes.
    scenario.apps.patch_namespaced_deployment(SERVER.name, scenario.ns, {"spec": {"strategy": IN_PLACE}})
    report = autoscaler.invoke()
    action = action_of(report)
    assert not any("deadlock" in r for r in action["reasons"]), action
    assert batch_of(scenario) == wanted

    def rolled() -> bool | None:
        dep = scenario.deployment(SERVER.name)
        status = dep.status
        done = (
            status is not None
            and (status.updated_replicas or 0) == 2
            and (status.replicas or 0) == 2
            and phases(scenario) == ["Running", "Running"]
        )
        return done or None

    scenario.wait(rolled, "rollout in place completed", timeout_s=90.0)
