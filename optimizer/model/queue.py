"""Birth-death queue of one replica, evaluated for many (replica, arrival rate) rows at once.

Role: the steady state behind every latency prediction. Callers: :mod:`optimizer.model.latency`
(sizing and prediction) and :mod:`optimizer.model.tail` (percentile waits).

Model: state n = requests in the replica, n = 0..K with ``K = N + Q`` (N the batch size, Q the
queue room). With ``S(n) = base + slope*n`` ms the completion rate is ``mu_n = 1000*n/S(n)`` req/s
for n <= N and ``mu_N`` above (the saturation rate); ``p_n = p_{n-1} * lambda / mu_n``, normalised
(prefill-first engines: :func:`prefill_first_head`). Outputs:
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

Numerics: everything is in log space and O(1) per row in the sizing range, but O(N) on
prefill-first rows. The states n <= N are summed by :mod:`optimizer.model.states`
(negative-binomial / Poisson closed forms, or a direct log-sum-exp of cumulative sums above
saturation and on prefill-first rows, whose stay is quadratic in n). Above N the
chain is geometric with ratio ``r = lambda/mu_N`` (prefill-first rows: :func:`queue_state`), so
the Q+1 tail states are summed in closed form too (stable ``expm1`` forms, a Taylor series near
r = 1). Nothing overflows, even far above saturation.

Worked example (N = 2, Q = 1, K = 3; S(n) = 1000 + 1000*n ms so mu_1 = 0.5, mu_2 = 2/3 req/s;
lambda = 0.5 req/s): unnormalised p = (1, 1, 0.75, 0.5625), sum 3.3125, so
p = (0.30189, 0.30189, 0.22642, 0.16981); X = 0.5*(1 - 0.16981) = 0.41509 req/s;
L = 1.26415, Ls = 1.09434, S = 2636.4 ms, W = 409.1 ms, utilisation 0.54717.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from optimizer.model.service_time import refill_prompts
from optimizer.model.states import FloatArray, IntArray, closed_form_ok, head_sums

NEGLIGIBLE_BLOCKING = 1e-9
"""Below saturation an open queue's room leaves at most this share of the chain beyond it."""
MAX_OPEN_ROOM = 1_000_000
"""Bound on that room (reached only within 2e-5 of saturation, where the wait is ~5e4 services)."""
_MIN_DECODE_MS = 1e-9
"""Floor on ``D*d(N)``: one-token outputs have no decode; their queue above N is then empty below
mu_N (a prefill is the whole stay)."""
_MIN_REFILL_SPARE = 1e-12
"""Floor on ``1 - lambda*f_top`` (it is at least ``u/(u + f_top)`` in exact arithmetic)."""
_TAYLOR_BELOW = 1e-3
"""Use the series for the geometric tail mean when ``|log r| * (Q+1)`` is below this."""


class QueueRows(NamedTuple):
    """Per-row constants of the chain (independent of the arrival rate)."""

    base_ms: FloatArray
    slope_ms: FloatArray
    curve_ms: FloatArray
    """The head states' stay ``S(n) = base + slope*n + curve*n^2`` (curve 0 but on prefill-first
    rows: :func:`prefill_first_head`)."""
    batch: IntArray
    room: IntArray
    log_mu_one: FloatArray
    """``log mu_1`` (req/s): the rate of a replica serving one request alone."""
    log_mu_top: FloatArray
    """``log mu_N`` (req/s): the saturation rate (the completion rate with a queue)."""
    decode_top_ms: FloatArray
    """The decode part of a stay in a full batch, ``D*d(N)`` (``S(N)`` without prefill stalls)."""
    refill_ms: FloatArray
    """Prefill-first: the refill prefill per departure with a queue, ``f_top = gamma/c +
    delta*in*N`` (0: no stalls)."""
    refill_group: FloatArray
    """Prefill-first: the prompts c one refill prefill serves (1: no stalls)."""
    stall_base_ms: FloatArray
    stall_slope_ms: FloatArray
    """``f(n) = stall_base + stall_slope*n``, one batch-stalling prefill (zeros: no stalls)."""
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
            self.curve_ms[index],
            self.batch[index],
            self.room[index],
            self.log_mu_one[index],
            self.log_mu_top[index],
            self.decode_top_ms[index],
            self.refill_ms[index],
            self.refill_group[index],
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
    """``log r``, the ratio of the queue's geometric tail (``lambda / mu_N`` but on prefill-first
    rows)."""
    head_base_ms: FloatArray
    head_slope_ms: FloatArray
    """The line ``S(n)`` of the states n <= N (prefill-first rows: its first two terms)."""
    admit_batch: FloatArray
    """Prefill-first: the mean batch an arrival's prefill runs with, ``sum_{n<N} p_n (n+1) +
    P(n >= N)*c*N`` (a queued one is refilled in a group of c prompts)."""
    full_prob: FloatArray
    """``P(n >= N)``: the share of arrivals that find the batch full and queue."""
    idle_prob: FloatArray
    """``p_0``: the share of time the replica is empty."""
    room: IntArray
    """The queue room used at this rate (:func:`effective_room`), for the wait tail."""

    def take(self, index: IntArray) -> QueueState:
        return QueueState._make(a[index] for a in self)


