"""Benchmark 4's machinery (``benchmarks/bench_autoscaling.py``) on a tiny world: structural facts.

All four policies run for one virtual hour on two servers of the benchmark's limited-capacity
world, with a one-hour diurnal period and one spike inside it (so every policy sees a rise, a
burst and a fall). Checked: every policy sees the same arrivals minute by minute; the oracle is
never more expensive than static-for-peak; static never changes anything after t = 0; HPA never
changes the GPU type or batch and never asks for more cards than exist; attainment is a share.
The scoring rules (a minute meets its SLO or is not judged) and the verdicts are checked on
hand-made rows and scores.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from benchmarks.autoscaling_metrics import (
    ClassScore,
    PolicyScore,
    minute_meets_slo,
    score,
    sweep_verdict,
    verdicts,
)
from benchmarks.autoscaling_world import CAPACITY_CARDS, WORLD_DIR, LoadShape
from benchmarks.bench_autoscaling import (
    CLASS_WINDOWS_ENV,
    HPA,
    OURS_VARIANTS,
    PEER_SWEEPS,
    PLANNER,
    POLICIES,
    SLO_AWARE,
    Config,
    PolicyRun,
    class_windows,
    run_policy,
)
from load_emulator.whatif.records import Row

pytestmark = pytest.mark.sim
REPO = Path(__file__).resolve().parents[2]
SERVERS = ("Premium-llama_13b", "Free-llama_13b")
SHAPE = LoadShape(period_s=3600.0, spike_count=1, spike_duration_s=300.0, first_spike_s=1500.0, seed=3)


@pytest.fixture(scope="module")
def runs() -> dict[str, PolicyRun]:
    config = Config(hours=1.0, servers=SERVERS, shape=SHAPE, seed=3)
    return {p: run_policy(config, p) for p in (*POLICIES, *OURS_VARIANTS)}


def test_every_policy_sees_the_same_minutes_and_arrivals(runs: dict[str, PolicyRun]) -> None:
    keys = {p: [(r.t_s, r.server, r.arrivals) for r in run.rows] for p, run in runs.items()}
    assert len(keys["loop"]) == 60 * len(SERVERS)
    assert sum(a for _, _, a in keys["loop"]) > 1000
    for policy in (*POLICIES, *OURS_VARIANTS):
        assert keys[policy] == keys["loop"], policy


def test_free_without_a_window_gives_back_its_spike_replicas_sooner(runs: dict[str, PolicyRun]) -> None:
    """``loop:Free=0``: the same loop with Free's scale-down window off. Free scales down when the
    plan does (after the spike, and at the hour's end) and costs less; Premium keeps its window and,
    with cards to spare in this world, runs exactly as in ``loop``."""
    assert class_windows("loop:Free=0") == "Free=0" and class_windows("loop") is None
    ours, lean = score("loop", runs["loop"].rows), score("loop:Free=0", runs["loop:Free=0"].rows)
    by_class = {c.service_class: (c, lean.of_class(c.service_class)) for c in ours.classes}
    (free, free_lean), (prem, prem_lean) = by_class["Free"], by_class["Premium"]
    assert free_lean is not None and prem_lean is not None
    assert free_lean.cost < free.cost and prem_lean.cost == prem.cost
    premium = [[r for r in runs[p].rows if r.service_class == "Premium"] for p in ("loop", "loop:Free=0")]
    assert premium[0] == premium[1]


def test_the_as_shipped_variant_runs_the_class_windows_the_manifest_ships() -> None:
    """The report's "ours as shipped" row must be what ``kubectl apply -k manifests`` deploys."""
    docs = [d for d in yaml.safe_load_all((REPO / "manifests/deployment.yaml").read_text()) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    containers = deployment["spec"]["template"]["spec"]["containers"]
    (controller,) = [c for c in containers if c["name"] == "controller"]
    shipped = {e["name"]: e.get("value") for e in controller["env"]}[CLASS_WINDOWS_ENV]
    assert class_windows(OURS_VARIANTS[0]) == shipped


def test_oracle_is_never_more_expensive_than_static_for_peak(runs: dict[str, PolicyRun]) -> None:
    oracle, static = score("oracle", runs["oracle"].rows), score("static-peak", runs["static-peak"].rows)
    assert 0 < oracle.cost <= static.cost
    assert oracle.replica_changes > 0, "the oracle follows the load"


def test_static_for_peak_never_changes(runs: dict[str, PolicyRun]) -> None:
    s = score("static-peak", runs["static-peak"].rows)
    assert (s.replica_changes, s.gpu_type_changes, s.batch_changes) == (0, 0, 0)


def test_hpa_keeps_its_gpu_type_and_batch_and_stays_within_capacity(runs: dict[str, PolicyRun]) -> None:
    rows = runs["hpa"].rows
    s = score("hpa", rows)
    assert (s.gpu_type_changes, s.batch_changes) == (0, 0)
    assert s.replica_changes > 0, "HPA reacts to the spike"
    first = {r.server: (r.accelerator, r.max_batch) for r in rows[: len(SERVERS)]}
    assert all((r.accelerator, r.max_batch) == first[r.server] for r in rows)
    units = json.loads((WORLD_DIR / "accelerator-data.json").read_text())["accelerators"]
    card_of = {a["name"]: (a["type"], a["multiplicity"]) for a in units}
    for t_s in {r.t_s for r in rows}:
        cards: dict[str, int] = {}
        for r in rows:
            if r.t_s == t_s:
                card_type, per_unit = card_of[r.accelerator]
                cards[card_type] = cards.get(card_type, 0) + r.replicas * per_unit
        assert all(n <= CAPACITY_CARDS[t] for t, n in cards.items()), (t_s, cards)


def test_scores_are_shares_and_the_loop_ran_every_cycle(runs: dict[str, PolicyRun]) -> None:
    assert runs["loop"].failed_cycles == 0
    for policy, run in runs.items():
        s = score(policy, run.rows)
        assert {c.service_class for c in s.classes} == {"Premium", "Free"}
        for c in s.classes:
            assert 0 < c.minutes_judged <= 60 and 0 <= c.minutes_met <= c.minutes_judged
            assert 0.0 <= c.attainment <= 1.0 and 0.0 <= c.request_attainment <= 1.0
        assert s.cost == pytest.approx(sum(c.cost for c in s.classes))


ROW = Row(
    t_s=60.0, server="s", service_class="Premium", load_rpm=60.0, replicas=1, ready=1, accelerator="G2",
    max_batch=19, ttft_p50_ms=100.0, ttft_p95_ms=200.0, ttft_target_ms=1000.0, itl_p50_ms=20.0,
    itl_p95_ms=30.0, itl_target_ms=80.0, slo_attainment=1.0, requests=60, cost_per_hour=23.0,
    outcome="noop", ttft_mean_ms=150.0, itl_mean_ms=25.0, arrivals=60, failed=0,
)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, True),
        ({"ttft_mean_ms": 1000.0}, True),
        ({"ttft_mean_ms": 1001.0}, False),
        ({"itl_mean_ms": 81.0}, False),
        ({"failed": 3}, True),
        ({"ttft_mean_ms": math.nan, "itl_mean_ms": math.nan}, False),
        ({"ttft_mean_ms": math.nan, "itl_mean_ms": math.nan, "arrivals": 0}, None),
    ],
    ids=[
        "met",
        "at-target",
        "ttft-over",
        "itl-over",
        "failed-counted-apart",
        "arrivals-unserved",
        "no-traffic",
    ],
)
def test_a_minute_meets_its_slo_on_the_means(change: dict[str, float], expected: bool | None) -> None:
    assert minute_meets_slo(replace(ROW, **change)) is expected  # type: ignore[arg-type]


