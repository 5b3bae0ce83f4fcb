"""E2e: one of the four containers crashing or hanging, on the real kube-apiserver.

Role: issue 7's container faults. The collector is killed (SIGKILL, a crashed container) and the
optimizer is frozen (SIGSTOP, a hung one): the controller's call fails or times out, the cycle is
skipped with the stage and reason in the /invoke report and in `inferno_errors_total`, the
controller stays healthy (no crash loop) and nothing is patched. Restarting the collector and
resuming the optimizer (SIGCONT) lets the next cycle act, with its Event. A hung actuator times
the update out; when it resumes, the request the controller gave up on is not acted on. The load
is declared in labels (no Prometheus configured: labels are then the trusted source), so no
emulator is needed.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from .harness.data import GPU_LABEL, PRODUCTS, ServerSpec
from .harness.faults import add_label_load_servers
from .harness.scenario import Scenario
from .harness.services import Autoscaler

pytestmark = pytest.mark.e2e

# Premium llama_13b on L4 at 600 rpm: the optimizer moves it to A100 (see test_autoscaling.py).
MISPLACED = ServerSpec(
    name="premium-llama", model="llama_13b", service_class="Premium", accelerator="L4",
    replicas=1, cards_per_replica=2, max_batch=9, rpm=600, in_tokens=128, out_tokens=32,
)  # fmt: skip
# Short stage timeouts keep a hung container's cycle short.
FAST_TIMEOUTS = {
    "INFERNO_CONTROLLER_COLLECT_TIMEOUT_S": "3",
    "INFERNO_CONTROLLER_OPTIMIZE_TIMEOUT_S": "2",
    "INFERNO_CONTROLLER_UPDATE_TIMEOUT_S": "3",
}


def misplaced_world(scenario: Scenario, **env: str) -> Autoscaler:
    """One L4 and one A100 node, the data, MISPLACED with its load in labels, the four services."""
    scenario.add_nodes("L4", count=1, gpus_per_node=4)
    scenario.add_nodes("A100", count=1, gpus_per_node=4)
    scenario.apply_data()
    add_label_load_servers(scenario, MISPLACED)
    return scenario.start_autoscaler(None, prometheus_url="", **{**FAST_TIMEOUTS, **env})


def assert_skipped(report: dict[str, Any], stage: str, kind: str, why: str) -> None:
    """The cycle failed at `stage` with `kind`, its message saying `why`, and changed nothing."""
    assert report["outcome"] == "failed", report
    [error] = report["errors"]
    assert (error["stage"], error["kind"]) == (stage, kind), error
    assert why in error["message"], error
    assert report["actions"] == [], report["actions"]
    assert any("nothing changed" in n for n in report["notes"]), report["notes"]


def assert_untouched(scenario: Scenario, before: Any) -> None:
    dep = scenario.deployment(MISPLACED.name)
    assert dep.metadata is not None and dep.spec is not None and dep.spec.template.spec is not None
    assert dep.metadata.generation == before.metadata.generation, "the Deployment was patched"
    assert dep.spec.replicas == MISPLACED.replicas
    assert (dep.spec.template.spec.node_selector or {})[GPU_LABEL] == PRODUCTS["L4"]
    assert not scenario.inferno_events(MISPLACED.name)


def applied(report: dict[str, Any]) -> bool:
    return any(a["deployment"] == MISPLACED.name and a["outcome"] == "applied" for a in report["actions"])


def test_crashed_or_hung_container_skips_the_cycle_then_the_next_one_recovers(scenario: Scenario) -> None:
    autoscaler = misplaced_world(scenario)
    before = scenario.deployment(MISPLACED.name)

    autoscaler.kill("collector")  # a crashed container: connection refused
    report = autoscaler.invoke()
    assert_skipped(report, "collect", "transient", "collect")
    assert "decisions" not in report or report["decisions"] == []
    assert_untouched(scenario, before)
    assert autoscaler.metric("inferno_errors_total", stage="collect", kind="transient") == 1
    assert autoscaler.healthy()
    autoscaler.restart("collector")

    autoscaler.signal("optimizer", signal.SIGSTOP)  # a hung container: accepts, never answers
    try:
        report = autoscaler.invoke()
        assert_skipped(report, "optimize", "transient", "timed out after 2s")
        assert report["collected"]["trusted"] == 1, report["collected"]
        assert report["stage_ms"]["optimize"] >= 2000 * 0.9, report["stage_ms"]
        assert_untouched(scenario, before)
        assert autoscaler.metric("inferno_errors_total", stage="optimize", kind="transient") == 1
        assert autoscaler.metric("inferno_cycles_total", outcome="failed") == 2
        assert autoscaler.healthy()
    finally:
        autoscaler.signal("optimizer", signal.SIGCONT)

    autoscaler.signal("actuator", signal.SIGSTOP)  # hung while the plan is handed over
    try:
        report = autoscaler.invoke()
        assert report["outcome"] == "failed" and report["decisions"], report
        [error] = report["errors"]
        assert (error["stage"], error["kind"]) == ("update", "transient"), error
        assert "timed out after 3s" in error["message"], error
    finally:
        autoscaler.signal("actuator", signal.SIGCONT)
    # Resumed, the actuator reads the request the controller gave up on: it must not act on it.
    late = report["cycle_id"]
    scenario.wait(lambda: autoscaler.log_count("actuator", late, "update_expired"), "the late request", 20)
    assert_untouched(scenario, before)
    assert not autoscaler.log_count("actuator", late, "server_action"), "a late plan was acted on"
    assert autoscaler.metric("inferno_errors_total", stage="update", kind="transient") == 1

    report = autoscaler.invoke_until(applied, "an applied action once the optimizer answers", tries=4)
    assert report["outcome"] == "ok", report
    dep = scenario.deployment(MISPLACED.name)
    assert dep.spec is not None and dep.spec.template.spec is not None
    assert (dep.spec.template.spec.node_selector or {})[GPU_LABEL] == PRODUCTS["A100"]
    assert autoscaler.metric("inferno_cycles_total", outcome="ok") == 1
    assert autoscaler.metric("inferno_actions_total", outcome="applied") == 1
    events = scenario.inferno_events(MISPLACED.name)
    assert any(e.startswith(("InfernoReconfigured", "InfernoScaled")) for e in events), events
