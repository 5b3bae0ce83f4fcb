"""Per-replica vLLM counters and histograms, kept as plain numbers the engine updates in bulk.

The engine (:mod:`load_emulator.replica`) advances many identical decode iterations at once, so it
needs weighted observations (``n`` requests x ``k`` iterations) that prometheus-client's
``Histogram.observe`` cannot take; :mod:`load_emulator.exporter` turns these into metric families
at scrape time. Bucket bounds are vLLM's (v1 ``PrometheusStatLogger``):

- TTFT: 1 ms .. 2560 s; inter-token latency (also served as the older
  ``time_per_output_token_seconds``): 10 ms .. 80 s; e2e and queue time: 0.3 s .. 7680 s;
- prompt / generation tokens per request: 1-2-5 series up to the model length.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

TTFT_BUCKETS_S = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
ITL_BUCKETS_S = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
REQUEST_LATENCY_BUCKETS_S = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)


def one_two_five_buckets(max_value: int) -> tuple[float, ...]:
    """1, 2, 5, 10, 20, 50, ... up to ``max_value`` (vLLM's ``build_1_2_5_buckets``)."""
    out: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return tuple(out)
            out.append(float(value))
        exponent += 1


class BucketCounts:
    """A histogram: per-bucket counts (not cumulative; the last slot is +Inf), sum and count."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0.0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0.0

    def observe(self, value: float, weight: float = 1.0) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += weight
        self.sum += value * weight
        self.count += weight

    def observe_linear(self, first: float, step: float, n_values: int, weight: float = 1.0) -> None:
        """Observe ``first + i*step`` for ``i`` in ``[0, n_values)``, each ``weight`` times."""
        if n_values <= 0:
            return
        if step <= 0 or n_values == 1:
            self.observe(first, weight * n_values)
            self.sum += (step * n_values * (n_values - 1) / 2) * weight
            return
        last = first + step * (n_values - 1)
        lo = bisect.bisect_left(self.bounds, first)
        hi = bisect.bisect_left(self.bounds, last)
        placed = 0
        for index in range(lo, hi):
            # values <= bound: i <= (bound - first) / step
            upto = min(int((self.bounds[index] - first) // step) + 1, n_values)
            self.counts[index] += (upto - placed) * weight
            placed = upto
        self.counts[hi] += (n_values - placed) * weight
        self.sum += (first * n_values + step * n_values * (n_values - 1) / 2) * weight
        self.count += n_values * weight

    def cumulative(self) -> list[tuple[str, float]]:
        """``[(le, cumulative count), ..., ("+Inf", count)]`` as the exposition format wants."""
        out: list[tuple[str, float]] = []
        running = 0.0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((_float_label(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out


def _float_label(value: float) -> str:
    return repr(float(value))


@dataclass(slots=True)
class ReplicaMetrics:
    """What one emulated vLLM pod would expose on /metrics (cumulative since the pod started)."""

    max_model_len: int = 65536
    prompt_tokens: float = 0.0
    generation_tokens: float = 0.0
    preemptions: float = 0.0
    """``vllm:num_preemptions``: requests preempted (recompute) for want of KV blocks."""
    success_by_reason: dict[str, float] = field(
        default_factory=lambda: {"stop": 0.0, "length": 0.0, "abort": 0.0}
    )
    ttft: BucketCounts = field(default_factory=lambda: BucketCounts(TTFT_BUCKETS_S))
    itl: BucketCounts = field(default_factory=lambda: BucketCounts(ITL_BUCKETS_S))
    e2e: BucketCounts = field(default_factory=lambda: BucketCounts(REQUEST_LATENCY_BUCKETS_S))
    queue_time: BucketCounts = field(default_factory=lambda: BucketCounts(REQUEST_LATENCY_BUCKETS_S))
    request_prompt_tokens: BucketCounts = field(init=False)
    request_generation_tokens: BucketCounts = field(init=False)

    def __post_init__(self) -> None:
        token_buckets = one_two_five_buckets(self.max_model_len)
        self.request_prompt_tokens = BucketCounts(token_buckets)
        self.request_generation_tokens = BucketCounts(token_buckets)
