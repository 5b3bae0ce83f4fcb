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

Root find: on ``h = log(max_k value_k / target_k)`` (> 0 when a target is violated) over
``[0.001 mu_1, u mu_N]`` (u = 0.999, or the cap), for all rows at once, with Chandrupatla's
bracketing method in the logit of the load (see :func:`_chandrupatla`). A target violated at the
bottom of the range makes the accelerator infeasible, with a reason naming the target and its
value. The result is always a feasible rate, within a relative 1e-6 of the boundary.

Example: granite_13b on A100 (decode-only, alpha 20.58, beta 0.41 ms), 1024 output tokens, N = 16,
ITL target 24 ms: ITL = S/1024 reaches 24 ms at lambda = 0.2990 req/s per replica, 52 % of the
saturation rate mu_16 = 0.5757 req/s ("limited by ITL"); a server with 1.5 req/s needs 6 replicas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from contract.data.workload import ModelTarget
from optimizer.model.latency import RowSet, evaluate, row_set
from optimizer.model.service_time import ServiceModel
from optimizer.model.states import FloatArray, IntArray
from optimizer.model.tail import wait_exceeds_prob, wait_quantile_ms

LOWEST_SHARE = 0.001
HIGHEST_SHARE = 0.999
RATE_TOLERANCE = 1e-6
"""The root find stops when the bracket is this narrow in log rate (a relative 1e-6 in rate)."""
_MAX_STEPS = 100
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
    kv_tokens: float = 0.0
    """The replica's KV cache in tokens (0: unknown, no limit): caps the chain's batch."""


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


def size_rates(requests: Sequence[SizingRequest]) -> list[SizingResult]:
    """Size every request; equal requests share one computation."""
    # Callers pass the same objects many times: dedupe by identity first (cheap), then by value.
    distinct = list({id(r): r for r in requests}.values())
    unique = list(dict.fromkeys(distinct))
    solved = dict(zip(unique, _size_all(unique), strict=True)) if unique else {}
    by_id = {id(r): solved[r] for r in distinct}
    return [by_id[id(r)] for r in requests]


