"""Replica queue (optimizer.model.queue, .states) against closed forms and a brute-force chain."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimizer.model.latency import evaluate, row_set
from optimizer.model.queue import QueueState, geometric_mean_index, log_geometric_sum, queue_rows, queue_state
from optimizer.model.service_time import ServiceModel
from optimizer.model.states import head_sums


def state_of(base_ms: float, slope_ms: float, batch: int, room: int, rate_rps: float) -> QueueState:
    rows = queue_rows(np.array([base_ms]), np.array([slope_ms]), np.array([batch]), np.array([room]))
    return queue_state(rows, np.log(np.array([rate_rps])))


def brute_force(base_ms: float, slope_ms: float, batch: int, room: int, rate_rps: float) -> dict[str, float]:
    """The issue's recurrence over all K+1 states, in logs, written independently of the code."""
    log_p = [0.0]
    for n in range(1, batch + room + 1):
        k = min(n, batch)
        mu = 1000.0 * k / (base_ms + slope_ms * k)
        log_p.append(log_p[-1] + math.log(rate_rps / mu))
    peak = max(log_p)
    p = np.exp(np.array(log_p) - peak)
    p /= p.sum()
    states = np.arange(p.size)
    x = rate_rps * (1 - p[-1])
    busy = float(np.minimum(states, batch) @ p)
    total = float(states @ p)
    return {
        "throughput_rps": x,
        "in_system": total,
        "busy": busy,
        "service_ms": 1000 * busy / x,
        "wait_ms": max(1000 * (total / x - busy / x), 0.0),
        "block_prob": float(p[-1]),
    }


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9, 0.99], ids=lambda r: f"rho={r}")
def test_n1_large_room_matches_mm1(rho: float) -> None:
    mu = 2.0  # S = 500 ms
    room = 20_000
    s = state_of(500.0, 0.0, 1, room, rho * mu)
    assert s.in_system[0] == pytest.approx(rho / (1 - rho), rel=1e-9)
    assert s.wait_ms[0] == pytest.approx(1000 * rho / (mu - rho * mu), rel=1e-9)
    assert s.service_ms[0] == pytest.approx(500.0, rel=1e-12)
    assert s.utilization[0] == pytest.approx(rho, rel=1e-9)


@pytest.mark.parametrize("rho", [0.3, 1.0, 1.7], ids=["below", "at", "above"])
def test_n1_finite_room_matches_mm1k_blocking(rho: float) -> None:
    capacity = 5  # K = N + Q = 1 + 4
    s = state_of(1000.0, 0.0, 1, capacity - 1, rho)
    expected = 1 / (capacity + 1) if rho == 1.0 else (1 - rho) * rho**capacity / (1 - rho ** (capacity + 1))
    assert s.block_prob[0] == pytest.approx(expected, rel=1e-9)


def test_docstring_worked_example() -> None:
    s = state_of(1000.0, 1000.0, 2, 1, 0.5)
    assert s.throughput_rps[0] == pytest.approx(0.5 * (1 - 0.5625 / 3.3125), rel=1e-12)
    assert s.in_system[0] == pytest.approx((1 + 2 * 0.75 + 3 * 0.5625) / 3.3125, rel=1e-12)
    assert s.busy[0] == pytest.approx((1 + 2 * 0.75 + 2 * 0.5625) / 3.3125, rel=1e-12)
    assert s.service_ms[0] == pytest.approx(2636.3636, rel=1e-6)
    assert s.wait_ms[0] == pytest.approx(409.0909, rel=1e-6)
    assert s.utilization[0] == pytest.approx(0.547170, rel=1e-5)


CASES = [
    pytest.param(21073.92, 419.84, 16, 160, 0.3, id="decode-only-A100-mid"),
    pytest.param(21073.92, 419.84, 16, 160, 0.57, id="decode-only-A100-near-saturation"),
    pytest.param(21073.92, 419.84, 16, 160, 0.9, id="decode-only-A100-overload"),
    pytest.param(500.0, 0.0, 8, 80, 10.0, id="poisson-head"),
    pytest.param(500.0, 0.0, 8, 80, 30.0, id="poisson-head-overload"),
    pytest.param(0.0, 50.0, 5, 0, 3.0, id="no-base-no-room"),
    pytest.param(1e9, 1e-3, 4, 40, 0.002, id="huge-shape-direct-path"),
    pytest.param(30000.0, 500.0, 300, 3000, 4.0, id="large-batch"),
    pytest.param(1000.0, 1000.0, 1, 10, 1e-7, id="tiny-load"),
]


