"""Load patterns: repeatable by seed, right mean rates and token means, exact thinning bounds."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from pathlib import Path

import pytest

from load_emulator.pattern_factory import PATTERNS, make_pattern, parse_param
from load_emulator.patterns import Arrival, Constant, Diurnal, LoadPattern, Ramp, Spikes, Steps
from load_emulator.tokens import TokenSpec
from load_emulator.trace import TraceReplay, read_trace_csv

TOKENS = TokenSpec(128, 256, "geometric")


def _until(pattern: LoadPattern, horizon_s: float, seed: int = 1) -> list[Arrival]:
    return list(itertools.takewhile(lambda a: a.t_s < horizon_s, pattern.arrivals(seed)))


def _expected_count(pattern: LoadPattern, horizon_s: float, step_s: float = 1.0) -> float:
    return sum(pattern.rate_rpm((i + 0.5) * step_s) / 60 * step_s for i in range(int(horizon_s / step_s)))


CASES = {
    "constant": Constant(120.0, TOKENS),
    "steps": Steps(((0.0, 60.0), (600.0, 240.0), (1200.0, 30.0)), TOKENS),
    "ramp": Ramp(30.0, 300.0, 300.0, 1500.0, TOKENS),
    "spikes": Spikes(60.0, 600.0, (300.0, 900.0, 1500.0), 60.0, TOKENS),
    "diurnal": Diurnal(
        120.0, TOKENS, amplitude=0.6, period_s=900.0, noise=0.2, noise_interval_s=30.0, seed=3
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_arrival_count_matches_the_integrated_rate(name: str) -> None:
    pattern = CASES[name]
    horizon_s = 1800.0
    arrivals = _until(pattern, horizon_s)
    expected = _expected_count(pattern, horizon_s)
    assert len(arrivals) == pytest.approx(expected, rel=4 / math.sqrt(expected))  # 4 sigma
    assert all(b.t_s >= a.t_s for a, b in itertools.pairwise(arrivals))


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_same_stream(name: str) -> None:
    pattern = CASES[name]
    assert _until(pattern, 600.0, seed=5) == _until(pattern, 600.0, seed=5)
    assert _until(pattern, 600.0, seed=5) != _until(pattern, 600.0, seed=6)


def test_rates_follow_their_shapes() -> None:
    assert [CASES["steps"].rate_rpm(t) for t in (0, 599, 600, 1300)] == [60, 60, 240, 30]
    ramp = CASES["ramp"]
    assert [ramp.rate_rpm(t) for t in (0, 300, 900, 1500, 2000)] == [30, 30, 165, 300, 300]
    spikes = CASES["spikes"]
    assert [spikes.rate_rpm(t) for t in (299, 300, 359, 360)] == [60, 600, 600, 60]
    flat = Diurnal(100.0, TOKENS, amplitude=0.5, period_s=400.0, noise=0.0)
    assert [round(flat.rate_rpm(t), 6) for t in (0, 100, 200, 300)] == [100, 150, 100, 50]
    noisy = CASES["diurnal"]
    assert statistics.fmean(noisy.rate_rpm(t + 0.5) for t in range(9000)) == pytest.approx(120, rel=0.05)
    assert noisy.rate_rpm(17.0) == noisy.rate_rpm(17.0)  # pure function of time


def test_rate_bounds_hold() -> None:
    rng = random.Random(0)
    for pattern in CASES.values():
        for _ in range(2000):
            t = rng.uniform(0, 3000)
            bound, until = pattern.rate_bound_rpm(t)  # type: ignore[attr-defined]
            assert until > t
            for u in (t, (t + min(until, t + 500)) / 2):
                assert pattern.rate_rpm(u) <= bound + 1e-9


@pytest.mark.parametrize(
    ("distribution", "cv"),
    [("geometric", 1.0), ("lognormal", 0.5), ("lognormal", 1.5), ("deterministic", 0.0)],
)
def test_token_means(distribution: str, cv: float) -> None:
    spec = TokenSpec(300, 700, distribution, cv=cv)  # type: ignore[arg-type]
    sampler, rng = spec.sampler(), random.Random(4)
    draws = [sampler.draw(rng) for _ in range(40_000)]
    ins, outs = [d[0] for d in draws], [d[1] for d in draws]
    assert statistics.fmean(ins) == pytest.approx(300, rel=0.03)
    assert statistics.fmean(outs) == pytest.approx(700, rel=0.03)
    assert min(outs) >= 1
    if distribution == "deterministic":
        assert set(ins) == {300} and set(outs) == {700}
    if distribution == "lognormal":
        assert statistics.pstdev(outs) / 700 == pytest.approx(cv, rel=0.15)


def test_token_edge_cases() -> None:
    rng = random.Random(0)
    assert {TokenSpec(0, 0).sampler().draw(rng) for _ in range(100)} == {(0, 1)}
    capped = TokenSpec(10, 5000, "geometric", max_tokens=100).sampler()
    assert max(capped.draw(rng)[1] for _ in range(1000)) == 100
    with pytest.raises(ValueError, match="unknown token distribution"):
        TokenSpec(1, 1, "poisson")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        TokenSpec(-1, 1)


def test_trace_replay(tmp_path: Path) -> None:
    csv = tmp_path / "trace.csv"
    csv.write_text("timestamp,in,out\n# a comment\n1000.5,10,20\n1000.0,30,40\n\n1002.0,50,60\n")
    rows = read_trace_csv(csv)
    assert len(rows) == 3
    trace = TraceReplay.from_csv(csv, time_scale=2.0)
    assert list(trace.arrivals()) == [Arrival(0.0, 30, 40), Arrival(1.0, 10, 20), Arrival(4.0, 50, 60)]
    assert trace.tokens.mean_in_tokens == 30 and trace.tokens.mean_out_tokens == 40
    looped = list(itertools.islice(TraceReplay.from_csv(csv, loop=True).arrivals(), 6))
    assert [a.t_s for a in looped] == [0.0, 0.5, 2.0, 3.0, 3.5, 5.0]  # span 2 s + mean gap 1 s
    assert trace.rate_rpm(4.0) == 3 * 60 / 60.0


@pytest.mark.parametrize(
    ("text", "message"),
    [("1,2\n", "expected timestamp"), ("0,1,1\nx,1,1\n", "not a number"), ("0,a,1\n", "token counts"),
     ("0,1,0\n", "out >= 1")],
)  # fmt: skip
def test_trace_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_trace_csv(csv)


def test_factory_shapes_around_the_base_rate(tmp_path: Path) -> None:
    steps = make_pattern("steps", 100.0, TOKENS, {"factors": "1,3", "step_s": "60"})
    assert (steps.rate_rpm(0), steps.rate_rpm(61)) == (100.0, 300.0)
    spikes = make_pattern("spikes", 100.0, TOKENS, {"every_s": "100", "first_s": "50", "horizon_s": "300"})
    assert [spikes.rate_rpm(t) for t in (49, 50, 150, 250, 369, 371)] == [100, 400, 400, 400, 400, 100]
    csv = tmp_path / "t.csv"
    csv.write_text("0,1,2\n")
    assert isinstance(make_pattern("trace", 0, TOKENS, {"path": str(csv)}), TraceReplay)
    assert set(PATTERNS) == {"constant", "steps", "ramp", "spikes", "diurnal", "trace"}
    with pytest.raises(ValueError, match="unknown load pattern 'sine'; known"):
        make_pattern("sine", 1, TOKENS, {})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['speed'\]"):
        make_pattern("ramp", 1, TOKENS, {"speed": "2"})
    with pytest.raises(ValueError, match="is not a number"):
        make_pattern("constant", 1, TOKENS, {"scale": "big"})


@pytest.mark.parametrize(
    ("text", "pair"),
    [("step_s=25", ("step_s", "25")), (" factors = 1,0.5 ", ("factors", "1,0.5")), ("a==b", ("a", "=b"))],
)
def test_parse_param_splits_at_the_first_equals(text: str, pair: tuple[str, str]) -> None:
    assert parse_param(text) == pair


@pytest.mark.parametrize("text", ["step_s", "=25", ""])
def test_parse_param_names_the_bad_value(text: str) -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_param(text)
