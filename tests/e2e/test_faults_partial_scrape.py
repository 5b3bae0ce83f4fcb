"""E2e: metrics that are partly there, on the real kube-apiserver, Prometheus and load emulator.

Role: issue 19's faults, the plausible but partial answers. Each test runs a Prometheus of its own
(scrape every second) over a 4-replica Deployment whose pods are all Ready for longer than the
collector's grace (1.5 rate windows of 10 s in e2e), so every pod is expected to report:

- one pod dropped from the scrape (its target removed from file_sd): the server is held, no
  scale-down, with the reason in /invoke, `inferno_held_servers` and an `InfernoMetricsIncomplete`
  Event; once the pod is scraped again the next cycle scales it down as its light load asks;
- every pod scraped twice (a second job on the same file_sd targets): the load the collector reads
  is the one it reads with one job, while the plain sum doubles;
- a pod restarted mid-window (`harness.scrape_proxy.ScrapeProxy.restart`: its endpoint answers 500
  for longer than a rate window while the pod stays Ready, then its counters start again from
  zero): no cycle sizes for less than the load before the restart (a pod's share is a quarter),
  and the cycles while it is down say why they hold.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .cluster.prometheus import LocalPrometheus
from .harness.data import ServerSpec
from .harness.emulator import Emulator
from .harness.scenario import Scenario
from .harness.scrape_proxy import ScrapeProxy

pytestmark = pytest.mark.e2e

RATE_WINDOW_S = 10.0  # INFERNO_COLLECTOR_RATE_WINDOW_S of harness/services.py
HOLD_CODE = "unreported_pods"
DOWN_S = RATE_WINDOW_S + 4  # the restarted pod's endpoint answers 500 this long
# Free llama_13b on 4 A100 replicas at a light load: a good cycle scales it down.
LIGHT = ServerSpec(
    name="free-llama", model="llama_13b", service_class="Free", accelerator="A100",
    replicas=4, cards_per_replica=1, max_batch=16, rpm=120, in_tokens=128, out_tokens=32,
)  # fmt: skip
# The same at a load of enough requests per rate window for a steady reading (~400 per 10 s).
BUSY = ServerSpec(
    name="free-llama", model="llama_13b", service_class="Free", accelerator="A100",
    replicas=4, cards_per_replica=1, max_batch=16, rpm=2400, in_tokens=128, out_tokens=32,
)  # fmt: skip


@pytest.fixture
def own_prometheus(local_prometheus: LocalPrometheus) -> Iterator[LocalPrometheus]:
    """A Prometheus of this test's own with two scrape jobs (the second idle unless given targets)."""
    with LocalPrometheus(local_prometheus.binary, scrape_interval_s=1.0, jobs=2) as prom:
        yield prom


def _pods_reporting(scenario: Scenario, prom: LocalPrometheus) -> float:
    return prom.query_value(f'count(vllm:num_requests_running{{namespace="{scenario.ns}"}})') or 0.0


def _four_settled_pods(scenario: Scenario, prom: LocalPrometheus, spec: ServerSpec) -> Emulator:
    """The server's 4 pods running, scraped, and Ready for longer than the rate window."""
    scenario.prometheus = prom
    scenario.add_nodes("A100", count=1, gpus_per_node=4)
    scenario.apply_data()
    scenario.add_servers(spec)
    scenario.wait(lambda: sum(p.phase == "Running" for p in scenario.pods(spec.name)) == 4, "4 pods running")
    emulator = scenario.start_emulator()
    scenario.wait_load(spec.name)
    scenario.wait(lambda: _pods_reporting(scenario, prom) == 4, "4 pods reporting")
    time.sleep(1.5 * RATE_WINDOW_S + 3)  # Ready for the grace (1.5 windows): every pod must report
    return emulator


def _decision(report: dict[str, Any], server: str) -> dict[str, Any]:
    return next((d for d in report.get("decisions", []) if d["server"] == server), {})


def _action(report: dict[str, Any], deployment: str) -> dict[str, Any]:
    return next((a for a in report.get("actions", []) if a.get("deployment") == deployment), {})