PrefillFirst = tuple[FloatArray, FloatArray, FloatArray]
"""Per row: ``gamma`` and ``delta*in`` of ``f(n) = gamma + delta*in*n`` (ms), and the most prompts
one refill prefill may serve (:func:`optimizer.model.service_time.refill_prompts`' cap)."""


def queue_rows(
    base_ms: FloatArray,
    slope_ms: FloatArray,
    batch: IntArray,
    room: IntArray,
    *,
    prefill_first: PrefillFirst | None = None,
    open_queue: bool = False,
    wait_scale: FloatArray | None = None,
) -> QueueRows:
    """Rows with ``S(n) = base_ms + slope_ms*n`` (ms), batch N >= 1 and queue room Q >= 0.

    ``prefill_first`` marks the rows whose prefills stall the batch (zeros elsewhere; None: none);
    their head follows :func:`prefill_first_head`. ``open_queue``: Q applies only at or above
    saturation (:func:`effective_room`); False: always (a finite chain). ``wait_scale`` multiplies
    the mean queueing wait (service less variable than exponential: below 1); None: ones."""
    n = batch.astype(np.float64)
    zeros = np.zeros_like(base_ms)
    gamma, prefill_n, cap = prefill_first if prefill_first is not None else (zeros, zeros, zeros + 1.0)
    head_base, head_slope, curve = prefill_first_head(base_ms, slope_ms, gamma, prefill_n)
    decode_top = base_ms - gamma + (slope_ms - prefill_n) * n
    group = refill_prompts(decode_top / n, gamma, prefill_n * n, np.minimum(cap, n))
    refill = np.where(gamma + prefill_n > 0, gamma / group + prefill_n * n, 0.0)
    log_mu_one = np.log(1000.0) - np.log(base_ms + slope_ms)
    log_mu_top = np.log(1000.0 * n) - np.log(decode_top + n * refill)
    opened = np.full(batch.shape, open_queue, dtype=np.bool_)
    scale = wait_scale if wait_scale is not None else np.ones_like(base_ms)
    # Cohorts leave c at a time: departures with a queue come in bursts, whose gaps have a squared
    # coefficient of variation c - 1; Allen-Cunneen's wait scale (1 + c_d^2)/2 grows by (c - 1)/2.
    scale = scale + (group - 1.0) / 2.0
    return QueueRows(
        head_base,
        head_slope,
        curve,
        batch,
        room,
        log_mu_one,
        log_mu_top,
        decode_top,
        refill,
        group,
        gamma,
        prefill_n,
        opened,
        scale,
    )


