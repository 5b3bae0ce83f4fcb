"""Issue 18's additions to benchmark 4 on a tiny world: the forecast in the real loop, the two peer
policies, start-up times per model and GPU, and the verdicts on hand-made scores."""

from __future__ import annotations

import asyncio
import json
import math
from collections import deque
from dataclasses import replace
from itertools import islice

import pytest

from benchmarks.autoscaling_metrics import ClassScore, PolicyScore, ahead_verdicts, oracle_cost_verdict, score
from benchmarks.autoscaling_peers import DynamoPlanner, SloAwareKeda
from benchmarks.autoscaling_trace import (
    AZURE_CODE_CSV,
    COPIES,
    TIME_SCALE,
    TRACE_WORLD_DIR,
    read_azure,
    trace_workloads,
)
from benchmarks.autoscaling_world import CAPACITY_CARDS, WORLD_DIR, LoadShape, startup_s
from benchmarks.bench_autoscaling import (
    AHEAD,
    AHEAD_CLASSES,
    AHEAD_MINUTE,
    MINUTE,
    MINUTE_PERCENTILE,
    ORACLE_MINUTE,
    OURS_VARIANTS,
    PEERS,
    PLANNER,
    SLO_AWARE,
    Config,
    _issue18_verdicts,
    build,
    class_windows,
    run_policy,
)
from contract.data.loader import load_system_dir
from load_emulator.cluster import DeploymentState, PodState
from load_emulator.whatif.driver import WhatIfRun
from load_emulator.whatif.prom import Sample

pytestmark = pytest.mark.sim
SERVERS = ("Premium-llama_13b", "Free-llama_13b")
SHAPE = LoadShape(period_s=3600.0, spike_count=1, spike_duration_s=300.0, first_spike_s=1500.0, seed=3)
CONFIG = Config(hours=1.0, servers=SERVERS, shape=SHAPE, seed=3)


def test_the_world_carries_a_start_up_per_gpu() -> None:
    system = load_system_dir(WORLD_DIR)
    units = {a.name: a.multiplicity for a in system.accelerators.accelerators}
    llama = [m for m in system.models.models if m.name == "llama_13b"]
    assert llama and all(m.startup_s == startup_s(m.name, units[m.acc] * m.acc_count) for m in llama)
    assert startup_s("llama_13b", 1) == pytest.approx(93.2) and startup_s("llama_13b", 4) == pytest.approx(
        71.3
    )


def test_ahead_forecasts_premium_in_the_real_loop_and_pods_start_in_their_pairs_time() -> None:
    what_if = build(CONFIG, AHEAD)
    rows = asyncio.run(what_if.run())
    assert rows and all(r.outcome != "failed" for r in what_if.reports)
    steps = [
        text
        for report in what_if.reports
        for d in report.decisions
        if d.server == "Premium-llama_13b"
        for text in d.reasons
    ]
    assert any(t.startswith("forecast: sized for") or "<= measured" in t for t in steps)
    assert not any(
        "forecast" in t
        for r in what_if.reports
        for d in r.decisions
        if d.server == "Free-llama_13b"
        for t in d.reasons
    )
    cluster = what_if.fleet.cluster
    system = what_if.system
    for state in cluster.deployments(what_if.clock()):
        entry = next(m for m in system.models.models if m.name == state.model and m.acc == state.accelerator)
        assert cluster.startup_s(state.model, state.accelerator) == entry.startup_s


@pytest.mark.parametrize("peer", [*PEERS, SLO_AWARE.policies[-1], PLANNER.policies[-1]])
def test_peers_keep_gpu_type_and_batch_within_capacity_and_follow_the_load(peer: str) -> None:
    rows = run_policy(CONFIG, peer).rows
    s = score(peer, rows)
    assert (s.gpu_type_changes, s.batch_changes) == (0, 0)
    assert s.replica_changes > 0
    units = json.loads((WORLD_DIR / "accelerator-data.json").read_text())["accelerators"]
    card_of = {a["name"]: (a["type"], a["multiplicity"]) for a in units}
    for t_s in {r.t_s for r in rows}:
        cards: dict[str, int] = {}
        for r in rows:
            if r.t_s == t_s:
                card_type, per_unit = card_of[r.accelerator]
                cards[card_type] = cards.get(card_type, 0) + r.replicas * per_unit
        assert all(n <= CAPACITY_CARDS[t] for t, n in cards.items()), (t_s, cards)


