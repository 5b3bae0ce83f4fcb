"""Smoke test of benchmark 3 (model accuracy): a few grid points of ``benchmarks.bench_accuracy``
with short virtual runs. The model must match the emulated prefill-first vLLM replica within
tolerances that the inferno reading of the v0.6 data (prefills shared by the batch) misses:
its saturation rate is ~11 % too high and its ITL ~8 % too low at half load with N = 32."""

from __future__ import annotations

import math

import pytest

from benchmarks.accuracy_grid import Pair, emulated_saturation_rps, measure_point
from benchmarks.bench_accuracy import IN_TOKENS, OUT_TOKENS, load_pairs
from load_emulator.tokens import TokenSpec
from optimizer.model.latency import row_set
from optimizer.model.service_time import service_model
from optimizer.settings import OptimizerSettings

TOKENS = TokenSpec(IN_TOKENS, OUT_TOKENS, "geometric")


@pytest.fixture(scope="module")
def granite_a100() -> Pair:
    return load_pairs([("granite_13b", "A100")])[0][0]


@pytest.mark.parametrize("batch", [16, 32])
def test_saturation_rate_matches_emulator(granite_a100: Pair, batch: int) -> None:
    pair = granite_a100
    observed = emulated_saturation_rps(pair.perf, batch, TOKENS, completions=4000, seed=7)
    rows = row_set([service_model(pair.perf, IN_TOKENS, OUT_TOKENS)], [batch], [10 * batch])
    predicted = math.exp(rows.queue.log_mu_top[0])
    assert predicted == pytest.approx(observed, rel=0.03)


@pytest.mark.parametrize(
    ("batch", "load", "ttft_tolerance", "itl_tolerance"),
    [(16, 0.3, 0.04, 0.03), (32, 0.5, 0.06, 0.04)],
    ids=["N16-30pct", "N32-50pct"],
)
def test_predicted_means_match_emulator(
    granite_a100: Pair, batch: int, load: float, ttft_tolerance: float, itl_tolerance: float
) -> None:
    pair = granite_a100
    saturation = emulated_saturation_rps(pair.perf, batch, TOKENS, completions=4000, seed=7)
    point = measure_point(
        pair,
        batch,
        load,
        saturation,
        TOKENS,
        requests=2000,
        seeds=[1, 2],
        settings=OptimizerSettings(),
    )
    assert point.observed_requests > 3000
    assert abs(point.ttft_error) <= ttft_tolerance, point
    assert abs(point.itl_error) <= itl_tolerance, point
