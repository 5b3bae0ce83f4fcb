"""Birth-death queue of one replica, evaluated for many (replica, arrival rate) rows at once.

Role: the steady state behind every latency prediction. Callers: :mod:`optimizer.model.latency`
(sizing and prediction) and :mod:`optimizer.model.tail` (percentile waits).

Model: state n = requests in the replica, n = 0..K with ``K = N + Q`` (N the batch size, Q the
queue room). With ``S(n) = base + slope*n`` ms the completion rate is ``mu_n = 1000*n/S(n)`` req/s
for n <= N and ``mu_N`` above. Prefill-first engines (rows with stall terms) stall the whole
batch during each prefill: for n <= N the arrivals are prefilled at once, so the decode part of
S(n) stretches by ``1/(1 - lambda*f)`` (:func:`head_line`, f at the load's own batch:
:func:`stall_share`) for n < N; in state N (full, nobody
waiting) nothing is prefilled, so it completes at the unstretched ``1000*N/S(N)``; above N a
prefill follows each completion, so ``mu_N = 1000*N/(S(N) + (N-1)*f(N))`` (the saturation rate
used above N; without stalls ``1000*N/S(N)``); ``p_n = p_{n-1} * lambda / mu_n``, normalised. Outputs:
``X = lambda*(1 - p_K)``, ``L = sum n p_n``, ``Ls = E[min(n, N)]``, mean service ``S = Ls/X``,
mean wait ``W = c*(L - Ls)/X`` (with c = 1 this equals ``max(T - S, 0)``, ``T = L/X``),
utilisation Ls/N. The chain's service is exponential; ``c`` (``wait_scale``) corrects its queue
for service that varies less or more: ``(1 + cv^2)/2`` of the service time (Allen-Cunneen for
Poisson arrivals), 1/2 for fixed lengths, 1 by default; with it the mean TTFT at 80-90 % of
saturation is within ~20 % of the emulated chunked engine's for fixed and Azure-trace lengths
(``benchmarks/model_vs_engine.py``), where c = 1 overstates it by 30-90 % for fixed ones.

Open queue below saturation (rows built with ``open_queue``, i.e. every row of
:func:`optimizer.model.latency.row_set`): vLLM queues without bound, so a finite Q would drop
arrivals the server actually queues and cut the wait short. With N = 1, Q = 10 at 90 % load the
chain blocks 4.4 % of arrivals and its mean TTFT is 55 % below an unbounded queue's (and the
emulator's): an optimistic TTFT, the dangerous direction for sizing. So below saturation such rows
use ``Q' = max(Q, ceil(ln(1e-9) / ln r))`` (:func:`effective_room`): the geometric tail beyond Q'
holds under 1e-9 of the mass, so this is the unbounded queue to ~1e-9, at the same O(1) cost. At
or above saturation an unbounded queue has no steady state and Q stands in (overload only).

Numerics: everything is in log space and O(1) per row in the sizing range. The states n <= N
are summed by :mod:`optimizer.model.states` (negative-binomial / Poisson closed forms, or a
direct log-sum-exp of cumulative sums above saturation). Above N the chain is geometric with ratio
``r = lambda/mu_N``, so the Q+1 tail states are summed in closed form too (stable ``expm1`` forms,
a Taylor series near r = 1). Nothing overflows, even far above saturation.

Worked example (N = 2, Q = 1, K = 3; S(n) = 1000 + 1000*n ms so mu_1 = 0.5, mu_2 = 2/3 req/s;
lambda = 0.5 req/s): unnormalised p = (1, 1, 0.75, 0.5625), sum 3.3125, so
p = (0.30189, 0.30189, 0.22642, 0.16981); X = 0.5*(1 - 0.16981) = 0.41509 req/s;
L = 1.26415, Ls = 1.09434, S = 2636.4 ms, W = 409.1 ms, utilisation 0.54717.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from optimizer.model.states import FloatArray, IntArray, closed_form_ok, head_sums

NEGLIGIBLE_BLOCKING = 1e-9
"""Below saturation an open queue's room leaves at most this share of the chain beyond it."""
MAX_OPEN_ROOM = 1_000_000
"""Bound on that room (reached only within 2e-5 of saturation, where the wait is ~5e4 services)."""
_FLUID_ROUNDS = 3
"""Fixed-point rounds of the stalling prefill's batch (:func:`head_line`)."""
_MAX_STALL_SHARE = 0.99
_TAYLOR_BELOW = 1e-3
"""Use the series for the geometric tail mean when ``|log r| * (Q+1)`` is below this."""