def _premium_over_one_period(
    run: WhatIfRun, start: dict[str, float], end: dict[str, float]
) -> DeploymentState:
    """Premium's Deployment with 3 ready replicas, and its scrapes over [0, 60 s] set to ``start``
    and ``end`` (what a peer reads over one period)."""
    state = next(s for s in run.fleet.cluster.deployments(0.0) if s.server == "Premium-llama_13b")
    pods = tuple(PodState(f"p{i}", state.accelerator, state.max_batch, 0.0) for i in range(3))
    run.prometheus.series[(state.namespace, state.name)] = deque([Sample(0.0, start), Sample(60.0, end)])
    return replace(state, replicas=3, pods=pods)


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        # band x1 (0.40-0.55): 0.5 is inside, no change; x0.8 (0.32-0.44): ceil(3 * 0.5 / 0.44) = 4;
        # x0.6 (0.24-0.33): ceil(3 * 0.5 / 0.33) = 5
        (0.5, {1.0: 3, 0.8: 4, 0.6: 5}),
        # below the band: x1 ceil(3 * 0.2 / 0.40) = 2, x0.8 ceil(3 * 0.2 / 0.32) = 2,
        # x0.6 ceil(3 * 0.2 / 0.24) = 3
        (0.2, {1.0: 2, 0.8: 2, 0.6: 3}),
    ],
    ids=["inside-the-band", "below-the-band"],
)
def test_slo_aware_scales_its_band(x: float, expected: dict[float, int]) -> None:
    got = {}
    for scale in expected:
        run = build(CONFIG, f"{SLO_AWARE.family}@{scale:g}")
        keda = run.decider
        assert isinstance(keda, SloAwareKeda) and keda.band == pytest.approx((0.40 * scale, 0.55 * scale))
        slo_ttft_ms, _ = keda.targets["Premium-llama_13b"]
        zero = {"ttft_count": 0.0, "ttft_sum": 0.0, "itl_count": 0.0, "itl_sum": 0.0}
        mean_ttft_s = x * slo_ttft_ms / 1000.0
        state = _premium_over_one_period(
            run, zero, {**zero, "ttft_count": 100.0, "ttft_sum": 100 * mean_ttft_s}
        )
        got[scale] = keda._recommend(state, 60.0)
        assert keda.ratio[state.name] == pytest.approx(x)
    assert got == expected


def test_the_planner_asks_for_more_replicas_filling_less_of_each() -> None:
    got = {}
    for share in PLANNER.members:
        run = build(CONFIG, share)
        planner = run.decider
        assert isinstance(planner, DynamoPlanner) and planner.fill_share == PLANNER.setting(share)
        asyncio.run(planner.start(0.0))
        capacity_rpm = planner.capacity_rpm["Premium-llama_13b"]
        assert capacity_rpm > 0
        # 2.9 replicas' worth of capacity over the period, nothing waiting, no history to forecast from
        end = {"completions": 2.9 * capacity_rpm, "waiting": 0.0}
        state = _premium_over_one_period(run, {"completions": 0.0, "waiting": 0.0}, end)
        got[planner.fill_share] = planner._recommend(state, 60.0)
    # ceil(2.9 / share): 3 at 1.0, 4 at 0.85 (3.41), 5 at 0.7 (4.14), 6 at 0.55 (5.27)
    assert got == {1.0: 3, 0.85: 4, 0.7: 5, 0.55: 6}
    assert got == {s: math.ceil(2.9 / s) for s in got}


def _policy(name: str, cost: float, premium: float, free: float) -> PolicyScore:
    classes = tuple(
        ClassScore(name, cls, 100, round(a * 100), a, a, 1000, 0, cost / 2)
        for cls, a in (("Premium", premium), ("Free", free))
    )
    return PolicyScore(name, cost, cost / 24, 0, 0, 0, classes)


def test_ahead_verdicts() -> None:
    oracle = _policy("oracle", 1000.0, 1.0, 0.95)
    ours = _policy("ahead", 1040.0, 0.996, 0.95)
    hpas = [_policy("hpa", 1100.0, 0.99, 0.95), _policy("hpa@0.5", 1200.0, 0.996, 0.96)]
    peers = [_policy("slo-aware", 1300.0, 0.99, 0.9), _policy("dynamo-planner", 1000.0, 0.996, 0.96)]
    v = ahead_verdicts(ours, oracle, hpas, peers)
    assert [x.holds for x in v] == [True, True, True, False, True]
    assert v[1].detail.startswith("0.867x hpa@0.5")  # the cheapest reaching 99.6% is hpa@0.5
    assert "Free 95.0% < 96.0%" in v[3].detail
    none_reach = ahead_verdicts(ours, oracle, hpas[:1], peers)
    assert not none_reach[1].holds and "not comparable" in none_reach[1].detail


