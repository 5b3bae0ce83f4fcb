"""E2e: scale to zero after idling, and back within one cycle of demand.

Role: issue 21's "done when" for zero. A server with `min-replicas: 0` on the real control plane,
load from the emulator through Prometheus, the actuator allowed to scale to zero: while it is
idle (vLLM's counters and gauges measured zero) the cycle takes it to 0 replicas and its pods
(and cards) go. At zero there is no vLLM metric; the server's demand query
(`inferno.server/demand-query`) reads the emulator's gateway counter. While it reads 0 the server
stays at zero; the first cycle after it shows demand brings a replica back.
"""

from __future__ import annotations

import pytest

from .harness.data import ServerSpec
from .harness.scenario import Scenario

pytestmark = pytest.mark.e2e

IDLE_S = 75  # the emulator's pattern: no requests for this long, then the server's rpm

SERVER = ServerSpec(
    name="sleepy-llama", model="llama_13b", service_class="Free", accelerator="L4",
    replicas=1, cards_per_replica=2, max_batch=9, rpm=120, min_replicas=0, max_replicas=4,
    keep_accelerator=True,
)  # fmt: skip


def test_idle_server_goes_to_zero_and_wakes_within_one_cycle_of_demand(scenario: Scenario) -> None:
    scenario.add_nodes("L4", count=1, gpus_per_node=4)
    scenario.apply_data()
    scenario.add_servers(SERVER)
    sel = f'namespace="{scenario.ns}",deployment="{SERVER.name}"'
    demand = f"sum(rate(inferno_gateway_requests_total{{{sel}}}[20s]))"
    scenario.apps.patch_namespaced_deployment(
        SERVER.name, scenario.ns, {"metadata": {"annotations": {"inferno.server/demand-query": demand}}}
    )
    scenario.wait(
        lambda: [p for p in scenario.pods(SERVER.name) if p.phase == "Running"], "first pod running"
    )
    scenario.start_emulator(pattern="steps", params={"factors": "0,1", "step_s": str(IDLE_S)}, gateway=True)
    autoscaler = scenario.start_autoscaler(INFERNO_ACTUATOR_ALLOW_SCALE_TO_ZERO="true")

    # idle: once its pod's samples cover a rate window, the measured zero load takes it to 0
    report = autoscaler.invoke_until(
        lambda r: any(a["deployment"] == SERVER.name and a["replicas_target"] == 0 for a in r["actions"]),
        "the idle server scaled to zero",
        tries=40,
        interval_s=1.0,
    )
    action = next(a for a in report["actions"] if a["deployment"] == SERVER.name)
    assert action["outcome"] == "applied", action
    assert scenario.replicas(SERVER.name) == 0
    scenario.wait(lambda: not scenario.pods(SERVER.name), "its pods gone, its cards free")

    # at zero, no demand yet: the demand query reads 0 and it stays at zero
    scenario.wait(lambda: scenario.prometheus.query_value(demand) == 0, "the gateway counter scraped")
    report = autoscaler.invoke()
    action = next(a for a in report["actions"] if a["deployment"] == SERVER.name)
    assert report["collected"]["trusted"] == 1, report["collected"]  # a measured zero, not missing data
    assert (action["outcome"], action["replicas_target"]) == ("unchanged", 0), action
    assert scenario.replicas(SERVER.name) == 0

    # demand appears at the gateway: the next cycle brings the first replica back
    scenario.wait(
        lambda: (scenario.prometheus.query_value(demand) or 0) > 0,
        "demand at the gateway",
        timeout_s=IDLE_S + 30,
    )
    report = autoscaler.invoke()
    action = next(a for a in report["actions"] if a["deployment"] == SERVER.name)
    assert action["outcome"] == "applied" and action["replicas_target"] >= 1, (action, report["collected"])
    assert scenario.replicas(SERVER.name) >= 1
    scenario.wait(
        lambda: [p for p in scenario.pods(SERVER.name) if p.phase == "Running"], "a pod running again"
    )
