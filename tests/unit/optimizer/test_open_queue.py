"""The replica's queue is open below saturation (optimizer.model.queue.effective_room).

vLLM queues without bound. With the finite room ``max_queue_factor * N`` (10 for N = 1) the chain
dropped arrivals a real server queues: at 90 % load an N = 1 replica's mean TTFT came out 55 %
below the emulator's, and sizing under a TTFT target accepted rates the server cannot meet.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from contract.data.perf import PrefillDecodePerf
from optimizer.model.latency import evaluate, row_set
from optimizer.model.predict import predict_many
from optimizer.model.queue import effective_room
from optimizer.model.service_time import ServiceModel, service_model
from optimizer.model.sizing import SizingRequest, Targets, size_rates

# S(n) = 500 ms for every n, TTFT = W + 0.1 S: an M/M/1 queue for N = 1 (mu = 2 req/s).
FLAT = ServiceModel(500.0, 0.0, (0.0, 0.1, 0.0, 0.0), (0.0, 0.1, 0.0, 0.0), "decode-only")
PREFILL = PrefillDecodePerf(alpha_ms=20.58, beta_ms=0.41, gamma_ms=164.64, delta_ms=0.0128125)


@pytest.mark.parametrize(
    ("room", "ratio", "opened", "expected"),
    [
        (10, 0.9, True, 197),  # ceil(ln 1e-9 / ln 0.9) = ceil(196.7)
        (10, 0.5, True, 30),
        (500, 0.5, True, 500),  # a larger configured room is kept
        (10, 0.9, False, 10),  # a closed chain keeps its room
        (10, 1.0, True, 10),  # at and above saturation the room stands in
        (10, 1.5, True, 10),
        (10, 1.0 - 1e-9, True, 1_000_000),  # bounded next to saturation
    ],
)
def test_effective_room(room: int, ratio: float, opened: bool, expected: int) -> None:
    got = effective_room(np.array([room]), np.log(np.array([ratio])), np.array([opened]))
    assert int(got[0]) == expected
    if opened and ratio < 1.0 and expected < 1_000_000:
        assert ratio**expected <= 1e-9 < ratio ** (expected - 1) or expected == room


@pytest.mark.parametrize("rho", [0.5, 0.8, 0.9, 0.99])
def test_small_room_below_saturation_is_the_unbounded_mm1(rho: float) -> None:
    """N = 1 with the default room of 10: mean wait rho/(mu - lambda), nothing blocked."""
    lat = evaluate(row_set([FLAT], [1], [10]), np.log(np.array([rho * 2.0])))
    assert lat.state.wait_ms[0] == pytest.approx(1000.0 * rho / (2.0 - 2.0 * rho), rel=1e-7)
    assert lat.state.block_prob[0] < 1e-8
    assert lat.state.throughput_rps[0] == pytest.approx(rho * 2.0, rel=1e-8)


def test_percentile_uses_the_open_tail() -> None:
    """M/M/1: P(W > t) = rho exp(-(mu - lambda) t); its p95 at rho = 0.9 is ln(20 * 0.9) / 0.2 s."""
    (p,) = predict_many([FLAT], [1], [10], rates_rps=[1.8], percentiles=[95.0])
    wait_p95_ms = 1000.0 * math.log(20 * 0.9) / 0.2
    assert p.ttft_percentile_ms - 0.1 * 500.0 == pytest.approx(wait_p95_ms, rel=1e-6)


def test_above_saturation_the_room_still_bounds_the_chain() -> None:
    """No steady state exists there; the configured room stands in (M/M/1/K with K = 11)."""
    lat = evaluate(row_set([FLAT], [1], [10]), np.log(np.array([3.0])))
    rho, k = 1.5, 11
    block = (1 - rho) * rho**k / (1 - rho ** (k + 1))
    assert lat.state.block_prob[0] == pytest.approx(block, rel=1e-9)
    assert int(lat.state.room[0]) == 10


@pytest.mark.parametrize("batch", [1, 2, 4])
def test_sizing_under_a_ttft_target_does_not_depend_on_the_overload_room(batch: int) -> None:
    """A tiny batch sized near saturation: the room beyond the sized load must not matter (with a
    room of 10 N the old chain allowed a higher rate than an unbounded queue can serve)."""
    model = service_model(PREFILL, 128, 1024)
    targets = Targets(ttft_ms=200_000.0)
    small, large = size_rates(
        [
            SizingRequest(model, batch, 10 * batch, targets),
            SizingRequest(model, batch, 100_000, targets),
        ]
    )
    assert small.limit == "TTFT"
    assert small.max_rate_rps == pytest.approx(large.max_rate_rps, rel=1e-6)
    (at_rate,) = predict_many([model], [batch], [10 * batch], rates_rps=[small.max_rate_rps], percentiles=[0])
    assert at_rate.ttft_ms == pytest.approx(200_000.0, rel=1e-4)
