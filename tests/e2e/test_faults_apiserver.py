"""E2e: kube-apiserver restarted in the middle of a cycle.

Role: issue 7's API-server fault. The optimizer is held (SIGSTOP) so a cycle waits in its
optimize stage after a good collect; then the kube-apiserver process of the local cluster is
stopped and the optimizer resumed, so the plan reaches an actuator that cannot read the
Deployments. The cycle fails at `update` (transient; in /invoke and `inferno_errors_total`),
nothing is half-applied (the Deployment is untouched), the controller stays healthy; once the
API server is back the next cycle applies the whole plan, with its Event.
"""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from .harness.data import GPU_LABEL, PRODUCTS
from .harness.scenario import Scenario
from .test_faults_components import MISPLACED, applied, assert_untouched, misplaced_world

pytestmark = pytest.mark.e2e


def test_apiserver_restart_mid_cycle_applies_nothing_then_the_next_cycle_recovers(scenario: Scenario) -> None:
    cluster = scenario.cluster
    autoscaler = misplaced_world(scenario, INFERNO_CONTROLLER_OPTIMIZE_TIMEOUT_S="30")
    before = scenario.deployment(MISPLACED.name)
    collects = autoscaler.log_count("collector", "collect.done")

    autoscaler.signal("optimizer", signal.SIGSTOP)
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            cycle = pool.submit(autoscaler.invoke)
            scenario.wait(
                lambda: autoscaler.log_count("collector", "collect.done") > collects,
                "the cycle's collect",
                20,
            )
            cluster.stop_apiserver()  # the cycle now waits on the optimizer; its plan is made
        finally:
            autoscaler.signal("optimizer", signal.SIGCONT)
        try:
            report = cycle.result(timeout=60)
            assert report["outcome"] == "failed", report
            assert report["collected"]["trusted"] == 1 and report["decisions"], report
            [error] = report["errors"]
            assert (error["stage"], error["kind"]) == ("update", "transient"), error
            assert "cannot read Deployments" in error["message"], error
            assert report["actions"] == [], report["actions"]
            assert autoscaler.metric("inferno_errors_total", stage="update", kind="transient") == 1
            assert autoscaler.healthy()
        finally:
            cluster.start_apiserver()

    assert_untouched(scenario, before)  # nothing half-applied while the API server was away
    report = autoscaler.invoke_until(applied, "an applied action after the restart", tries=4)
    assert report["outcome"] == "ok", report
    dep = scenario.deployment(MISPLACED.name)
    assert dep.spec is not None and dep.spec.template.spec is not None
    assert (dep.spec.template.spec.node_selector or {})[GPU_LABEL] == PRODUCTS["A100"]
    events = scenario.inferno_events(MISPLACED.name)
    assert any(e.startswith(("InfernoReconfigured", "InfernoScaled")) for e in events), events
