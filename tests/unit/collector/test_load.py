"""Load from Prometheus and the fallback chain: overload, old/new names, staleness, aging."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from collector.labels import LabelLoad
from collector.load import (
    KnownLoad,
    LoadEstimate,
    Observation,
    ResolvedLoad,
    length_cv2,
    observe,
    remember,
    resolve_load,
)
from collector.metrics import Buckets, build_snapshot, key_resolver
from load_emulator.histograms import BucketCounts, one_two_five_buckets
from tests.unit.collector.fakes import NOW_S, buckets, healthy_answers, sample

KEY = ("llm", "granite")
STALENESS_S = 120.0


def observed(answers: dict[str, Any]) -> Observation:
    return observe(build_snapshot(answers, key_resolver("deployment", [])), KEY, STALENESS_S)


def answers(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = healthy_answers([KEY])
    for name, value in overrides.items():
        base[name] = value if isinstance(value, list | Exception) else [sample(*KEY, value)]
    return base


def test_healthy_server() -> None:
    obs = observed(answers())
    assert obs.arrival_rpm == pytest.approx(120.0)
    assert obs.avg_in_tokens == pytest.approx(200) and obs.avg_out_tokens == pytest.approx(500)
    assert obs.ttft_ms == pytest.approx(300)
    assert obs.itl_ms == pytest.approx(20)
    assert obs.notes == ()


def test_overload_adds_queue_growth() -> None:
    obs = observed(answers(queue_growth=0.5, waiting=40))
    assert obs.arrival_rpm == pytest.approx((2.0 + 0.5) * 60)
    assert any("queue growing" in n for n in obs.notes)


def test_standing_backlog_is_sized_to_drain() -> None:
    # 2 req/s completed, queue flat at 240: +240/120 = 2 req/s, so 4 req/s = 240 rpm is sized.
    flat = answers(queue_growth=0.0, waiting=240)
    drained = observe(build_snapshot(flat, key_resolver("deployment", [])), KEY, STALENESS_S, 120.0)
    assert drained.arrival_rpm == pytest.approx(240.0)
    assert any("240 waiting: +2 req/s drains them in 120s" in n for n in drained.notes), drained.notes
    assert observed(flat).arrival_rpm == pytest.approx(120.0)  # drain off: the completion rate only


@pytest.mark.parametrize("waiting", [1e308, 1e10])
def test_an_implausible_backlog_makes_the_rate_unknown(waiting: float) -> None:
    # 1e308 waiting / 120 s added to the rate: beyond any real server (hypothesis found it passing
    # 5e307 rpm on); the rate is rejected like an implausible completion rate.
    flat = answers(queue_growth=0.0, waiting=waiting)
    got = observe(build_snapshot(flat, key_resolver("deployment", [])), KEY, STALENESS_S, 120.0)
    assert got.arrival_rpm is None
    assert any("arrival rate implausible" in n for n in got.notes), got.notes


def test_backlog_never_makes_an_unknown_rate_known() -> None:
    # No completion in the window with requests waiting: the rate stays unknown (then fallback).
    stuck = answers(completions=0, queue_growth=0.0, waiting=50)
    got = observe(build_snapshot(stuck, key_resolver("deployment", [])), KEY, STALENESS_S, 120.0)
    assert got.arrival_rpm is None


def test_draining_queue_is_not_subtracted() -> None:
    assert observed(answers(queue_growth=-1.0, waiting=10)).arrival_rpm == pytest.approx(120.0)


def test_idle_server_is_zero_load_only_when_measured_idle() -> None:
    idle = observed(
        answers(
            completions=0, token_completions=0, prompt_tokens=0, generation_tokens=0, running=0, waiting=0
        )
    )
    assert idle.arrival_rpm == 0.0
    assert idle.avg_in_tokens is None  # 0/0: no request to measure; the chain fills it


def test_token_means_come_from_their_own_window() -> None:
    # Idle for the last 2 minutes but busy within the token window: the sizes are still measured.
    quiet = observed(answers(completions=0, running=0, waiting=0))
    assert quiet.arrival_rpm == 0.0
    assert (quiet.avg_in_tokens, quiet.avg_out_tokens) == (pytest.approx(200), pytest.approx(500))
    # The means divide by the token window's completions, not the rate window's.
    got = observed(answers(completions=4.0, token_completions=1.0, prompt_tokens=300, generation_tokens=900))
    assert got.arrival_rpm == pytest.approx(240.0)
    assert (got.avg_in_tokens, got.avg_out_tokens) == (pytest.approx(300), pytest.approx(900))


@pytest.mark.parametrize(
    "overrides",
    [{"running": 4}, {"waiting": 9}, {"running": []}],
    ids=["running", "waiting", "running-unknown"],
)
def test_no_completions_with_requests_in_flight_is_unknown(overrides: dict[str, Any]) -> None:
    obs = observed(answers(completions=0, **overrides))
    assert obs.arrival_rpm is None
    assert any("in flight" in n for n in obs.notes)


@pytest.mark.parametrize(
    ("overrides", "note"),
    [
        ({"completions": "NaN"}, "completions: rejected NaN"),
        ({"completions": "+Inf"}, "completions: rejected +Inf"),
        ({"completions": -1}, "completions: rejected negative"),
        ({"completions": []}, "completions: no series"),
        ({"completions": RuntimeError("boom")}, "completions: query failed"),
        ({"completions": 1e12}, "implausible"),
    ],
    ids=["nan", "inf", "negative", "missing", "failed", "huge"],
)
def test_bad_rate_is_rejected_with_a_note(overrides: dict[str, Any], note: str) -> None:
    obs = observed(answers(**overrides))
    assert obs.arrival_rpm is None
    assert any(note in n for n in obs.notes), obs.notes


def test_stale_series_give_nothing() -> None:
    obs = observed(answers(last_sample=NOW_S - 600))
    assert obs == Observation(notes=(obs.notes[0],))
    assert "stale" in obs.notes[0] and "600 s" in obs.notes[0]


def test_missing_freshness_series_gives_nothing() -> None:
    obs = observed(answers(last_sample=[]))
    assert obs.arrival_rpm is None and "no fresh vllm series" in obs.notes[0]


def test_bad_tokens_are_rejected_but_rate_kept() -> None:
    obs = observed(answers(prompt_tokens="NaN", generation_tokens=1e15))
    assert obs.arrival_rpm == pytest.approx(120.0)
    assert obs.avg_in_tokens is None and obs.avg_out_tokens is None


@pytest.mark.parametrize(
    ("present", "expected_ms"),
    [(True, 20.0), (False, None)],
    ids=["itl-series", "no-itl-series"],
)
def test_itl_is_read_when_a_series_is_there(present: bool, expected_ms: float | None) -> None:
    # Old and new names are merged per pod in PromQL (collector.promql); an old vLLM without
    # either simply has no ITL, with no note.
    data = answers(itl_sum=[], itl_count=[])
    if present:
        data |= answers(itl_sum=0.02 * 1000, itl_count=1000)
    obs = observed(data)
    assert obs.itl_ms == (pytest.approx(expected_ms) if expected_ms else None)
    assert obs.notes == ()


LABELS = LabelLoad(arrival_rpm=30, avg_in_tokens=100, avg_out_tokens=300)
LAST = KnownLoad(LoadEstimate(90, 150, 450), at_s=NOW_S - 100)
PROM = Observation(arrival_rpm=120, avg_in_tokens=200, avg_out_tokens=500)


@pytest.mark.parametrize(
    ("obs", "labels", "last", "labels_trusted", "source", "rpm", "trusted"),
    [
        (PROM, LABELS, LAST, False, "prometheus", 120, True),
        (Observation(), LABELS, LAST, False, "labels", 30, False),
        (Observation(), LABELS, LAST, True, "labels", 30, True),
        (Observation(), LabelLoad(), LAST, False, "last-known", 90, False),
        (Observation(), LabelLoad(), None, False, "none", None, False),
        (Observation(), LabelLoad(), KnownLoad(LAST.load, NOW_S - 601), False, "none", None, False),
    ],
    ids=[
        "prometheus",
        "labels-untrusted",
        "labels-trusted-without-prometheus",
        "last-known",
        "none",
        "expired",
    ],
)
def test_fallback_chain(
    obs: Observation,
    labels: LabelLoad,
    last: KnownLoad | None,
    labels_trusted: bool,
    source: str,
    rpm: float | None,
    trusted: bool,
) -> None:
    resolved = resolve_load(obs, labels, last, NOW_S, max_age_s=600, labels_trusted=labels_trusted)
    assert resolved.source == source and resolved.trusted is trusted
    assert (resolved.load.arrival_rpm if resolved.load else None) == rpm


def test_tokens_fall_back_per_field() -> None:
    obs = Observation(arrival_rpm=120, avg_in_tokens=None, avg_out_tokens=500)
    resolved = resolve_load(obs, LabelLoad(), LAST, NOW_S, max_age_s=600, labels_trusted=False)
    assert resolved.trusted and resolved.load == LoadEstimate(120, 150, 500)
    assert "avg_in_tokens from last-known" in resolved.notes


def test_rate_without_token_sizes_is_untrusted() -> None:
    resolved = resolve_load(
        Observation(arrival_rpm=120), LabelLoad(), None, NOW_S, max_age_s=600, labels_trusted=False
    )
    assert not resolved.trusted and any("token sizes unknown" in n for n in resolved.notes)


def test_last_known_note_says_its_age() -> None:
    resolved = resolve_load(Observation(), LabelLoad(), LAST, NOW_S, max_age_s=600, labels_trusted=False)
    assert "load from the last known value, 100 s old" in resolved.notes


def test_remember_keeps_fresh_prometheus_loads_and_ages_out_the_rest() -> None:
    fresh = ResolvedLoad(LoadEstimate(1, 2, 3), "prometheus", True, ())
    fallback = ResolvedLoad(LoadEstimate(9, 9, 9), "labels", False, ())
    previous = {("a", "x"): LAST, ("a", "y"): KnownLoad(LAST.load, NOW_S - 700), ("a", "gone"): LAST}
    store = remember(previous, {("a", "x"): fallback, ("a", "y"): fallback, ("a", "z"): fresh}, NOW_S, 600)
    assert store == {("a", "x"): LAST, ("a", "z"): KnownLoad(LoadEstimate(1, 2, 3), NOW_S)}


def histogram_of(lengths: list[int], max_model_len: int = 16384) -> Buckets:
    """vLLM's 1-2-5 histogram of ``lengths``, as the collector reads it (cumulative per edge)."""
    counts = BucketCounts(one_two_five_buckets(max_model_len))
    for n in lengths:
        counts.observe(n)
    return Buckets(tuple((float(le), c) for le, c in counts.cumulative()))