class QueueRows(NamedTuple):
    """Per-row constants of the chain (independent of the arrival rate)."""

    base_ms: FloatArray
    slope_ms: FloatArray
    batch: IntArray
    room: IntArray
    log_mu_one: FloatArray
    """``log mu_1`` (req/s): the rate of a replica serving one request alone."""
    log_mu_top: FloatArray
    """``log mu_N`` (req/s): the saturation rate (the completion rate with a queue)."""
    stretch_base_ms: FloatArray
    stretch_slope_ms: FloatArray
    """The part of ``S(n)`` that batch-stalling prefills stretch (zeros: no stalls)."""
    stall_ms: FloatArray
    """One batch-stalling prefill iteration at a middling batch, ``f((N+1)/2)`` (0: no stalls)."""
    stall_base_ms: FloatArray
    stall_slope_ms: FloatArray
    """``f(n) = stall_base + stall_slope*n`` (zeros: no stalls)."""
    open_queue: NDArray[np.bool_]
    """True: the queue is unbounded below saturation (:func:`effective_room`); Q holds above."""
    wait_scale: FloatArray
    """The queueing wait relative to the chain's exponential service (1: as the chain has it)."""

    @property
    def log_wait_rate(self) -> FloatArray:
        """``log(mu_N / wait_scale)``: the rate at which the queue ahead of a waiting request
        drains, read by the wait tail (:mod:`optimizer.model.tail`)."""
        return np.asarray(self.log_mu_top - np.log(self.wait_scale), dtype=np.float64)

    def take(self, index: IntArray) -> QueueRows:
        return QueueRows(
            self.base_ms[index],
            self.slope_ms[index],
            self.batch[index],
            self.room[index],
            self.log_mu_one[index],
            self.log_mu_top[index],
            self.stretch_base_ms[index],
            self.stretch_slope_ms[index],
            self.stall_ms[index],
            self.stall_base_ms[index],
            self.stall_slope_ms[index],
            self.open_queue[index],
            self.wait_scale[index],
        )


class QueueState(NamedTuple):
    """Steady state per row. Rates in req/s, times in ms."""

    throughput_rps: FloatArray
    in_system: FloatArray
    busy: FloatArray
    service_ms: FloatArray
    wait_ms: FloatArray
    utilization: FloatArray
    block_prob: FloatArray
    log_top_prob: FloatArray
    """``log p_N``: the first state where arrivals wait, used by the wait tail."""
    log_admit_prob: FloatArray
    """``log(1 - p_K)``: the share of arrivals admitted."""
    log_ratio: FloatArray
    """``log(lambda / mu_N)``."""
    head_base_ms: FloatArray
    head_slope_ms: FloatArray
    """The (stretched) line ``S'(n)`` of the states n <= N at this rate."""
    idle_prob: FloatArray
    """``p_0``: the share of time the replica is empty."""
    room: IntArray
    """The queue room used at this rate (:func:`effective_room`), for the wait tail."""

    def take(self, index: IntArray) -> QueueState:
        return QueueState._make(a[index] for a in self)