def test_a_pod_dropped_from_the_scrape_holds_the_server_then_it_recovers(
    own_prometheus: LocalPrometheus, scenario: Scenario
) -> None:
    emulator = _four_settled_pods(scenario, own_prometheus, LIGHT)
    dropped = scenario.pods(LIGHT.name)[0].name
    emulator.hidden.add(dropped)
    emulator.sync_targets()
    scenario.wait(lambda: _pods_reporting(scenario, own_prometheus) == 3, "3 pods reporting")
    autoscaler = scenario.start_autoscaler()

    for cycle in (1, 2):
        report = autoscaler.invoke()
        assert report["outcome"] == "ok", report
        decision = _decision(report, LIGHT.name)
        assert decision["codes"][0] == HOLD_CODE, decision
        assert "3 of 4 pod(s)" in decision["reasons"][0], decision["reasons"]
        assert decision["replicas"] >= LIGHT.replicas, decision
        (held,) = report["collected"]["held"]
        assert held.startswith(f"{scenario.ns}/{LIGHT.name}: 3 of 4 pod(s)"), held
        action = _action(report, LIGHT.name)
        assert action["outcome"] == "unchanged" and action["reasons"][0] == decision["reasons"][0], action
        assert scenario.replicas(LIGHT.name) == LIGHT.replicas
        assert autoscaler.metric("inferno_held_servers") == 1
        events = [e for e in scenario.inferno_events(LIGHT.name) if e.startswith("InfernoMetricsIncomplete")]
        # one Warning when the hold starts; the same hold repeats it only after hold_event_repeat_s
        assert len(events) == 1 and "3 of 4 pod(s)" in events[-1], (cycle, events)
    assert not [e for e in scenario.inferno_events(LIGHT.name) if e.startswith("InfernoScaled")]

    emulator.hidden.clear()
    emulator.sync_targets()
    scenario.wait(lambda: _pods_reporting(scenario, own_prometheus) == 4, "4 pods reporting again")
    report = autoscaler.invoke_until(  # it counts again once its rates cover a window (10 s)
        lambda r: _action(r, LIGHT.name).get("outcome") == "applied",
        "a scale-down once every pod reports",
        tries=12,
        interval_s=2.0,
    )
    assert HOLD_CODE not in _decision(report, LIGHT.name)["codes"], report
    assert report["collected"]["held"] == []
    assert 1 <= scenario.replicas(LIGHT.name) < LIGHT.replicas
    assert autoscaler.metric("inferno_held_servers") == 0
    assert any(e.startswith("InfernoScaled") for e in scenario.inferno_events(LIGHT.name))


def _steady(autoscaler: Any, cycles: int = 3) -> tuple[float, int]:
    """The median demand the optimizer sized the server for and the fewest replicas it gave it,
    over a few cycles a second apart, none of them held."""
    demands, replicas = [], []
    for _ in range(cycles):
        report = autoscaler.invoke()
        assert report["collected"]["held"] == [], report["collected"]
        demands.append(_decision(report, BUSY.name)["demand_rpm"])
        replicas.append(_decision(report, BUSY.name)["replicas"])
        time.sleep(1.0)
    return statistics.median(demands), min(replicas)


def test_every_pod_scraped_twice_reads_the_load_of_one_scrape(
    own_prometheus: LocalPrometheus, scenario: Scenario
) -> None:
    emulator = _four_settled_pods(scenario, own_prometheus, BUSY)
    autoscaler = scenario.start_autoscaler(INFERNO_CONTROLLER_DRY_RUN="true")  # the fleet stays as it is
    one_job, _ = _steady(autoscaler)
    sel = f'namespace="{scenario.ns}"'
    plain = f"sum(rate(vllm:request_success_total{{{sel}}}[10s]))"
    before = own_prometheus.query_value(plain) or 0.0

    own_prometheus.set_targets(emulator.targets, job=1)  # the second job scrapes the same pods
    scenario.wait(lambda: _pods_reporting(scenario, own_prometheus) == 8, "8 series of running requests")
    time.sleep(RATE_WINDOW_S + 2)  # the copies fill a whole rate window
    doubled = own_prometheus.query_value(plain) or 0.0
    assert doubled > 1.6 * before, (before, doubled)  # the fault is real: the plain sum doubles
    two_jobs, _ = _steady(autoscaler)
    assert two_jobs == pytest.approx(one_job, rel=0.2), (one_job, two_jobs)
    assert scenario.replicas(BUSY.name) == BUSY.replicas


def test_a_pod_restarted_mid_window_never_scales_the_server_down(
    own_prometheus: LocalPrometheus, scenario: Scenario
) -> None:
    emulator = _four_settled_pods(scenario, own_prometheus, BUSY)
    restarted = scenario.pods(BUSY.name)[0].name
    with ScrapeProxy(emulator.url) as proxy:
        emulator.redirect[restarted] = proxy.address
        emulator.sync_targets()
        scenario.wait(lambda: proxy.scrapes >= 3, "the restarted pod scraped through its proxy")
        autoscaler = scenario.start_autoscaler(INFERNO_CONTROLLER_DRY_RUN="true")
        # Scraped through the proxy, the pod's series carry a new instance: it reports again once
        # they cover a rate window, and only then is the server steady.
        autoscaler.invoke_until(
            lambda r: not r["collected"]["held"],
            "every pod reporting through the proxy",
            tries=int(3 * RATE_WINDOW_S),
            interval_s=1.0,
        )
        baseline_rpm, baseline = _steady(autoscaler)

        # Down for longer than a rate window: the pod's share leaves the sums altogether.
        proxy.restart(down_s=DOWN_S)
        held, demands = 0, []
        deadline = time.monotonic() + DOWN_S + 2 * RATE_WINDOW_S  # the outage, then the window after it
        for _ in range(40):
            if time.monotonic() > deadline:
                break
            decision = _decision(autoscaler.invoke(), BUSY.name)
            held += HOLD_CODE in decision["codes"]
            demands.append(decision["demand_rpm"])
            assert decision["replicas"] >= baseline, (decision, baseline, demands)
            time.sleep(1.0)
    assert min(demands) >= 0.8 * baseline_rpm, (baseline_rpm, demands)  # a pod's share is 25%
    assert held >= 1, "a cycle ran while the restarted pod was down and said why it held"
    assert scenario.replicas(BUSY.name) == BUSY.replicas
