"""Mean ITL and TTFT of many replicas at once: queue steady state plus the schema's latency forms.

Role: the vectorised kernel shared by sizing (:mod:`optimizer.model.sizing`, called ~10 times per
root find) and prediction (:mod:`optimizer.model.predict`). A :class:`RowSet` packs one row per
(service model, batch N, queue room Q); :func:`evaluate` returns per-row latencies at one arrival
rate per row. See :mod:`optimizer.model.service_time` for the forms:
``ITL = itl_coef . (1, S, Ls, n_eff)`` and ``TTFT = W + prefill_coef . (1, S, Ls, n_eff)``, with
``n_eff = clip((S - base)/slope, 0, N)`` (0 when slope is 0). Times in ms, rates in req/s.

Example (decode-only, base 1000 ms, slope 0: S(n) = 1000 ms for any n, ITL coefficient 1/10 on S,
i.e. 10 output tokens): with N = 1 this is an M/M/1/K queue with mu = 1 req/s; at lambda = 0.5
req/s and a large K, W = rho/(mu - lambda) = 1000 ms, S = 1000 ms, ITL = 100 ms, TTFT = 1100 ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from optimizer.model.queue import QueueRows, QueueState, queue_rows, queue_state
from optimizer.model.service_time import ServiceModel
from optimizer.model.states import FloatArray, IntArray


class RowSet(NamedTuple):
    """Rows to evaluate: chain constants plus each row's latency coefficients."""

    queue: QueueRows
    itl_coef: FloatArray
    """rows x 4, weights of (1, S_ms, Ls, n_eff)."""
    prefill_coef: FloatArray

    @property
    def size(self) -> int:
        return int(self.queue.batch.size)

    def take(self, index: IntArray) -> RowSet:
        return RowSet(self.queue.take(index), self.itl_coef[index], self.prefill_coef[index])


class Latency(NamedTuple):
    state: QueueState
    itl_ms: FloatArray
    prefill_ms: FloatArray
    """TTFT minus the queueing wait: the time from entering service to the first token."""
    ttft_ms: FloatArray


def row_set(models: Sequence[ServiceModel], batch: Sequence[int], room: Sequence[int]) -> RowSet:
    """Pack rows; ``batch`` N >= 1 and ``room`` Q >= 0 per row."""
    batch_arr = np.asarray(batch, dtype=np.int64)
    room_arr = np.asarray(room, dtype=np.int64)
    if batch_arr.size and (batch_arr.min() < 1 or room_arr.min() < 0):
        raise ValueError("batch sizes must be >= 1 and queue rooms >= 0")
    base = np.array([m.base_ms for m in models], dtype=np.float64)
    slope = np.array([m.slope_ms for m in models], dtype=np.float64)
    return RowSet(
        queue=queue_rows(base, slope, batch_arr, room_arr),
        itl_coef=np.array([m.itl_coef for m in models], dtype=np.float64).reshape(-1, 4),
        prefill_coef=np.array([m.prefill_coef for m in models], dtype=np.float64).reshape(-1, 4),
    )


def evaluate(rows: RowSet, log_rate: FloatArray) -> Latency:
    """Latencies of every row at arrival rate ``exp(log_rate)`` req/s."""
    state = queue_state(rows.queue, log_rate)
    service = state.service_ms
    base, slope = rows.queue.base_ms, rows.queue.slope_ms
    positive = slope > 0
    n_eff = np.where(positive, (service - base) / np.where(positive, slope, 1.0), 0.0)
    n_eff = np.clip(n_eff, 0.0, rows.queue.batch)
    features = np.stack([np.ones_like(service), service, state.busy, n_eff], axis=1)
    itl = np.einsum("ij,ij->i", rows.itl_coef, features)
    prefill = np.einsum("ij,ij->i", rows.prefill_coef, features)
    return Latency(state=state, itl_ms=itl, prefill_ms=prefill, ttft_ms=state.wait_ms + prefill)
