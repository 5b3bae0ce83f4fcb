"""Birth-death queue of one replica, evaluated for many (replica, arrival rate) rows at once.

Role: the steady state behind every latency prediction. Callers: :mod:`optimizer.model.latency`
(sizing and prediction) and :mod:`optimizer.model.tail` (percentile waits).

Model: state n = requests in the replica, n = 0..K with ``K = N + Q`` (N the batch size, Q the
queue room). With ``S(n) = base + slope*n`` ms the completion rate is ``mu_n = 1000*n/S(n)`` req/s
for n <= N and ``mu_N`` above; ``p_n = p_{n-1} * lambda / mu_n``, normalised. Outputs:
``X = lambda*(1 - p_K)``, ``L = sum n p_n``, ``Ls = E[min(n, N)]``, mean service ``S = Ls/X``,
mean wait ``W = (L - Ls)/X`` (this equals ``max(T - S, 0)`` with ``T = L/X``), utilisation Ls/N.

Numerics: everything is in log space. For n <= N, ``log p_n = n*log(lambda) - C_n + const`` with
``C_n = sum_{k<=n} log mu_k`` precomputed per row (it does not depend on lambda). Above N the chain
is geometric with ratio ``r = lambda/mu_N``, so the Q+1 tail states are summed in closed form
(stable ``expm1`` forms, a Taylor series near r = 1). Work per row is O(N), not O(K), and nothing
overflows even far above saturation. Rows are padded to the largest N and masked.

Worked example (N = 2, Q = 1, K = 3; S(n) = 1000 + 1000*n ms so mu_1 = 0.5, mu_2 = 2/3 req/s;
lambda = 0.5 req/s): unnormalised p = (1, 1, 0.75, 0.5625), sum 3.3125, so
p = (0.30189, 0.30189, 0.22642, 0.16981); X = 0.5*(1 - 0.16981) = 0.41509 req/s;
L = 1.26415, Ls = 1.09434, S = 2636.4 ms, W = 409.1 ms, utilisation 0.54717.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_TAYLOR_BELOW = 1e-3
"""Use the series for the geometric tail mean when ``|log r| * (Q+1)`` is below this."""


class QueueRows(NamedTuple):
    """Per-row constants of the chain (independent of the arrival rate)."""

    log_mu_cum: FloatArray
    """rows x (Nmax+1): ``C_n = sum_{k=1..n} log mu_k``; columns beyond a row's N are unused."""
    log_mu_top: FloatArray
    """``log mu_N`` per row (mu in req/s)."""
    batch: IntArray
    room: IntArray


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
    """``log p_N``: the first waiting-capable state, used by the wait tail."""
    log_ratio: FloatArray
    """``log(lambda / mu_N)``."""


def queue_rows(base_ms: FloatArray, slope_ms: FloatArray, batch: IntArray, room: IntArray) -> QueueRows:
    """Precompute ``C_n`` for rows with ``S(n) = base_ms + slope_ms*n`` (ms), batch N and room Q."""
    width = int(batch.max()) + 1
    n = np.arange(1, width, dtype=np.float64)
    service = base_ms[:, None] + slope_ms[:, None] * n
    log_mu = np.log(1000.0 * n) - np.log(service)
    log_mu_cum = np.zeros((batch.size, width))
    np.cumsum(log_mu, axis=1, out=log_mu_cum[:, 1:])
    top = np.log(1000.0 * batch) - np.log(base_ms + slope_ms * batch)
    return QueueRows(log_mu_cum, top, batch, room)


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
    batch, room = rows.batch, rows.room
    n = np.arange(rows.log_mu_cum.shape[1], dtype=np.float64)
    index = np.arange(batch.size)
    log_w = log_rate[:, None] * n - rows.log_mu_cum
    log_w[n[None, :] > batch[:, None]] = -np.inf
    x = log_rate - rows.log_mu_top
    log_top = log_w[index, batch]
    # State N stands for the whole geometric tail N..K: weight p_N * sum_{j<=Q} r^j.
    log_w[index, batch] = log_top + log_geometric_sum(x, room + 1)
    peak = log_w.max(axis=1)
    w = np.exp(log_w - peak[:, None])
    total = w.sum(axis=1)
    w /= total[:, None]
    log_top_prob = log_top - peak - np.log(total)
    tail_prob = w[index, batch]
    busy = w @ n
    queued = tail_prob * geometric_mean_index(x, room)
    log_block = np.minimum(log_top_prob + room * x, 0.0)
    block = np.exp(log_block)
    throughput = np.exp(log_rate) * -np.expm1(log_block)
    return QueueState(
        throughput_rps=throughput,
        in_system=busy + queued,
        busy=busy,
        service_ms=1000.0 * busy / throughput,
        wait_ms=1000.0 * queued / throughput,
        utilization=busy / batch,
        block_prob=block,
        log_top_prob=log_top_prob,
        log_ratio=x,
    )
