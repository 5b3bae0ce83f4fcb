"""E2e: high availability. Two controllers elect a leader on a real Lease; only the leader acts.

Role: proves issue 7's "done when" against the real kube-apiserver: two controller processes
(leader election on, defaults 15 s lease / 10 s renew deadline / 2 s retry) share one collector,
optimizer and actuator. Exactly one holds the Lease; the standby's /invoke says "standby, the leader
is X" and changes nothing; the leader's /invoke patches the Deployment. After `kill -9` of the
leader the standby takes over and runs a cycle (failover measured, < 30 s); a third controller
then takes over from a leader stopped with SIGTERM, which releases the Lease (near-immediate).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .harness.controllers import ElectingController, lease_holder
from .harness.data import ServerSpec
from .harness.scenario import Scenario
from .harness.services import Autoscaler

pytestmark = pytest.mark.e2e

# Premium llama_13b on 2xL4: the optimizer moves it to A100 and scales it up (a visible patch).
PREMIUM = ServerSpec(
    name="premium-llama", model="llama_13b", service_class="Premium", accelerator="L4",
    replicas=1, cards_per_replica=2, max_batch=9, rpm=3000, in_tokens=128, out_tokens=32,
)  # fmt: skip
LEASE_DURATION_S = 15.0  # the controller's defaults, not overridden here
RETRY_PERIOD_S = 2.0
FAILOVER_LIMIT_S = 30.0


class Fleet:
    """The shared three services and the electing controllers of one test; all stopped at the end."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.base = Autoscaler(
            scenario.cluster.kubeconfig_path, scenario.work_dir, prometheus_url=scenario.prometheus.url,
            namespaces=[scenario.ns], config_namespace=scenario.ns,
            services=("collector", "optimizer", "actuator"),
        )  # fmt: skip
        self.controllers: dict[str, ElectingController] = {}

    def add(self, name: str) -> ElectingController:
        ctl = ElectingController(self.base, name, self.scenario.ns)
        self.controllers[name] = ctl
        return ctl.start()

    def holder(self) -> tuple[str, int]:
        return lease_holder(self.scenario.cluster.api_client, self.scenario.ns)

    def logs(self) -> str:
        return "\n".join([self.base.logs(), *(c.log_tail() for c in self.controllers.values())])

    def stop(self) -> None:
        for ctl in self.controllers.values():
            ctl.stop()
        self.base.stop()


@pytest.fixture
def fleet(scenario: Scenario) -> Iterator[Fleet]:
    fleet = Fleet(scenario)
    try:
        fleet.base.start()
        yield fleet
    finally:
        fleet.stop()


def until_acting(ctl: ElectingController, limit_s: float) -> tuple[float, dict[str, Any]]:
    """Invoke `ctl` every 0.25 s until a cycle is not standby; (seconds it took, that report)."""
    start = time.monotonic()
    report: dict[str, Any] = {}
    for _ in range(int(limit_s / 0.25) + 1):
        report = ctl.invoke()
        if report["outcome"] != "standby":
            return time.monotonic() - start, report
        if time.monotonic() - start > limit_s:
            break
        time.sleep(0.25)
    raise AssertionError(f"{ctl.name} still standby after {limit_s:g}s: {report}")


def spec_generation(scenario: Scenario) -> int:
    """metadata.generation: changes with the spec only (status updates leave it alone)."""
    meta = scenario.deployment(PREMIUM.name).metadata
    assert meta is not None
    return int(meta.generation or 0)


def test_one_leader_acts_and_the_standby_takes_over_after_kill_and_release(
    scenario: Scenario, fleet: Fleet
) -> None:
    scenario.add_nodes("L4", count=1, gpus_per_node=4)
    scenario.add_nodes("A100", count=2, gpus_per_node=4)
    scenario.apply_data()
    scenario.add_servers(PREMIUM)
    scenario.start_emulator()
    scenario.wait_load(PREMIUM.name)
    a, b = fleet.add("controller-a"), fleet.add("controller-b")

    # Exactly one leads: the Lease names one of them, and only that one says is_leader.
    holder = scenario.wait(lambda: fleet.holder()[0] or None, "a Lease holder", timeout_s=30)
    assert holder in {"controller-a", "controller-b"}, holder
    leader, standby = (a, b) if holder == a.name else (b, a)

    # The standby runs nothing and names the leader; the Deployment's spec is untouched.
    generation = spec_generation(scenario)
    report = standby.invoke()
    assert report["outcome"] == "standby", report
    assert report["leader"] == {"identity": standby.name, "holder": leader.name, "is_leader": False}
    assert any(f"the leader is {leader.name}" in n for n in report["notes"]), report["notes"]
    assert report["actions"] == [] and report["collected"] is None
    assert spec_generation(scenario) == generation

    # The leader acts: it patches the Deployment (move to A100, more replicas).
    for _ in range(8):
        report = leader.invoke()
        if any(x["deployment"] == PREMIUM.name and x["outcome"] == "applied" for x in report["actions"]):
            break
    else:
        raise AssertionError(f"the leader never patched: {report}\n{fleet.logs()}")
    assert report["leader"]["is_leader"] is True
    assert spec_generation(scenario) > generation

    # kill -9 the leader: the standby waits out the lease (15 s by its own clock) and takes over.
    _, transitions = fleet.holder()
    killed_at = time.monotonic()
    leader.signal(signal.SIGKILL)
    leader.wait_exit()
    _, report = until_acting(standby, FAILOVER_LIMIT_S + 10)
    failover_s = time.monotonic() - killed_at
    print(
        f"\nfailover after kill -9: {failover_s:.1f}s (lease {LEASE_DURATION_S:g}s, "
        f"retry {RETRY_PERIOD_S:g}s)"
    )
    assert report["outcome"] == "ok" and report["leader"]["is_leader"] is True, report
    assert report["collected"]["servers"] == 1, report
    assert fleet.holder() == (standby.name, transitions + 1)
    assert failover_s < FAILOVER_LIMIT_S, f"failover took {failover_s:.1f}s\n{fleet.logs()}"
    # ...and not before the dead leader's lease could have expired (it renewed <= 2 s before the kill)
    assert failover_s >= LEASE_DURATION_S - RETRY_PERIOD_S - 0.5, failover_s

    # A new standby; SIGTERM the leader: it releases the Lease, so the handover needs no expiry.
    c = fleet.add("controller-c")
    scenario.wait(lambda: c.invoke()["leader"]["holder"] == standby.name, "controller-c sees the leader")
    report = c.invoke()
    assert report["outcome"] == "standby" and report["actions"] == [], report
    stopped_at = time.monotonic()
    standby.signal(signal.SIGTERM)
    _, report = until_acting(c, FAILOVER_LIMIT_S)
    handover_s = time.monotonic() - stopped_at
    print(f"handover after SIGTERM (lease released): {handover_s:.1f}s")
    standby.wait_exit()
    assert report["outcome"] == "ok" and report["leader"]["is_leader"] is True, report
    assert fleet.holder()[0] == c.name
    assert handover_s < 2 * RETRY_PERIOD_S + 2.0, f"handover took {handover_s:.1f}s\n{fleet.logs()}"
    assert "lease_released" in standby.proc.log_path.read_text()
