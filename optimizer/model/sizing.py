"""Largest per-replica arrival rate that meets every target of a class for a model.

Role: the core of candidate building. Caller: :mod:`optimizer.candidates` (and
:mod:`optimizer.model.batch` for the optimal-batch search), with one :class:`SizingRequest` per
(server, accelerator); equal requests are sized once, so the work scales with distinct
(service model, batch, targets) keys, not with servers.

Targets (0 = not considered), each a bound that tightens as the rate lambda grows:
- ``slo-itl``: mean ITL <= target.
- ``slo-ttft``: mean TTFT <= target; with ``slo-ttft-percentile`` q > 0 instead
  ``P(wait > target - prefill) <= 1 - q/100`` (exact Erlang tail, :mod:`optimizer.model.tail`).
- ``slo-ttw`` (older files): the wait read as exponential with the target as its p95, so mean
  ``W <= ttw / ln 20``.
- ``slo-tps``: no latency bound; the server's demand becomes tps/out req/s (the caller's job) and
  the rate is capped at ``throughput_rate_cap * mu_N``. The same cap applies when a class sets no
  target at all, so a server without targets still runs below saturation (default 90 %).

Root find: bisection in log-rate space on ``[0.001 mu_1, u mu_N]`` (u = 0.999, or the cap), on
all rows of a chunk at once. A target violated at the bottom of the range makes the accelerator
infeasible, with a reason naming the target and the value. Accuracy: the result is feasible and
within a relative 1e-6 of the boundary.

Example: granite_13b on A100 (decode-only, alpha 20.58, beta 0.41 ms), 1024 output tokens, N = 16,
ITL target 24 ms: ITL = S/1024 reaches 24 ms near lambda = 0.37 req/s, well below mu_16 = 0.576.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optimizer.data.workload import ModelTarget
from optimizer.model.latency import (
    DEFAULT_CHUNK_ELEMENTS,
    RowSet,
    chunks_by_batch,
     evaluate,
    row_set,
    take,
)
from optimizer.model.queue import FloatArray, IntArray
from optimizer.model.service_time import ServiceModel
from optimizer.model.tail import wait_exceeds_prob, wait_quantile_ms

LOWEST_SHARE = 0.001
HIGHEST_SHARE = 0.999
RATE_TOLERANCE = 1e-6
"""Bisection stops when the bracket is this narrow, relative, in rate."""
_LN20 = math.log(20.0)


@dataclass(frozen=True, slots=True)
class Targets:
    """One class's targets for one model. Times in ms, throughput in tokens/s; 0 = not set."""

    itl_ms: float = 0.0
    ttft_ms: float = 0.0
    ttft_percentile: float = 0.0
    ttw_ms: float = 0.0
    tps: float = 0.0

    @classmethod
    def of(cls, target: ModelTarget | None) -> Targets:
        if target is None:
            return cls()
        return cls(
            target.slo_itl_ms, target.slo_ttft_ms, target.ttft_percentile, target.slo_ttw_ms, target.slo_tps
        )

    @property
    def has_latency(self) -> bool:
        return self.itl_ms > 0 or self.ttft_ms > 0 or self.ttw_ms > 0

    def upper_share(self, rate_cap: float) -> float:
        """Share of mu_N the root find may reach: the cap for throughput-only or target-less classes."""
        if self.tps > 0 or not self.has_latency:
            return min(rate_cap, HIGHEST_SHARE)
        return HIGHEST_SHARE


@dataclass(frozen=True, slots=True)
class SizingRequest:
    service: ServiceModel
    batch: int
    room: int
    targets: Targets
    rate_cap: float = 0.9


@dataclass(frozen=True, slots=True)
class SizingResult:
    max_rate_rps: float
    """0 when infeasible."""
    saturation_rps: float
    """mu_N, the completion rate with the batch full."""
    limit: str
    """What bounds the rate: a target name, 'throughput cap', 'saturation', or 'infeasible'."""
    reason: str

    @property
    def feasible(self) -> bool:
        return self.max_rate_rps > 0


def size_rates(
    requests: Sequence[SizingRequest], chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
) -> list[SizingResult]:
    """Size every request; equal requests share one computation. Rows are sorted by batch and
    chunked so padding stays small and memory is bounded."""
    unique = list(dict.fromkeys(requests))
    solved: dict[SizingRequest, SizingResult] = {}
    for group in chunks_by_batch([r.batch for r in unique], chunk_elements):
        chunk = [unique[i] for i in group]
        solved.update(zip(chunk, _size_chunk(chunk), strict=True))
    return [solved[r] for r in requests]