def _policy(name: str, cost: float, premium: float, free: float) -> PolicyScore:
    classes = tuple(
        ClassScore(name, cls, 100, round(a * 100), a, a, 1000, 0, cost / 2)
        for cls, a in (("Premium", premium), ("Free", free))
    )
    return PolicyScore(name, cost, cost / 24, 0, 0, 0, classes)


def test_verdicts_judge_the_three_targets() -> None:
    oracle = _policy("oracle", 1000.0, 0.995, 0.9)
    good = verdicts(_policy("loop", 1100.0, 0.995, 0.95), oracle, _policy("hpa", 1200.0, 0.99, 0.95))
    assert [v.holds for v in good] == [True, True, True]
    bad = verdicts(_policy("loop", 1200.0, 0.98, 0.80), oracle, _policy("hpa", 1100.0, 0.99, 0.95))
    assert [v.holds for v in bad] == [False, False, False]
    assert "Free 80.0% < 95.0%" in bad[2].detail
    # The class-by-class comparison (half the cost each in this fixture) is in the detail.
    assert "by class (ours vs HPA): Premium 600 vs 550 at 98.0% vs 99.0%, Free 600 vs 550" in bad[2].detail


def test_hpa_sweep_verdict_fails_only_when_a_setting_dominates() -> None:
    ours = _policy("loop", 1000.0, 0.99, 0.95)
    cheaper_but_worse = _policy("hpa", 900.0, 0.95, 0.5)
    dearer_and_better = _policy("hpa@0.35", 1300.0, 0.995, 0.96)
    holds = sweep_verdict(ours, [cheaper_but_worse, dearer_and_better], "HPA-style", "target utilisation")
    assert holds.holds
    assert holds.target.startswith("no HPA-style setting (target utilisation swept) is no dearer")
    assert "hpa at 0.900x ours' cost: below ours in Premium 95.0% < 99.0%, Free 50.0% < 95.0%" in holds.detail
    assert "hpa@0.35 at 1.300x ours' cost: at least as good in every class" in holds.detail
    dominating = _policy("hpa@0.5", 1000.0, 0.99, 0.95)  # as good everywhere, no dearer
    fails = sweep_verdict(ours, [cheaper_but_worse, dominating], "HPA-style", "target utilisation")
    assert not fails.holds and "dominated by hpa@0.5" in fails.detail