@pytest.mark.parametrize(("base", "slope", "batch", "room", "rate"), CASES)
def test_matches_brute_force(base: float, slope: float, batch: int, room: int, rate: float) -> None:
    s = state_of(base, slope, batch, room, rate)
    expected = brute_force(base, slope, batch, room, rate)
    for name, value in expected.items():
        assert getattr(s, name)[0] == pytest.approx(value, rel=1e-8, abs=1e-12), name


def test_closed_form_matches_direct_sum_on_random_rows() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    base = rng.uniform(0, 5e4, n)
    slope = np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0.05, 1000, n))
    slope[base < 1] = 1.0
    batch = rng.integers(1, 600, n)
    rows = queue_rows(base, slope, batch, 10 * batch)
    log_rate = rows.log_mu_top + np.log(rng.uniform(1e-5, 1.0, n))
    closed = head_sums(base, slope, batch, log_rate, np.ones(n, dtype=bool))
    direct = head_sums(base, slope, batch, log_rate, np.zeros(n, dtype=bool))
    for got, want in zip(closed, direct, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize(
    ("base", "slope", "batch"), [(21073.92, 419.84, 16), (500.0, 0.0, 8)], ids=["nb", "poisson"]
)
def test_latencies_grow_with_rate(base: float, slope: float, batch: int) -> None:
    rows = queue_rows(np.full(200, base), np.full(200, slope), np.full(200, batch), np.full(200, 10 * batch))
    mu_top = 1000 * batch / (base + slope * batch)
    s = queue_state(rows, np.log(np.linspace(0.001, 1.5, 200) * mu_top))
    for series in (s.wait_ms, s.service_ms, s.in_system, s.busy, s.block_prob):
        assert np.all(np.diff(series) >= -1e-9 * np.abs(series[1:]))
    assert np.all(np.isfinite(s.wait_ms))


def test_extreme_rates_do_not_overflow() -> None:
    s = state_of(1000.0, 10.0, 64, 640, 1e12)
    assert s.utilization[0] == pytest.approx(1.0)
    assert s.throughput_rps[0] == pytest.approx(64000 / 1640, rel=1e-9)
    assert math.isfinite(s.wait_ms[0])


@pytest.mark.parametrize("x", [-800.0, -3.0, -1e-9, 0.0, 1e-9, 2.0, 800.0], ids=str)
def test_geometric_helpers_against_direct_sums(x: float) -> None:
    room = 7
    j = np.arange(room + 1)
    weights = np.exp((j - (room if x > 0 else 0)) * x)  # scaled to avoid overflow
    want_log = math.log(weights.sum()) + (room * x if x > 0 else 0.0)
    got_log = log_geometric_sum(np.array([x]), np.array([room + 1]))[0]
    assert got_log == pytest.approx(want_log, rel=1e-12, abs=1e-12)
    got_mean = geometric_mean_index(np.array([x]), np.array([room]))[0]
    assert got_mean == pytest.approx(float(j @ weights / weights.sum()), rel=1e-9, abs=1e-12)


def test_states_docstring_example() -> None:
    one = np.array([1000.0])
    for closed in (True, False):
        sums = head_sums(one, one, np.array([2]), np.log(np.array([0.5])), np.array([closed]))
        assert np.exp([sums.log_z0[0], sums.log_z1[0], sums.log_top[0]]) == pytest.approx([2.0, 1.0, 0.75])


def test_latency_docstring_example() -> None:
    model = ServiceModel(1000.0, 0.0, (0.0, 0.1, 0.0, 0.0), (0.0, 0.1, 0.0, 0.0), "decode-only")
    lat = evaluate(row_set([model], [1], [100_000]), np.log(np.array([0.5])))
    assert (lat.state.wait_ms[0], lat.state.service_ms[0]) == pytest.approx((1000.0, 1000.0))
    assert (lat.itl_ms[0], lat.ttft_ms[0]) == pytest.approx((100.0, 1100.0))
