"""Log sums over the states n = 0..N of the replica chain, in O(1) per row where possible.

Role: the inner kernel of :func:`optimizer.model.queue.queue_state`, which needs, relative to
``w_0 = 1``, the unnormalised weights ``w_n = prod_{k<=n} lambda/mu_k`` summed as
``Z0 = sum_{n<N} w_n``, ``Z1 = sum_{n<N} n w_n`` and the top weight ``w_N`` (all as logs).

With ``S(n) = A + B n`` ms, ``mu_k = 1000 k/(A + B k)`` and so
``w_n = z^n Gamma(n + r)/(Gamma(r) n!)`` where ``z = lambda B/1000`` and ``r = 1 + A/B``: the
weights of a negative binomial law, whose partial sums are regularised incomplete beta functions:

    Z0 = (1-z)^-r I_{1-z}(r, N),   Z1 = r z (1-z)^-(r+1) I_{1-z}(r+1, N-1)

(``n w_n(r) = r z w_{n-1}(r+1)``). With B = 0 the weights are Poisson, ``w_n = rho^n/n!`` with
``rho = lambda A/1000``: ``Z0 = e^rho Q(N, rho)``, ``Z1 = rho e^rho Q(N-1, rho)`` (Q the regularised
upper incomplete gamma). These are exact and cost a few special-function calls per row, whatever N.

They are used for lambda <= mu_N (the whole sizing range), where the partial sums are not tiny
fractions of the full series; above saturation, or when A/B is so large that ``log Gamma``
differences lose precision, the rows fall back to the direct sum: ``log w_n = n log(lambda) -
sum_{k<=n} log mu_k`` by cumulative sums, normalised with a log-sum-exp (O(N) per row, chunked).
The direct sum also serves stays with a quadratic term, ``S(n) = A + B n + C n^2`` (prefill-first
rows: :func:`optimizer.model.queue.prefill_first_head`), which have no such closed form.

Example (A = B = 1000 ms, N = 2, lambda = 0.5 req/s): z = 0.5, r = 2, w = (1, 1, 0.75):
Z0 = 0.5^-2 I_0.5(2, 2) = 4 * 0.5 = 2, Z1 = 2*0.5*0.5^-3 I_0.5(3, 1) = 8 * 0.125 = 1, w_2 = 0.75.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import special

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MAX_CLOSED_FORM_SHAPE = 1e7
"""Largest A/B for the closed form: beyond it log Gamma differences lose digits."""
DIRECT_CHUNK_ELEMENTS = 1 << 18
"""Rows x states per numpy pass of the direct sum: ~2 MB per array."""


class HeadSums(NamedTuple):
    """Logs of Z0, Z1 and w_N (relative to w_0 = 1); ``-inf`` stands for an empty sum."""

    log_z0: FloatArray
    log_z1: FloatArray
    log_top: FloatArray


def head_sums(  # noqa: PLR0917 - the chain's per-row constants
    base_ms: FloatArray,
    slope_ms: FloatArray,
    batch: IntArray,
    log_rate: FloatArray,
    closed: NDArray[np.bool_],
    curve_ms: FloatArray | None = None,
) -> HeadSums:
    """Sums for every row: the closed form where ``closed``, the direct sum elsewhere. ``curve_ms``
    adds ``curve*n^2`` to ``S(n)`` (prefill-first rows; the direct sum only); None: zeros."""
    curve = np.zeros_like(base_ms) if curve_ms is None else curve_ms
    out = HeadSums(*(np.empty_like(log_rate) for _ in range(3)))
    for mask, direct in ((closed, False), (~closed, True)):
        idx = np.flatnonzero(mask)
        if not idx.size:
            continue
        rows = (base_ms[idx], slope_ms[idx], batch[idx], log_rate[idx])
        part = _direct(*rows, curve[idx]) if direct else _closed_form(*rows)
        for target, values in zip(out, part, strict=True):
            target[idx] = values
    return out


def closed_form_ok(base_ms: FloatArray, slope_ms: FloatArray, log_ratio: FloatArray) -> NDArray[np.bool_]:
    """Rows where the closed form is accurate: at or below saturation, moderate A/B."""
    moderate = (slope_ms == 0) | (base_ms <= MAX_CLOSED_FORM_SHAPE * slope_ms)
    return np.asarray(moderate & (log_ratio <= 0.0), dtype=np.bool_)


def _closed_form(base: FloatArray, slope: FloatArray, batch: IntArray, log_rate: FloatArray) -> HeadSums:
    out = HeadSums(*(np.empty_like(log_rate) for _ in range(3)))
    poisson = slope == 0
    for mask, fn in ((~poisson, _negative_binomial), (poisson, _poisson)):
        idx = np.flatnonzero(mask)
        if idx.size:
            part = fn(base[idx], slope[idx], batch[idx].astype(np.float64), log_rate[idx])
            for target, values in zip(out, part, strict=True):
                target[idx] = values
    # Z1 sums n w_n over 1 <= n < N: empty for N = 1.
    out.log_z1[batch < 2] = -np.inf
    return out


def _negative_binomial(base: FloatArray, slope: FloatArray, n: FloatArray, log_rate: FloatArray) -> HeadSums:
    """B > 0: ``w_n = z^n Gamma(n + r)/(Gamma(r) n!)``, z = lambda B/1000, r = 1 + A/B."""
    shape = 1.0 + base / slope
    log_z = log_rate + np.log(slope) - np.log(1000.0)
    log_p = np.log(-np.expm1(np.minimum(log_z, -1e-300)))
    p = np.exp(log_p)
    with np.errstate(divide="ignore"):
        z0 = -shape * log_p + np.log(special.betainc(shape, n, p))
        z1 = np.log(shape) + log_z - (shape + 1.0) * log_p
        z1 += np.log(special.betainc(shape + 1.0, np.maximum(n - 1.0, 1.0), p))
    top = n * log_z + special.gammaln(n + shape) - special.gammaln(shape) - special.gammaln(n + 1.0)
    return HeadSums(z0, z1, top)


def _poisson(base: FloatArray, slope: FloatArray, n: FloatArray, log_rate: FloatArray) -> HeadSums:
    """B = 0: ``w_n = rho^n / n!``, rho = lambda A/1000 (an M/M/N head)."""
    del slope
    log_rho = log_rate + np.log(base) - np.log(1000.0)
    rho = np.exp(log_rho)
    with np.errstate(divide="ignore"):
        z0 = rho + np.log(special.gammaincc(n, rho))
        z1 = log_rho + rho + np.log(special.gammaincc(np.maximum(n - 1.0, 1.0), rho))
    return HeadSums(z0, z1, n * log_rho - special.gammaln(n + 1.0))


def _direct(
    base: FloatArray, slope: FloatArray, batch: IntArray, log_rate: FloatArray, curve: FloatArray
) -> HeadSums:
    out = HeadSums(*(np.empty_like(log_rate) for _ in range(3)))
    for group in chunks_by_batch(batch, DIRECT_CHUNK_ELEMENTS):
        b = batch[group]
        width = int(b.max()) + 1
        n = np.arange(width, dtype=np.float64)
        stay = base[group, None] + (slope[group, None] + curve[group, None] * n[1:]) * n[1:]
        log_mu = np.log(1000.0 * n[1:]) - np.log(stay)
        log_w = np.zeros((group.size, width))
        np.cumsum(-log_mu, axis=1, out=log_w[:, 1:])
        log_w += log_rate[group, None] * n
        out.log_top[group] = log_w[np.arange(group.size), b]
        log_w[n[None, :] >= b[:, None]] = -np.inf
        peak = log_w.max(axis=1)
        w = np.exp(log_w - peak[:, None])
        with np.errstate(divide="ignore"):
            out.log_z0[group] = peak + np.log(w.sum(axis=1))
            out.log_z1[group] = peak + np.log(w @ n)
    return out


def chunks_by_batch(batch: IntArray | Sequence[int], max_elements: int) -> list[IntArray]:
    """Row indices in ascending batch order, grouped so each group's rows x (max N + 1) stays
    within ``max_elements`` (a wider row is a group of its own): bounded memory, little padding."""
    sizes = np.asarray(batch, dtype=np.int64)
    order = np.argsort(sizes, kind="stable")
    groups: list[IntArray] = []
    start = 0
    while start < order.size:
        stop = start + 1
        while stop < order.size and (stop + 1 - start) * (sizes[order[stop]] + 1) <= max_elements:
            stop += 1
        groups.append(order[start:stop])
        start = stop
    return groups
