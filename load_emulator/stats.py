"""Exact in-process statistics per server, for what-if reports and tests (no histogram buckets).

The engine's replicas report every event here (:class:`ServerStats` is their ``sink``); a report
asks for a window ``[t0_s, t1_s)`` and gets a :class:`WindowStats`:

- TTFT percentiles over requests whose *first token* came in the window;
- ITL percentiles over output tokens (each gap between two tokens of a request, weighted; a run of
  decode iterations whose duration grows linearly is recorded at its mean, exact otherwise);
- TPOT (a request's mean gap, ``(e2e - ttft) / (out - 1)``) and e2e over requests *finished* in it;
- SLO attainment: the share of requests finished in the window that met both the TTFT target and
  the ITL target (on their TPOT); requests rejected (no ready replica) or aborted count as misses.

Records are flat ``array('d')`` appended in time order, so a window is two binary searches.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowStats:
    t0_s: float
    t1_s: float
    arrivals: int
    arrival_rpm: float
    completed: int
    throughput_rps: float
    generated_tokens_per_s: float
    rejected: int
    aborted: int
    ttft_mean_ms: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    itl_mean_ms: float
    itl_p50_ms: float
    itl_p95_ms: float
    tpot_p95_ms: float
    e2e_mean_ms: float
    queue_mean_ms: float
    mean_in_tokens: float
    mean_out_tokens: float
    slo_attainment: float
    in_tokens_cv2: float = math.nan
    """Squared coefficient of variation of the completed requests' input lengths (NaN: none)."""
    out_tokens_cv2: float = math.nan
    """Share in [0, 1] of finished, rejected and aborted requests that met every target; NaN if none."""


DONE_WIDTH = 7


class ServerStats:
    """Event log of one server (all its replicas): flat ``array('d')`` records, in time order."""

    def __init__(self) -> None:
        self.arrival_t = array("d")
        self.rejected_t = array("d")
        self.aborted_t = array("d")
        self.first = array("d")  # (t, ttft)
        self.done = array("d")  # (t, ttft, tpot, e2e, in, out, queue)
        self.itl_rec = array("d")  # (t, gap, weight)

    # --- sink interface, called by replicas -------------------------------------------------
    def arrival(self, t_s: float) -> None:
        self.arrival_t.append(t_s)

    def rejected(self, t_s: float) -> None:
        self.rejected_t.append(t_s)

    def aborted(self, t_s: float) -> None:
        self.aborted_t.append(t_s)

    def first_token(self, t_s: float, ttft_s: float) -> None:
        self.first.extend((t_s, ttft_s))

    def completed(  # noqa: PLR0917 - hot path, positional on purpose
        self,
        t_s: float,
        ttft_s: float,
        tpot_s: float,
        e2e_s: float,
        in_tokens: int,
        out_tokens: int,
        queue_s: float,
    ) -> None:
        self.done.extend((t_s, ttft_s, tpot_s, e2e_s, in_tokens, out_tokens, queue_s))

    def itl(self, t_s: float, gap_s: float, weight: float) -> None:
        self.itl_rec.extend((t_s, gap_s, weight))

    # --- queries ----------------------------------------------------------------------------
    def window(
        self, t0_s: float, t1_s: float, ttft_target_ms: float = 0.0, itl_target_ms: float = 0.0
    ) -> WindowStats:
        """Statistics of ``[t0_s, t1_s)``; a target of 0 is not considered."""
        span_s = max(t1_s - t0_s, 1e-9)
        arrivals = _count(_table(self.arrival_t, 1), t0_s, t1_s)
        rejected = _count(_table(self.rejected_t, 1), t0_s, t1_s)
        aborted = _count(_table(self.aborted_t, 1), t0_s, t1_s)
        ttft = _rows(_table(self.first, 2), t0_s, t1_s)[:, 1]
        done = _rows(_table(self.done, DONE_WIDTH), t0_s, t1_s)
        tpot, out = done[:, 2], done[:, 5]
        itl = _rows(_table(self.itl_rec, 3), t0_s, t1_s)
        gaps, weights = itl[:, 1], itl[:, 2]
        ok = np.ones(len(done), dtype=bool)
        if ttft_target_ms > 0:
            ok &= done[:, 1] * 1000 <= ttft_target_ms
        if itl_target_ms > 0:
            ok &= ~(tpot * 1000 > itl_target_ms)  # NaN TPOT (one-token outputs) counts as met
        judged = len(done) + rejected + aborted
        return WindowStats(
            t0_s=t0_s,
            t1_s=t1_s,
            arrivals=arrivals,
            arrival_rpm=arrivals * 60.0 / span_s,
            completed=len(done),
            throughput_rps=len(done) / span_s,
            generated_tokens_per_s=float(out.sum()) / span_s,
            rejected=rejected,
            aborted=aborted,
            ttft_mean_ms=_mean(ttft) * 1000,
            ttft_p50_ms=_quantile(ttft, 0.50) * 1000,
            ttft_p95_ms=_quantile(ttft, 0.95) * 1000,
            itl_mean_ms=_weighted_mean(gaps, weights) * 1000,
            itl_p50_ms=_weighted_quantile(gaps, weights, 0.50) * 1000,
            itl_p95_ms=_weighted_quantile(gaps, weights, 0.95) * 1000,
            tpot_p95_ms=_quantile(tpot[~np.isnan(tpot)], 0.95) * 1000,
            e2e_mean_ms=_mean(done[:, 3]) * 1000,
            queue_mean_ms=_mean(done[:, 6]) * 1000,
            mean_in_tokens=_mean(done[:, 4]),
            mean_out_tokens=_mean(out),
            slo_attainment=float(ok.sum()) / judged if judged else math.nan,
            in_tokens_cv2=_cv2(done[:, 4]),
            out_tokens_cv2=_cv2(out),
        )

    def trim_before(self, t_s: float) -> None:
        """Forget events before ``t_s`` (long real-time runs keep memory bounded)."""
        for column, width in (
            (self.arrival_t, 1),
            (self.rejected_t, 1),
            (self.aborted_t, 1),
            (self.first, 2),
            (self.done, DONE_WIDTH),
            (self.itl_rec, 3),
        ):
            cut = int(np.searchsorted(_table(column, width)[:, 0], t_s, side="left"))
            del column[: cut * width]  # no numpy view of the column may be alive here (BufferError)


def _table(column: array[float], width: int) -> np.ndarray:
    if not len(column):
        return np.empty((0, width))
    return np.frombuffer(column, dtype=np.float64).reshape(-1, width)


def _rows(table: np.ndarray, t0_s: float, t1_s: float) -> np.ndarray:
    times = table[:, 0]
    lo, hi = np.searchsorted(times, [t0_s, t1_s], side="left")
    return table[lo:hi]


def _count(table: np.ndarray, t0_s: float, t1_s: float) -> int:
    return len(_rows(table, t0_s, t1_s))


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def _cv2(values: np.ndarray) -> float:
    """``variance / mean^2`` (NaN for no values or a zero mean)."""
    mean = _mean(values)
    return float(values.var()) / mean**2 if values.size and mean > 0 else math.nan


def _quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) if values.size else math.nan


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    total = float(weights.sum()) if weights.size else 0.0
    return float((values * weights).sum()) / total if total > 0 else math.nan


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Smallest value whose cumulative weight reaches ``q`` of the total (lower quantile)."""
    if not values.size or float(weights.sum()) <= 0:
        return math.nan
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))
    return float(values[order][min(index, values.size - 1)])