def queue_rows(
    base_ms: FloatArray,
    slope_ms: FloatArray,
    batch: IntArray,
    room: IntArray,
    *,
    stretch: tuple[FloatArray, FloatArray] | None = None,
    stall: tuple[FloatArray, FloatArray] | None = None,
    open_queue: bool = False,
    wait_scale: FloatArray | None = None,
) -> QueueRows:
    """Rows with ``S(n) = base_ms + slope_ms*n`` (ms), batch N >= 1 and queue room Q >= 0.

    ``stretch`` (base, slope) and ``stall`` (base, slope of ``f(n)``) describe batch-stalling
    prefills (prefill-first engines); see the module docstring. None: no stalls. ``open_queue``:
    Q applies only at or above saturation (:func:`effective_room`); False: always (a finite chain).
    ``wait_scale`` multiplies the mean queueing wait (service less variable than exponential:
    below 1); None: ones."""
    n = batch.astype(np.float64)
    zeros = np.zeros_like(base_ms)
    stretch_base, stretch_slope = stretch if stretch is not None else (zeros, zeros)
    stall_base, stall_slope = stall if stall is not None else (zeros, zeros)
    log_mu_one = np.log(1000.0) - np.log(base_ms + slope_ms)
    saturated_ms = base_ms + slope_ms * n + (n - 1.0) * (stall_base + stall_slope * n)
    log_mu_top = np.log(1000.0 * n) - np.log(saturated_ms)
    stall_mid = stall_base + stall_slope * (n + 1.0) / 2.0
    opened = np.full(batch.shape, open_queue, dtype=np.bool_)
    scale = wait_scale if wait_scale is not None else np.ones_like(base_ms)
    return QueueRows(
        base_ms,
        slope_ms,
        batch,
        room,
        log_mu_one,
        log_mu_top,
        stretch_base,
        stretch_slope,
        stall_mid,
        stall_base,
        stall_slope,
        opened,
        scale,
    )


def effective_room(room: IntArray, log_ratio: FloatArray, open_queue: NDArray[np.bool_]) -> IntArray:
    """Queue room at ``r = lambda/mu_N = exp(log_ratio)``: for open rows below saturation
    ``max(Q, min(ceil(ln(1e-9) / ln r), 1e6))``, so ``r^Q' <= 1e-9`` (the chain beyond is
    negligible); Q otherwise. Example: Q = 10, r = 0.9: Q' = 197 (0.9^10 = 0.35 would cut the
    tail at a third of its weight); r = 0.5: Q' = 30."""
    below = open_queue & (log_ratio < 0.0)
    safe = np.where(below, log_ratio, -1.0)
    need = np.minimum(np.ceil(np.log(NEGLIGIBLE_BLOCKING) / safe), MAX_OPEN_ROOM).astype(np.int64)
    return np.where(below, np.maximum(room, need), room)


def stall_share(rows: QueueRows, rate_rps: FloatArray) -> FloatArray:
    """Share of time in batch-stalling prefills, ``s = lambda * f(n + 2) / 1000``, n the fluid
    number in service on the stretched line, ``n = lambda*S'(0) / (1000 - lambda*S'_slope)``
    (clipped to N), solved by fixed-point rounds from s = 0. The prefill runs with the arrival
    itself in the batch and, weighted by the decodes it stalls, with one more (Poisson-like
    spread of n): hence n + 2. At most 0.99. Zeros on rows without stalls. Example (granite_13b on
    A100, prefill+decode, in 128, out 1024, N 16, lambda 0.4 req/s): n = 11.20, f(13.20) = 186.29 ms,
    s = 0.07452."""
    base, slope = rows.base_ms, rows.slope_ms
    share = np.zeros_like(rate_rps)
    for _ in range(_FLUID_ROUNDS):
        room = 1000.0 - rate_rps * slope
        n = np.where(room > 0, rate_rps * base / np.where(room > 0, room, 1.0), rows.batch)
        stall = rows.stall_base_ms + rows.stall_slope_ms * np.clip(n + 2.0, 1.0, rows.batch)
        share = np.minimum(rate_rps * stall / 1000.0, _MAX_STALL_SHARE)
        extra = share / (1.0 - share)
        base = rows.base_ms + rows.stretch_base_ms * extra
        slope = rows.slope_ms + rows.stretch_slope_ms * extra
    return share