def exact_cv2(lengths: list[int]) -> float:
    mean = sum(lengths) / len(lengths)
    return sum((x - mean) ** 2 for x in lengths) / len(lengths) / mean**2


def test_length_cv2_worked_example() -> None:
    histogram = Buckets(((100.0, 5.0), (200.0, 10.0), (math.inf, 10.0)))
    assert length_cv2(histogram, 120.0) == pytest.approx(2500 / 14400)


@pytest.mark.parametrize("length", [1, 7, 256, 512, 1000, 3000])
def test_fixed_lengths_read_no_spread(length: int) -> None:
    assert length_cv2(histogram_of([length] * 50), float(length)) == 0.0
    assert length_cv2(histogram_of([length] * 50), length * 1.0000001) == 0.0  # a mean off by rounding


@pytest.mark.parametrize(("sigma", "median"), [(0.5, 2000), (0.7, 150), (0.8, 800), (1.0, 300)])
def test_heavy_tailed_spreads_are_read_within_a_fifth(sigma: float, median: float) -> None:
    # Lognormal lengths: cv^2 = exp(sigma^2) - 1, from 0.28 to 1.7 (the Azure trace: 0.60, 0.92).
    rng = np.random.default_rng(22)
    lengths = [max(1, round(x)) for x in rng.lognormal(math.log(median), sigma, 20_000)]
    estimate = length_cv2(histogram_of(lengths), sum(lengths) / len(lengths))
    assert estimate == pytest.approx(exact_cv2(lengths), rel=0.2)