def prefill_first_head(
    base_ms: FloatArray, slope_ms: FloatArray, gamma_ms: FloatArray, prefill_n_ms: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(base, slope, curve)`` of the head stay ``S(n) = D*d(n) + n*f(n)`` of a prefill-first row
    whose stay alone is ``S_1(n) = f(n) + D*d(n)`` = ``base_ms + slope_ms*n`` (``f(n) = gamma +
    delta*in*n``, ``prefill_n_ms = delta*in``); the line itself where both are 0.

    What it represents: vLLM V0 runs a prefill alone, and every request in the batch waits for it.
    The chain pays each prefill in the state it starts in: an arrival into a batch of n - 1 costs
    ``f(n)`` there. In balance (the flow from n - 1 to n equals the flow back), the decodes in state
    n then take ``D*d(n)/n`` per departure and the prefills ``f(n)`` (one per arrival, as many as
    departures), so ``mu_n = 1000*n/(D*d(n) + n*f(n))``: the others' prefills stretch a request's
    stay more, the fuller the batch. Approximation: arrivals that come during one step are
    prefilled together and share ``gamma`` (10 % of prefills at 85 % load on v0-7b's engine); the
    chain charges each its own, and it ignores that an arrival finds a step in progress (added to
    the TTFT as a residual by :func:`optimizer.model.latency.evaluate`).

    Example (llama_7b on H100: alpha 6.96, beta 0.38, gamma 55.68, delta 0.011875 ms; in 512, out
    256, so D = 255, f(n) = 55.68 + 6.08 n): ``S(n) = 1774.8 + 152.58 n + 6.08 n^2``; at n = 10,
    mu_10 = 10000/3908.6 = 2.558 req/s against 10000/(1830.48 + 1029.8) = 3.496 alone."""
    return base_ms - gamma_ms, slope_ms - prefill_n_ms + gamma_ms, prefill_n_ms


def effective_room(room: IntArray, log_ratio: FloatArray, open_queue: NDArray[np.bool_]) -> IntArray:
    """Queue room at ``r = lambda/mu_N = exp(log_ratio)``: for open rows below saturation
    ``max(Q, min(ceil(ln(1e-9) / ln r), 1e6))``, so ``r^Q' <= 1e-9`` (the chain beyond is
    negligible); Q otherwise. Example: Q = 10, r = 0.9: Q' = 197 (0.9^10 = 0.35 would cut the
    tail at a third of its weight); r = 0.5: Q' = 30."""
    below = open_queue & (log_ratio < 0.0)
    safe = np.where(below, log_ratio, -1.0)
    need = np.minimum(np.ceil(np.log(NEGLIGIBLE_BLOCKING) / safe), MAX_OPEN_ROOM).astype(np.int64)
    return np.where(below, np.maximum(room, need), room)


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
    n = batch.astype(np.float64)
    stalls = rows.refill_ms > 0
    # Prefill-first rows: state N is entered by arrivals (prefill f(N)) and by refills (f_top per
    # departure); the balance gives w_N a factor 1/(1 - lambda*f_top) and the queue above it the
    # ratio r = lambda*D*d(N) / (1000*N*(1 - lambda*f_top)), which is < 1 exactly below mu_N.
    # Above mu_N the departures, and so the refills, stay at mu_N: r = lambda/mu_N there.
    refills = np.minimum(log_rate, rows.log_mu_top)
    spare = np.maximum(1.0 - np.exp(refills) * rows.refill_ms / 1000.0, _MIN_REFILL_SPARE)
    x = np.where(
        stalls & (log_rate < rows.log_mu_top),
        log_rate + np.log(np.maximum(rows.decode_top_ms, _MIN_DECODE_MS)) - np.log(1000.0 * n * spare),
        log_rate - rows.log_mu_top,
    )
    room = effective_room(rows.room, x, rows.open_queue)
    closed = closed_form_ok(rows.base_ms, rows.slope_ms, x) & (rows.curve_ms == 0)
    head = head_sums(rows.base_ms, rows.slope_ms, batch, log_rate, closed, rows.curve_ms)
    head = head._replace(log_top=np.where(stalls, head.log_top - np.log(spare), head.log_top))
    # The geometric tail N..K carries weight w_N * sum_{j<=Q} r^j.
    log_tail = head.log_top + log_geometric_sum(x, room + 1)
    log_norm = np.logaddexp(head.log_z0, log_tail)
    tail_prob = np.exp(log_tail - log_norm)
    busy = np.exp(head.log_z1 - log_norm) + n * tail_prob
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
        head_base_ms=rows.base_ms,
        head_slope_ms=rows.slope_ms,
        admit_batch=busy + np.exp(head.log_z0 - log_norm) + (rows.refill_group - 1.0) * n * tail_prob,
        full_prob=tail_prob,
        idle_prob=np.exp(-log_norm),
        room=room,
    )
