"""Per sweep level: throughput, latencies and the batch the engine ran; and whether it saturated.

Role: the measured side of a profile that the fit does not see: where throughput stops growing.
Caller: the profiler and :mod:`.verdict`.

A level is ``c`` closed-loop clients sending one request shape (prompt and output tokens) for a
while. Its throughput is output tokens per second over the level's last two thirds (the first
third fills the batch) divided by the tokens a request asks for: completions per second, smoother
than counting completions in a short window. The batch it ran is the 95th percentile of the
requests streaming at once (:func:`~.timeline.running_at`), sampled at every token.

A shape *saturates* when, at its highest concurrency, requests waited for a seat (the batch seen
is below 90 % of the clients) and throughput grew by less than 5 % from the level below. Its
saturation rate is the mean throughput of those two levels (a level's window holds a few long
prefill steps more or less depending on its phase; two windows halve that noise).
Example: 8, 16, 32 clients on a replica of batch 16 give 2.1, 3.4, 3.45 req/s with batches 8,
16, 16: saturated at 3.425 req/s, batch 16.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optimizer.profiling.timeline import RequestTimeline, running_at

WARM_UP_SHARE = 1.0 / 3.0
"""Share of a level's time left out of its throughput (the batch fills)."""
FLAT_GROWTH = 0.05
"""Throughput growth below which the top of a sweep is flat."""
WAITING_SHARE = 0.9
"""A batch below this share of the clients means requests waited for a seat."""


@dataclass(frozen=True, slots=True)
class Level:
    """What the sweep ran: ``concurrency`` clients of one shape from ``start_s`` to ``end_s``."""

    index: int
    concurrency: int
    in_tokens: int
    out_tokens: int
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class LevelResult:
    level: Level
    requests: int
    throughput_rps: float
    ttft_ms: float
    itl_ms: float
    batch: float
    in_tokens: float
    """Mean prompt tokens as the server counted them."""


@dataclass(frozen=True, slots=True)
class Saturation:
    in_tokens: int
    out_tokens: int
    saturated: bool
    rate_rps: float
    batch: int
    reason: str
    top_level: int
    """Index of the shape's level with the most clients."""


def summarize(timelines: Sequence[RequestTimeline], levels: Sequence[Level]) -> list[LevelResult]:
    """One result per level (NaN latencies when none of its requests streamed)."""
    times = np.sort(np.concatenate([np.asarray(r.token_s) for r in timelines if r.token_s] or [np.zeros(0)]))
    results = []
    for lv in levels:
        mine = [r for r in timelines if r.level == lv.index and r.token_s]
        t0 = lv.start_s + WARM_UP_SHARE * (lv.end_s - lv.start_s)
        span = max(lv.end_s - t0, 1e-9)
        lo, hi = np.searchsorted(times, [t0, lv.end_s])
        throughput = float(hi - lo) / span / max(lv.out_tokens, 1)
        ttft = [(r.token_s[0] - r.sent_s) * 1000.0 for r in mine]
        itl = [(r.token_s[-1] - r.token_s[0]) * 1000.0 / (r.out_tokens - 1) for r in mine if r.out_tokens > 1]
        window = times[lo:hi]
        batch = float(np.quantile(running_at(timelines, window), 0.95)) if window.size else 0.0
        results.append(
            LevelResult(
                lv,
                len(mine),
                throughput,
                float(np.mean(ttft)) if ttft else float("nan"),
                float(np.mean(itl)) if itl else float("nan"),
                batch,
                float(np.mean([r.in_tokens for r in mine])) if mine else float(lv.in_tokens),
            )
        )
    return results


def saturation(results: Sequence[LevelResult]) -> list[Saturation]:
    """Per request shape, whether its levels reached saturation (module docstring)."""
    shapes: dict[tuple[int, int], list[LevelResult]] = {}
    for r in results:
        shapes.setdefault((r.level.in_tokens, r.level.out_tokens), []).append(r)
    out = []
    for (in_tokens, out_tokens), group in shapes.items():
        rows = sorted(group, key=lambda r: r.level.concurrency)
        best = max(rows, key=lambda r: r.throughput_rps)
        batch = round(max(r.batch for r in rows))
        top = rows[-1]
        if len(rows) < 2:
            out.append(
                Saturation(
                    in_tokens,
                    out_tokens,
                    False,
                    best.throughput_rps,
                    batch,
                    "one level only",
                    top.level.index,
                )
            )
            continue
        below = rows[-2]
        growth = top.throughput_rps / below.throughput_rps - 1.0 if below.throughput_rps > 0 else float("inf")
        waited = top.batch < WAITING_SHARE * top.level.concurrency
        if waited and growth < FLAT_GROWTH:
            reason = (
                f"saturated: {top.level.concurrency} clients ran a batch of {top.batch:.0f} and "
                f"{top.throughput_rps:.3g} req/s ({growth:+.1%} over {below.level.concurrency} clients)"
            )
            plateau = (top.throughput_rps + below.throughput_rps) / 2.0
            out.append(Saturation(in_tokens, out_tokens, True, plateau, batch, reason, top.level.index))
            continue
        why = []
        if not waited:
            why.append(f"all {top.level.concurrency} clients were served at once (batch {top.batch:.0f})")
        if growth >= FLAT_GROWTH:
            why.append(f"throughput still grew {growth:+.0%} from {below.level.concurrency} clients")
        reason = f"not saturated at {top.level.concurrency} clients: " + "; ".join(why)
        out.append(
            Saturation(in_tokens, out_tokens, False, best.throughput_rps, batch, reason, top.level.index)
        )
    return out