class _Limits:
    """Per-row target arrays (inf where a target is not set)."""

    names = ("ITL", "TTFT", "TTFT percentile", "TTW")

    def __init__(self, requests: Sequence[SizingRequest]) -> None:
        def arr(values: list[float]) -> FloatArray:
            return np.array(values, dtype=np.float64)

        t = [r.targets for r in requests]
        self.itl = arr([x.itl_ms if x.itl_ms > 0 else math.inf for x in t])
        self.percentile = arr([x.ttft_percentile if x.ttft_ms > 0 else 0.0 for x in t])
        self.ttft = arr([x.ttft_ms if x.ttft_ms > 0 else math.inf for x in t])
        self.wait = arr([x.ttw_ms / _LN20 if x.ttw_ms > 0 else math.inf for x in t])

    def excess(
        self, rows: RowSet, index: IntArray, log_rate: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        """``h = log(max_k value_k/target_k)`` per row (floored at log 1e-12) and the rows x 4
        violated flags (ITL, mean TTFT, TTFT percentile, TTW); ``index`` maps rows to targets."""
        lat = evaluate(rows, log_rate)
        pct = self.percentile[index]
        ratio = np.zeros((rows.size, 4))
        ratio[:, 0] = lat.itl_ms / self.itl[index]
        ratio[:, 1] = np.where(pct == 0, lat.ttft_ms / self.ttft[index], 0.0)
        ratio[:, 3] = lat.state.wait_ms / self.wait[index]
        tail = np.flatnonzero(pct > 0)
        if tail.size:
            budget = self.ttft[index[tail]] - lat.prefill_ms[tail]
            prob = wait_exceeds_prob(
                lat.state.take(tail), rows.queue.log_wait_rate[tail], lat.state.room[tail], budget
            )
            ratio[tail, 2] = prob / (1.0 - pct[tail] / 100.0)
        return np.log(np.maximum(ratio.max(axis=1), 1e-12)), ratio > 1.0

    def explain(self, rows: RowSet, index: IntArray, log_rate: FloatArray) -> list[str]:
        """Why each row of ``index`` fails at ``log_rate``: each violated target with its value."""
        sub = rows.take(index)
        lat = evaluate(sub, log_rate)
        pct = self.percentile[index]
        wait = wait_quantile_ms(lat.state, sub.queue.log_wait_rate, lat.state.room, 1.0 - pct / 100.0)
        reasons = []
        for k, i in enumerate(index.tolist()):
            parts = []
            if lat.itl_ms[k] > self.itl[i]:
                parts.append(f"ITL {lat.itl_ms[k]:.2f} ms > target {self.itl[i]:g} ms")
            quantile = float(wait[k] + lat.prefill_ms[k])
            if pct[k] > 0 and quantile > self.ttft[i]:
                parts.append(f"TTFT p{pct[k]:g} {quantile:.1f} ms > target {self.ttft[i]:g} ms")
            elif pct[k] == 0 and lat.ttft_ms[k] > self.ttft[i]:
                parts.append(f"TTFT {lat.ttft_ms[k]:.1f} ms > target {self.ttft[i]:g} ms")
            if lat.state.wait_ms[k] > self.wait[i]:
                parts.append(f"wait {lat.state.wait_ms[k]:.1f} ms > TTW/ln20 {self.wait[i]:.1f} ms")
            reasons.append("; ".join(parts or ["a target is missed"]) + " even at minimal load")
        return reasons


def _size_all(requests: Sequence[SizingRequest]) -> list[SizingResult]:
    rows = row_set(
        [r.service for r in requests],
        [r.batch for r in requests],
        [r.room for r in requests],
        [r.kv_tokens for r in requests],
    )
    limits = _Limits(requests)
    every = np.arange(rows.size)
    share = np.array([r.targets.upper_share(r.rate_cap) for r in requests])
    log_lo = math.log(LOWEST_SHARE) + rows.queue.log_mu_one
    log_hi = np.maximum(np.log(share) + rows.queue.log_mu_top, log_lo)  # a tiny cap: the bottom
    h_lo, _ = limits.excess(rows, every, log_lo)
    h_hi, binding = limits.excess(rows, every, log_hi)
    active = np.flatnonzero((h_lo <= 0) & (h_hi > 0))
    log_rate = log_hi.copy()
    if active.size:
        top = rows.queue.log_mu_top[active]
        found, bad = _chandrupatla(
            limits,
            rows.take(active),
            active,
            (_load_logit(log_lo[active] - top), h_lo[active]),
            (_load_logit(log_hi[active] - top), h_hi[active], binding[active]),
        )
        log_rate[active] = _log_rate(found, top)
        binding[active] = bad
    failed = np.flatnonzero(h_lo > 0)
    why = dict(zip(failed.tolist(), limits.explain(rows, failed, log_lo[failed]), strict=True))
    # One label per distinct combination of binding targets (16 at most), not per row.
    codes = binding @ (1 << np.arange(4))
    labels = {c: ", ".join(n for b, n in enumerate(_Limits.names) if c >> b & 1) for c in set(codes.tolist())}
    saturations = np.exp(rows.queue.log_mu_top).tolist()
    rates = np.exp(log_rate).tolist()
    results = []
    for i, (code, rate, saturation) in enumerate(zip(codes.tolist(), rates, saturations, strict=True)):
        if i in why:
            results.append(SizingResult(0.0, saturation, "infeasible", why[i]))
            continue
        if not (saturation > 0 and math.isfinite(saturation) and math.isfinite(rate)):
            # Timings so large (or small) that exp() leaves float range: no usable throughput.
            reason = f"no usable throughput: saturation {saturation:.3g} req/s from the perf data's timings"
            results.append(SizingResult(0.0, 0.0, "infeasible", reason))
            continue
        unbound = "saturation" if share[i] >= HIGHEST_SHARE else "throughput cap"
        limit = labels[code] or unbound
        share_used = rate / saturation
        reason = f"max {rate:.4g} req/s per replica ({share_used:.0%} of saturation), limited by {limit}"
        results.append(SizingResult(rate, saturation, limit, reason))
    return results


def _load_logit(log_load: FloatArray) -> FloatArray:
    """``v = log(rho / (1 - rho))`` for ``log rho = log(lambda / mu_N) < 0``."""
    return np.asarray(log_load - np.log(-np.expm1(log_load)), dtype=np.float64)


def _log_rate(logit: FloatArray, log_mu_top: FloatArray) -> FloatArray:
    """Inverse of :func:`_load_logit`: ``log lambda = log mu_N - log(1 + e^-v)``."""
    return np.asarray(log_mu_top - np.logaddexp(0.0, -logit), dtype=np.float64)


def _chandrupatla(
    limits: _Limits,
    rows: RowSet,
    index: IntArray,
    low: tuple[FloatArray, FloatArray],
    high: tuple[FloatArray, FloatArray, NDArray[np.bool_]],
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Largest feasible load logit v per row, given h(low) <= 0 < h(high); also the flags at the
    infeasible end (what binds).

    Chandrupatla's bracketing method: each step tries inverse quadratic interpolation through
    the bracket ends and the last dropped point when that is well conditioned, bisection
    otherwise, keeping a bracket [x1, x2] (x1 the newest point) with one feasible end. The
    variable is the logit of the load rho = lambda/mu_N: near zero it is log(rho), near
    saturation -log(1 - rho), where the wait grows like 1/(1 - rho), so log latencies are close
    to linear in it at both ends. A step dv moves the rate by a relative ``(1 - rho) dv``, so the
    tolerance on v bounds the rate's too. Typically 8-12 evaluations per row.
    """
    x1, f1 = low[0].copy(), low[1].copy()
    x2, f2, bad2 = high[0].copy(), high[1].copy(), high[2].copy()
    ok1 = np.ones(x1.size, dtype=np.bool_)
    bad1 = np.zeros_like(bad2)
    x3, f3 = x2.copy(), f2.copy()
    t = np.full(x1.size, 0.5)
    live = np.arange(x1.size)
    for _ in range(_MAX_STEPS):
        if not live.size:
            break
        i = live
        xt = x1[i] + t[i] * (x2[i] - x1[i])
        sub = rows.take(i)
        ft, bad_t = limits.excess(sub, index[i], _log_rate(xt, sub.queue.log_mu_top))
        ok_t = ft <= 0
        same = ok_t == ok1[i]
        # Same side as x1: x1 is dropped. Otherwise x2 is dropped and x1 becomes the far end.
        x3[i] = np.where(same, x1[i], x2[i])
        f3[i] = np.where(same, f1[i], f2[i])
        moved = i[~same]
        x2[moved], f2[moved], bad2[moved] = x1[moved], f1[moved], bad1[moved]
        x1[i], f1[i], ok1[i], bad1[i] = xt, ft, ok_t, bad_t
        width = np.abs(x2[i] - x1[i])
        limit = RATE_TOLERANCE / np.maximum(width, 1e-300)
        xi = (x1[i] - x2[i]) / (x3[i] - x2[i])
        phi = (f1[i] - f2[i]) / (f3[i] - f2[i])
        quadratic = (phi * phi < xi) & ((1.0 - phi) ** 2 < 1.0 - xi)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_iqi = f1[i] / (f2[i] - f1[i]) * f3[i] / (f2[i] - f3[i]) + (x3[i] - x1[i]) / (
                x2[i] - x1[i]
            ) * f1[i] / (f3[i] - f1[i]) * f2[i] / (f3[i] - f2[i])
        t[i] = np.clip(np.where(quadratic, t_iqi, 0.5), limit, 1.0 - limit)
        live = i[limit <= 0.5]
    feasible_end = np.where(ok1, x1, x2)
    infeasible_flags = np.where(ok1[:, None], bad2, bad1)
    return feasible_end, infeasible_flags