def test_a_peer_sweep_fails_when_one_of_its_settings_reaches_ours_for_less() -> None:
    ours = _policy("minute", 1000.0, 1.0, 0.93)
    by_name = {
        "dynamo-planner": _policy(
            "dynamo-planner", 920.0, 0.95, 0.48
        ),  # the described setting: cheaper, worse
        "dynamo-planner@0.85": _policy("dynamo-planner@0.85", 990.0, 1.0, 0.90),
        "dynamo-planner@0.7": _policy("dynamo-planner@0.7", 1080.0, 1.0, 0.95),
    }
    holds = PLANNER.verdict(ours, by_name)
    assert holds is not None and holds.holds
    assert holds.target == (
        "no dynamo-planner setting (fill share of the per-replica SLA capacity swept) is no dearer at "
        "equal or better attainment"
    )
    assert (
        "dynamo-planner at 0.920x ours' cost: below ours in Premium 95.0% < 100.0%, Free 48.0% < 93.0%"
        in (holds.detail)
    )
    assert "dynamo-planner@0.85 at 0.990x ours' cost: below ours in Free 90.0% < 93.0%" in holds.detail
    assert "dynamo-planner@0.7 at 1.080x ours' cost: at least as good in every class" in holds.detail
    by_name["dynamo-planner@0.55"] = _policy("dynamo-planner@0.55", 1000.0, 1.0, 0.93)  # ours' equal
    fails = PLANNER.verdict(ours, by_name)
    assert fails is not None and not fails.holds and fails.detail.endswith("dominated by dynamo-planner@0.55")
    # Only the described setting ran: the one-configuration verdict judges it, no sweep verdict.
    assert SLO_AWARE.verdict(ours, {"slo-aware": _policy("slo-aware", 1400.0, 0.97, 0.2)}) is None


def test_sweep_names_carry_their_setting() -> None:
    assert [HPA.setting(p) for p in ("hpa", "hpa@0.5", "hpa@0.35", "loop", "oracle")] == [
        0.7,
        0.5,
        0.35,
        None,
        None,
    ]
    assert PLANNER.members == (
        "dynamo-planner",
        "dynamo-planner@0.85",
        "dynamo-planner@0.7",
        "dynamo-planner@0.55",
    )
    assert [PLANNER.setting(p) for p in PLANNER.members] == [1.0, 0.85, 0.7, 0.55]
    assert [SLO_AWARE.setting(p) for p in (*SLO_AWARE.members, "slo-aware-x@0.5", "hpa@0.5")] == [
        1.0,
        0.8,
        0.6,
        None,
        None,
    ]
    # The named peers keep their described setting (their published rows stay comparable).
    assert [(s.family, s.default) for s in PEER_SWEEPS] == [("slo-aware", 1.0), ("dynamo-planner", 1.0)]
