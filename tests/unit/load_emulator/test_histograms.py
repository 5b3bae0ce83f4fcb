"""Bulk histogram observations equal one-by-one ones; vLLM's bucket series."""

from __future__ import annotations

import random

import pytest

from load_emulator.histograms import ITL_BUCKETS_S, BucketCounts, one_two_five_buckets


def test_one_two_five_buckets() -> None:
    assert one_two_five_buckets(1000) == (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
    assert one_two_five_buckets(4096)[-1] == 2000


@pytest.mark.parametrize("seed", range(20))
def test_linear_runs_bucket_like_single_observations(seed: int) -> None:
    rng = random.Random(seed)
    first, step = rng.uniform(0.001, 0.3), rng.choice([0.0, rng.uniform(0, 0.01)])
    n, weight = rng.randint(1, 200), rng.randint(1, 40)
    bulk, single = BucketCounts(ITL_BUCKETS_S), BucketCounts(ITL_BUCKETS_S)
    bulk.observe_linear(first, step, n, weight)
    for i in range(n):
        single.observe(first + i * step, weight)
    assert bulk.counts == single.counts
    assert bulk.count == single.count
    assert bulk.sum == pytest.approx(single.sum)


def test_cumulative_buckets_end_with_inf() -> None:
    counts = BucketCounts((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 7.0):
        counts.observe(value)
    assert counts.cumulative() == [("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)]