class _Limits:
    """Per-row target arrays (inf or 0 where a target is not set)."""

    names = ("ITL", "TTFT", "TTFT percentile", "TTW")

    def __init__(self, requests: Sequence[SizingRequest]) -> None:
        def arr(values: list[float]) -> FloatArray:
            return np.array(values, dtype=np.float64)

        t = [r.targets for r in requests]
        self.itl = arr([x.itl_ms if x.itl_ms > 0 else math.inf for x in t])
        self.percentile = arr([x.ttft_percentile if x.ttft_ms > 0 else 0.0 for x in t])
        self.ttft = arr([x.ttft_ms if x.ttft_ms > 0 else math.inf for x in t])
        self.wait = arr([x.ttw_ms / _LN20 if x.ttw_ms > 0 else math.inf for x in t])

    def violations(
        self, rows: RowSet, index: IntArray | None, log_rate: FloatArray
    ) -> NDArray[np.bool_]:
        """rows x 4 booleans: (ITL, mean TTFT, TTFT percentile, TTW) violated at the rate."""
        sel = slice(None) if index is None else index
        lat = evaluate(rows, log_rate)
        pct = self.percentile[sel]
        out = np.zeros((rows.size, 4), dtype=bool)
        out[:, 0] = lat.itl_ms > self.itl[sel]
        out[:, 1] = (pct == 0) & (lat.ttft_ms > self.ttft[sel])
        out[:, 3] = lat.state.wait_ms > self.wait[sel]
        tail = np.flatnonzero(pct > 0)
        if tail.size:
            state = type(lat.state)(*(a[tail] for a in lat.state))
            budget = self.ttft[sel][tail] - lat.prefill_ms[tail]
            prob = wait_exceeds_prob(state, rows.log_mu_top[tail], rows.queue.room[tail], budget)
            out[tail, 2] = prob > 1.0 - pct[tail] / 100.0
        return out

    def explain(self, rows: RowSet, i: int, log_rate: float) -> str:
        """Why row i fails at the bottom of the range: each violated target with its value."""
        one = take(rows, np.array([i]))
        lat = evaluate(one, np.array([log_rate]))
        parts = []
        if lat.itl_ms[0] > self.itl[i]:
            parts.append(f"ITL {lat.itl_ms[0]:.2f} ms > target {self.itl[i]:g} ms")
        if self.percentile[i] > 0:
            q = self.percentile[i]
            wait = wait_quantile_ms(lat.state, one.log_mu_top, one.queue.room, np.array([1 - q / 100]))
            value = float(wait[0] + lat.prefill_ms[0])
            if value > self.ttft[i]:
                parts.append(f"TTFT p{q:g} {value:.1f} ms > target {self.ttft[i]:g} ms")
        elif lat.ttft_ms[0] > self.ttft[i]:
            parts.append(f"TTFT {lat.ttft_ms[0]:.1f} ms > target {self.ttft[i]:g} ms")
        if lat.state.wait_ms[0] > self.wait[i]:
            parts.append(f"wait {lat.state.wait_ms[0]:.1f} ms > TTW/ln20 {self.wait[i]:.1f} ms")
        return "; ".join(parts) + " even at minimal load"


def _size_chunk(requests: Sequence[SizingRequest]) -> list[SizingResult]:
    rows = row_set([r.service for r in requests], [r.batch for r in requests], [r.room for r in requests])
    limits = _Limits(requests)
    share = np.array([r.targets.upper_share(r.rate_cap) for r in requests])
    log_lo = math.log(LOWEST_SHARE) + rows.log_mu_one
    log_hi = np.log(share) + rows.log_mu_top
    bad_lo: NDArray[np.bool_] = limits.violations(rows, None, log_lo).any(axis=1)
    bad_at_hi = limits.violations(rows, None, log_hi)
    active = np.flatnonzero(~bad_lo & bad_at_hi.any(axis=1))
    log_rate = np.where(bad_lo, -np.inf, log_hi)
    binding = bad_at_hi.copy()
    if active.size:
        sub = take(rows, active)
        lo, hi, hi_bad = log_lo[active], log_hi[active], bad_at_hi[active]
        steps = math.ceil(math.log2(max(float((hi - lo).max()), RATE_TOLERANCE) / RATE_TOLERANCE))
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            bad = limits.violations(sub, active, mid)
            failed: NDArray[np.bool_] = bad.any(axis=1)
            lo = np.where(failed, lo, mid)
            hi = np.where(failed, mid, hi)
            hi_bad = np.where(failed[:, None], bad, hi_bad)
        log_rate[active] = lo
        binding[active] = hi_bad
    results = []
    for i in range(len(requests)):
        saturation = float(np.exp(rows.log_mu_top[i]))
        if bad_lo[i]:
            reason = limits.explain(rows, i, float(log_lo[i]))
            results.append(SizingResult(0.0, saturation, "infeasible", reason))
            continue
        rate = float(np.exp(log_rate[i]))
        names = [n for n, hit in zip(_Limits.names, binding[i], strict=True) if hit]
        unbound = "saturation" if share[i] >= HIGHEST_SHARE else "throughput cap"
        limit = ", ".join(names) if names else unbound
        share_used = rate / saturation
        reason = f"max {rate:.4g} req/s per replica ({share_used:.0%} of saturation), limited by {limit}"
        results.append(SizingResult(rate, saturation, limit, reason))
    return results