def test_issue18_judges_each_peer_over_its_sweep_beside_its_described_setting() -> None:
    scores = [
        _policy("oracle", 1000.0, 1.0, 0.95),
        _policy(AHEAD, 1040.0, 0.996, 0.95),
        _policy("dynamo-planner", 900.0, 0.95, 0.5),
        _policy("dynamo-planner@0.7", 1040.0, 0.996, 0.95),  # ours' attainment at ours' cost
        _policy("slo-aware", 1300.0, 0.99, 0.2),
    ]
    judged = _issue18_verdicts({s.policy: s for s in scores})
    described = [v for v in judged if v.target.startswith("cheaper than dynamo-planner at equal or better")]
    assert [v.holds for v in described] == [False]  # the described planner is cheaper, though worse
    swept = [v for v in judged if v.target.startswith("no dynamo-planner setting")]
    assert len(swept) == 1 and not swept[0].holds
    assert swept[0].target.endswith("(issue 18: ours as shipped + forecast for Premium, Bronze)")
    assert swept[0].detail.endswith("dominated by dynamo-planner@0.7")
    # Only SLO-aware's described setting ran: its one-configuration verdict, no sweep verdict.
    assert not any(v.target.startswith("no slo-aware setting") for v in judged)
    assert any(v.target.startswith("cheaper than slo-aware") and v.holds for v in judged)


@pytest.mark.skipif(
    not AZURE_CODE_CSV.exists(),
    reason="the Azure 2023 trace is not in ../shared/reference-data on this machine",
)
def test_the_trace_world_replays_the_azure_trace_superposed() -> None:
    system = load_system_dir(TRACE_WORLD_DIR)
    loads = trace_workloads(system)
    conv, code = read_azure("conv"), read_azure("code")
    assert len(conv) == 19366 and len(code) == 8819
    premium, free = loads["Premium-llama_13b"], loads["Free-llama_13b"]
    first_loop = list(islice(premium.arrivals(0), len(conv) * COPIES))
    assert sorted((a.in_tokens, a.out_tokens) for a in first_loop) == sorted(
        (a.in_tokens, a.out_tokens) for a in conv * COPIES
    )
    span_s = premium.span_s * TIME_SCALE  # type: ignore[attr-defined]
    assert all(0 <= a.t_s < span_s for a in first_loop)
    assert free.tokens.mean_out_tokens < 30 < premium.tokens.mean_out_tokens
    bronze = list(islice(loads["Bronze-llama_13b"].arrivals(0), 50))
    assert [a.t_s for a in bronze] != [a.t_s for a in first_loop[:50]]  # shifted, not the same stream


@pytest.mark.parametrize("policy", [AHEAD_MINUTE, MINUTE, ORACLE_MINUTE])
def test_the_minute_variants_give_premium_alone_the_minute_target(policy: str) -> None:
    system = build(CONFIG, policy).system
    classes = system.class_by_name()
    premium = classes["Premium"].target_for("llama_13b")
    assert premium is not None and premium.ttft_minute_percentile == MINUTE_PERCENTILE["Premium"]
    others = [c.target_for("llama_13b") for n, c in classes.items() if n != "Premium"]
    assert all(t is None or t.ttft_minute_percentile == 0 for t in others)
    asks = {n for n, c in classes.items() if c.forecast_quantile > 0}
    assert asks == (set(AHEAD_CLASSES) if policy == AHEAD_MINUTE else set())


@pytest.mark.parametrize(
    ("policy", "shipped"), [(AHEAD_MINUTE, True), (MINUTE, True), (ORACLE_MINUTE, False)]
)
def test_ours_with_the_minute_target_runs_the_shipped_class_windows(policy: str, shipped: bool) -> None:
    windows = build(CONFIG, policy).scenario.controller.scale_down_window_by_class_s
    expected = build(CONFIG, OURS_VARIANTS[0]).scenario.controller.scale_down_window_by_class_s
    assert class_windows(OURS_VARIANTS[0]) and expected  # the manifests' Free=0
    assert windows == (expected if shipped else {})


def test_the_minute_variant_is_judged_against_both_oracles() -> None:
    ours = _policy("ahead-minute", 1040.0, 0.996, 0.95)
    oracle, better = _policy("oracle", 1000.0, 0.99, 0.95), _policy("oracle-minute", 1100.0, 0.997, 0.95)
    plain, minute = oracle_cost_verdict(ours, oracle), oracle_cost_verdict(ours, better)
    assert (plain.target, plain.holds) == ("cost <= 1.05x oracle", True)
    assert (minute.target, minute.holds) == ("cost <= 1.05x oracle-minute", True)
    assert minute.detail == "0.945x (1040 vs 1100); oracle-minute's Premium 99.70% of minutes"
    assert not oracle_cost_verdict(_policy("x", 1060.0, 1.0, 1.0), oracle).holds
