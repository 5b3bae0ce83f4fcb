"""E2e: the full control cycle against the real kube-apiserver, Prometheus and the load emulator.

Role: proves issue 3's "done when": GET /invoke on the real controller collects load the
emulator exported through Prometheus, optimizes, and patches labelled Deployments (replicas,
accelerator node selector, GPU requests, batch size), after which pods run on the matching KWOK
nodes and Events record the change. Each test has its own namespace and node pool.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .cluster.local_cluster import LocalCluster
from .cluster.prometheus import LocalPrometheus
from .harness.data import GPU_LABEL, GPU_RESOURCE, PRODUCTS, ServerSpec
from .harness.scenario import Scenario, scenario_fixture

pytestmark = pytest.mark.e2e

# Premium llama_13b on 2xL4 per replica: the optimizer moves it to A100 (manifests/data) and,
# at this load, to more than one replica.
PREMIUM = ServerSpec(
    name="premium-llama", model="llama_13b", service_class="Premium", accelerator="L4",
    replicas=1, cards_per_replica=2, max_batch=9, rpm=3000, in_tokens=128, out_tokens=32,
)  # fmt: skip


@pytest.fixture
def scenario(
    local_cluster: LocalCluster, local_prometheus: LocalPrometheus, request: pytest.FixtureRequest
) -> Iterator[Scenario]:
    yield from scenario_fixture(local_cluster, local_prometheus, request)


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

    # The loop goes on: the next cycle (load now served by A100 pods) succeeds and fails no patch.
    again = autoscaler.invoke()
    assert again["outcome"] == "ok", again
    assert not [a for a in again["actions"] if a["outcome"] in {"failed", "conflict"}], again["actions"]