def head_line(rows: QueueRows, log_rate: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The line of the states n <= N at this rate: the stretchable part of S(n) times
    ``1/(1 - s)``, s the share of time in prefills at ``min(lambda, mu_N)`` (:func:`stall_share`).
    Example: S(n) = 21217.98 + 421.07 n with stretch 21053.34 + 419.43 n, s = 0.07452 (lambda =
    0.4 req/s): S'(n) = 22913.1 + 454.8 n."""
    rate = np.minimum(np.exp(log_rate), np.exp(rows.log_mu_top))
    extra = stall_share(rows, rate)
    extra = extra / (1.0 - extra)
    return rows.base_ms + rows.stretch_base_ms * extra, rows.slope_ms + rows.stretch_slope_ms * extra


def log_geometric_sum(log_ratio: FloatArray, terms: IntArray) -> FloatArray:
    """``log sum_{j=0}^{m-1} r^j`` for ``x = log r`` and m terms (m >= 1), stable for any x.

    x < 0: ``log((1 - r^m)/(1 - r))``; x > 0: ``(m-1)x + log((1 - r^-m)/(1 - r^-1))``; x = 0: log m.
    """
    x = log_ratio
    m = terms.astype(np.float64)
    neg_x = np.where(x < 0.0, x, -1.0)
    pos_x = np.where(x > 0.0, x, 1.0)
    neg = np.log(-np.expm1(m * neg_x)) - np.log(-np.expm1(neg_x))
    pos = (m - 1.0) * pos_x + np.log(-np.expm1(-m * pos_x)) - np.log(-np.expm1(-pos_x))
    return np.where(x < 0.0, neg, np.where(x > 0.0, pos, np.log(m)))


def geometric_mean_index(log_ratio: FloatArray, room: IntArray) -> FloatArray:
    """Mean of j in 0..Q with weights ``r^j``: ``m/(1 - r^-m) - 1/(1 - r^-1)``, m = Q+1.

    Near r = 1 the two terms cancel, so there the series ``Q/2 + x*Q*(Q+2)/12`` is used (the
    uniform mean plus the first-order tilt; its error is O(x^3 Q^4)).
    """
    x = log_ratio
    q = room.astype(np.float64)
    m = q + 1.0
    small = np.abs(x) * m < _TAYLOR_BELOW
    safe = np.where(small, 1.0, x)
    with np.errstate(over="ignore", divide="ignore"):
        exact = m / -np.expm1(-m * safe) - 1.0 / -np.expm1(-safe)
    return np.where(small, q / 2.0 + x * q * (q + 2.0) / 12.0, exact)


def queue_state(rows: QueueRows, log_rate: FloatArray) -> QueueState:
    """Steady state of every row at arrival rate ``exp(log_rate)`` req/s (one rate per row)."""
    batch = rows.batch
    x = log_rate - rows.log_mu_top
    room = effective_room(rows.room, x, rows.open_queue)
    base_ms, slope_ms = head_line(rows, log_rate)
    closed = closed_form_ok(base_ms, slope_ms, x)
    head = head_sums(base_ms, slope_ms, batch, log_rate, closed)
    # State N (batch full, nobody waiting) has no stalls: arrivals queue instead of prefilling,
    # so its completion rate is the unstretched 1000 N / S(N): w_N scales by S(N) / S'(N).
    n = batch.astype(np.float64)
    log_top = head.log_top + np.log(rows.base_ms + rows.slope_ms * n) - np.log(base_ms + slope_ms * n)
    head = head._replace(log_top=log_top)
    # The geometric tail N..K carries weight w_N * sum_{j<=Q} r^j.
    log_tail = head.log_top + log_geometric_sum(x, room + 1)
    log_norm = np.logaddexp(head.log_z0, log_tail)
    tail_prob = np.exp(log_tail - log_norm)
    busy = np.exp(head.log_z1 - log_norm) + batch.astype(np.float64) * tail_prob
    queued = tail_prob * geometric_mean_index(x, room) * rows.wait_scale
    log_top_prob = head.log_top - log_norm
    log_block = np.minimum(log_top_prob + room * x, 0.0)
    # 1 - p_K summed directly (states 0..K-1): far above saturation p_K is within 1e-11 of 1 and
    # the difference would lose all its digits.
    with np.errstate(divide="ignore"):
        below_top = head.log_top + log_geometric_sum(x, np.maximum(room, 1))
    log_admit = np.minimum(np.logaddexp(head.log_z0, np.where(room > 0, below_top, -np.inf)) - log_norm, 0.0)
    throughput = np.exp(log_rate + log_admit)
    return QueueState(
        throughput_rps=throughput,
        in_system=busy + queued,
        busy=busy,
        service_ms=1000.0 * busy / throughput,
        wait_ms=1000.0 * queued / throughput,
        utilization=busy / batch,
        block_prob=np.exp(log_block),
        log_top_prob=log_top_prob,
        log_admit_prob=log_admit,
        log_ratio=x,
        head_base_ms=base_ms,
        head_slope_ms=slope_ms,
        idle_prob=np.exp(-log_norm),
        room=room,
    )
