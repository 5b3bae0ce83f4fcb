"""Batch size choice (optimizer.model.batch): the default rule, the server override, the optimum."""

from __future__ import annotations

import pytest

from contract.data.perf import DecodeOnlyPerf, IterationPerf, PerfParams
from optimizer.model.batch import (
    OPTIMAL_SHARE,
    batch_search_requests,
    default_batch,
    optimal_batch,
    pick_optimal,
)
from optimizer.model.service_time import service_model
from optimizer.model.sizing import SizingRequest, SizingResult, Targets, size_rates


@pytest.mark.parametrize(
    ("max_batch", "at_tokens", "out_tokens", "server", "expected"),
    [
        (32, 512, 1024, 0, 16),
        (32, 512, 128, 0, 128),
        (32, 512, 512, 0, 32),
        (9, 512, 1000, 0, 4),
        (3, 512, 4096, 0, 1),
        (32, 0, 1024, 0, 32),
        (32, 512, 1024, 7, 7),
        (32, 512, 1024, 100, 100),
        (64, 512, 333.3, 0, 98),
    ],
    ids=[
        "half",
        "short-output",
        "at-profile",
        "rounds-down",
        "at-least-one",
        "no-at-tokens",
        "server-override",
        "override-above-rule",
        "fractional-tokens",
    ],
)
def test_default_batch(
    max_batch: int, at_tokens: float, out_tokens: float, server: int, expected: int
) -> None:
    assert default_batch(max_batch, at_tokens, out_tokens, server) == expected


def result(rate: float) -> SizingResult:
    return SizingResult(rate, 1.0, "ITL" if rate else "infeasible", "")


@pytest.mark.parametrize(
    ("rates", "index"),
    [
        ([0.1, 0.5, 0.99, 1.0], 2),
        ([0.1, 0.5, 0.98, 1.0], 3),
        ([0.3, 1.0, 0.7, 0.2], 1),
        ([1.0, 1.0, 1.0], 0),
        ([0.0, 0.0, 0.0], 2),
        ([0.0, 0.0, 0.5, 0.2], 2),
    ],
    ids=["reaches-99", "just-below-99", "peak-inside", "flat", "none-feasible", "late-feasible"],
)
def test_pick_optimal(rates: list[float], index: int) -> None:
    assert pick_optimal([result(r) for r in rates]) == index


@pytest.mark.parametrize(
    ("perf", "ceiling", "targets"),
    [
        (
            IterationPerf(alpha_ms=20.58, beta_ms=0.041, gamma_ms=0.00128125),
            32,
            Targets(itl_ms=40, ttft_ms=1000),
        ),
        (DecodeOnlyPerf(alpha_ms=20.58, beta_ms=0.41), 16, Targets(itl_ms=24)),
        (DecodeOnlyPerf(alpha_ms=20.58, beta_ms=0.41), 40, Targets(itl_ms=40, ttw_ms=500)),
    ],
    ids=["iteration-A100", "decode-tight-itl", "decode-ttw"],
)
def test_optimal_batch_is_smallest_reaching_99_percent(
    perf: PerfParams, ceiling: int, targets: Targets
) -> None:
    model = service_model(perf, 128, 1024)
    batch, chosen = optimal_batch(model, ceiling, 10, targets, 0.9)
    every = size_rates([SizingRequest(model, n, 10 * n, targets, 0.9) for n in range(1, ceiling + 1)])
    best = max(r.max_rate_rps for r in every)
    assert 1 <= batch <= ceiling
    assert chosen == every[batch - 1]
    assert chosen.max_rate_rps >= OPTIMAL_SHARE * best
    assert all(r.max_rate_rps < OPTIMAL_SHARE * best for r in every[: batch - 1])


def test_optimal_batch_can_be_below_the_ceiling() -> None:
    """With a tight ITL target a bigger batch slows every token, so the optimum is inside."""
    model = service_model(DecodeOnlyPerf(alpha_ms=20.58, beta_ms=0.41), 128, 1024)
    batch, chosen = optimal_batch(model, 64, 10, Targets(itl_ms=30), 0.9)
    assert batch < 64
    assert (
        chosen.max_rate_rps
        > size_rates([SizingRequest(model, 64, 640, Targets(itl_ms=30), 0.9)])[0].max_rate_rps
    )


def test_docstring_example_v07_a100() -> None:
    model = service_model(IterationPerf(alpha_ms=20.58, beta_ms=0.041, gamma_ms=0.00128125), 128, 1024)
    ceiling = default_batch(64, 512, 1024)
    results = size_rates(batch_search_requests(model, ceiling, 10, Targets(itl_ms=40, ttft_ms=1000), 0.9))
    assert ceiling == 32
    assert [round(results[n - 1].max_rate_rps, 4) for n in (16, 19, 20, 32)] == [
        0.2537,
        0.2838,
        0.2890,
        0.2873,
    ]
    assert (results[18].limit, results[19].limit, results[31].limit) == ("TTFT", "ITL", "ITL")
    assert pick_optimal(results) + 1 == 20