def test_a_narrow_spread_reads_a_little_wide() -> None:
    rng = np.random.default_rng(22)
    lengths = [max(1, round(x)) for x in rng.lognormal(math.log(500), 0.3, 20_000)]  # cv^2 0.094
    estimate = length_cv2(histogram_of(lengths), sum(lengths) / len(lengths))
    assert estimate is not None and exact_cv2(lengths) < estimate < exact_cv2(lengths) + 0.1


def test_two_equal_groups_read_their_spread() -> None:
    lengths = [100] * 30 + [1000] * 30  # buckets (50, 100] and (500, 1000], at their top edges
    assert length_cv2(histogram_of(lengths), 550.0) == pytest.approx(exact_cv2(lengths))


def test_empty_histogram_or_unknown_mean_gives_no_spread() -> None:
    assert length_cv2(Buckets(((10.0, 0.0), (math.inf, 0.0))), 5.0) is None
    assert length_cv2(histogram_of([5, 6]), 0.0) is None


def test_observe_reads_the_spread_from_the_length_histograms() -> None:
    # Mean 200 in: 1 req/s in (100, 200], 1 in (200, 500]: t = (400 - 300) / 400 = 0.25, points
    # 125 and 275, cv^2 = 75^2 / 200^2. Mean 500 out, all in (200, 500]: no spread.
    prompt = buckets(*KEY, [("100", 0.0), ("200", 1.0), ("500", 2.0), ("+Inf", 2.0)])
    generation = buckets(*KEY, [("200", 0.0), ("500", 2.0), ("+Inf", 2.0)])
    obs = observed(answers(prompt_buckets=prompt, generation_buckets=generation))
    assert obs.in_tokens_cv2 == pytest.approx(75**2 / 200**2)
    assert obs.out_tokens_cv2 == pytest.approx(0.0)
    assert obs.notes == ()
    resolved = resolve_load(obs, LabelLoad(), None, NOW_S, max_age_s=600, labels_trusted=False)
    assert resolved.load == LoadEstimate(120, 200, 500, obs.in_tokens_cv2, 0.0)


