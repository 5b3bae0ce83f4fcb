"""Exact wait tail and TTFT percentiles (optimizer.model.tail) vs M/M/1, brute force, Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from optimizer.model.queue import QueueState, queue_rows, queue_state
from optimizer.model.tail import wait_exceeds_prob, wait_quantile_ms


def setup(
    base_ms: float, slope_ms: float, batch: int, room: int, rate_rps: float
) -> tuple[QueueState, float]:
    rows = queue_rows(np.array([base_ms]), np.array([slope_ms]), np.array([batch]), np.array([room]))
    return queue_state(rows, np.log(np.array([rate_rps]))), float(rows.log_mu_top[0])


def exceed(state: QueueState, log_mu_top: float, room: int, wait_ms: float) -> float:
    return float(wait_exceeds_prob(state, np.array([log_mu_top]), np.array([room]), np.array([wait_ms]))[0])


def brute_tail(base_ms: float, slope_ms: float, batch: int, room: int, rate: float, wait_ms: float) -> float:
    """sum over admitted states n >= N of p'_n P(Erlang(n-N+1, mu_N) > t), all states explicit."""
    log_p = [0.0]
    for n in range(1, batch + room + 1):
        k = min(n, batch)
        log_p.append(log_p[-1] + math.log(rate * (base_ms + slope_ms * k) / (1000.0 * k)))
    p = np.exp(np.array(log_p) - max(log_p))
    p /= p[:-1].sum()  # arrivals see states 0..K-1
    mu_top = 1000.0 * batch / (base_ms + slope_ms * batch)
    j = np.arange(room)
    return float(p[batch : batch + room] @ stats.gamma.sf(wait_ms / 1000.0, j + 1, scale=1 / mu_top))


@pytest.mark.parametrize("rho", [0.2, 0.6, 0.95], ids=lambda r: f"rho={r}")
@pytest.mark.parametrize("wait_ms", [0.0, 300.0, 5000.0], ids=lambda t: f"t={t:g}ms")
def test_n1_is_mm1_conditional_exponential(rho: float, wait_ms: float) -> None:
    mu = 2.0
    state, top = setup(500.0, 0.0, 1, 20_000, rho * mu)
    expected = rho * math.exp(-(mu - rho * mu) * wait_ms / 1000)
    assert exceed(state, top, 20_000, wait_ms) == pytest.approx(expected, rel=1e-9)


def test_docstring_worked_example() -> None:
    state, top = setup(1000.0, 0.0, 1, 2, 0.5)
    assert exceed(state, top, 2, 1000.0) == pytest.approx(8 / 14 * math.exp(-1), rel=1e-12)


CASES = [
    pytest.param(21073.92, 419.84, 16, 160, 0.5, 20_000.0, id="decode-A100-busy"),
    pytest.param(1000.0, 100.0, 4, 12, 3.0, 800.0, id="small"),
    pytest.param(1000.0, 0.0, 4, 40, 4.0 * (1 - 3e-7), 2000.0, id="ratio-near-one-direct"),
    pytest.param(1000.0, 0.0, 4, 40, 4.0 * (1 - 3e-6), 2000.0, id="ratio-near-one-closed"),
    pytest.param(1000.0, 0.0, 4, 40, 9.0, 5000.0, id="overload"),
]


@pytest.mark.parametrize(("base", "slope", "batch", "room", "rate", "wait_ms"), CASES)
def test_matches_brute_force(
    base: float, slope: float, batch: int, room: int, rate: float, wait_ms: float
) -> None:
    state, top = setup(base, slope, batch, room, rate)
    got = exceed(state, top, room, wait_ms)
    assert got == pytest.approx(brute_tail(base, slope, batch, room, rate, wait_ms), rel=1e-7, abs=1e-12)


def simulate_waits(
    base_ms: float, slope_ms: float, batch: int, room: int, rate: float, events: int
) -> np.ndarray:
    """FIFO waits of admitted arrivals in the replica chain, by event-driven simulation."""
    rng = np.random.default_rng(11)
    now, in_system = 0.0, 0
    waiting: list[float] = []
    waits: list[float] = []
    for _ in range(events):
        k = min(in_system, batch)
        mu = 1000.0 * k / (base_ms + slope_ms * k) if k else 0.0
        arrive = rate if in_system < batch + room else 0.0
        now += rng.exponential(1 / (arrive + mu)) if arrive + mu > 0 else 0.0
        if rng.random() * (arrive + mu) < arrive:
            if in_system < batch:
                waits.append(0.0)
            else:
                waiting.append(now)
            in_system += 1
        elif in_system:
            in_system -= 1
            if waiting:
                waits.append(now - waiting.pop(0))
    return np.array(waits[len(waits) // 10 :]) * 1000.0


def test_matches_monte_carlo() -> None:
    base, slope, batch, room, rate = 1000.0, 250.0, 3, 9, 1.45  # mu_3 = 1.714 req/s, busy replica
    waits = simulate_waits(base, slope, batch, room, rate, 300_000)
    state, top = setup(base, slope, batch, room, rate)
    for t in (0.0, 500.0, 1500.0, 4000.0):
        empirical = float(np.mean(waits > t))
        assert exceed(state, top, room, t) == pytest.approx(empirical, abs=0.015), t
    p90 = float(wait_quantile_ms(state, np.array([top]), np.array([room]), np.array([0.10]))[0])
    assert p90 == pytest.approx(float(np.quantile(waits, 0.90)), rel=0.06)


@pytest.mark.parametrize("percentile", [50.0, 90.0, 95.0, 99.0], ids=lambda q: f"p{q:g}")
def test_quantile_inverts_mm1_tail(percentile: float) -> None:
    mu, rho = 2.0, 0.8
    state, top = setup(500.0, 0.0, 1, 20_000, rho * mu)
    got = wait_quantile_ms(state, np.array([top]), np.array([20_000]), np.array([1 - percentile / 100]))[0]
    expected = max(math.log(rho / (1 - percentile / 100)) / (mu - rho * mu), 0.0) * 1000
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-6)


def test_quantile_is_zero_when_most_arrivals_find_a_free_slot() -> None:
    state, top = setup(1000.0, 100.0, 8, 80, 0.5)
    assert wait_quantile_ms(state, np.array([top]), np.array([80]), np.array([0.05]))[0] == 0.0


def test_edges_negative_budget_and_no_room() -> None:
    state, top = setup(1000.0, 100.0, 4, 40, 3.0)
    assert exceed(state, top, 40, -1.0) == 1.0
    state, top = setup(1000.0, 100.0, 4, 0, 3.0)
    assert exceed(state, top, 0, 0.0) == 0.0