def test_bad_or_failed_histograms_leave_the_spread_unknown_with_a_note() -> None:
    bad = buckets(*KEY, [("100", "NaN"), ("+Inf", 2.0)])
    obs = observed(answers(prompt_buckets=bad, generation_buckets=RuntimeError("boom")))
    assert obs.in_tokens_cv2 is None and obs.out_tokens_cv2 is None
    assert "prompt_buckets: rejected bucket le=100: NaN" in obs.notes
    assert "generation_buckets: query failed" in obs.notes
    assert obs.arrival_rpm == pytest.approx(120.0)  # the rest of the load stands


def test_spread_follows_its_token_mean_through_the_fallback_chain() -> None:
    known = KnownLoad(LoadEstimate(90, 150, 450, 0.5, 0.7), at_s=NOW_S - 100)
    from_last = resolve_load(Observation(), LabelLoad(), known, NOW_S, max_age_s=600, labels_trusted=False)
    assert from_last.load is not None
    assert (from_last.load.in_tokens_cv2, from_last.load.out_tokens_cv2) == (0.5, 0.7)
    from_labels = resolve_load(Observation(), LABELS, known, NOW_S, max_age_s=600, labels_trusted=True)
    assert from_labels.load is not None and from_labels.load.in_tokens_cv2 is None
