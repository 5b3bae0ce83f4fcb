"""Mean ITL and TTFT of many replicas at once: queue steady state plus the schema's latency forms.

Role: the vectorised kernel shared by sizing (:mod:`optimizer.model.sizing`, called ~25 times per
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

from optimizer.model.queue import FloatArray, IntArray, QueueRows, QueueState, queue_rows, queue_state
from optimizer.model.service_time import ServiceModel

DEFAULT_CHUNK_ELEMENTS = 1 << 18
"""Rows x states evaluated per numpy pass: ~2 MB per array, a few arrays live at once."""


class RowSet(NamedTuple):
    """Rows to evaluate: chain constants plus each row's latency coefficients."""

    queue: QueueRows
    base_ms: FloatArray
    slope_ms: FloatArray
    itl_coef: FloatArray
    """rows x 4, weights of (1, S_ms, Ls, n_eff)."""
    prefill_coef: FloatArray

    @property
    def size(self) -> int:
        return int(self.base_ms.size)

    @property
    def log_mu_one(self) -> FloatArray:
        """``log mu_1`` (req/s): the rate of a replica serving a single request."""
        return self.queue.log_mu_cum[:, 1]

    @property
    def log_mu_top(self) -> FloatArray:
        """``log mu_N`` (req/s): the saturation rate of a replica."""
        return self.queue.log_mu_top


class Latency(NamedTuple):
    state: QueueState
    itl_ms: FloatArray
    prefill_ms: FloatArray
    """TTFT minus the queueing wait: the time from entering service to the first token."""
    ttft_ms: FloatArray


def row_set(models: Sequence[ServiceModel], batch: Sequence[int], room: Sequence[int]) -> RowSet:
    """Pack rows; ``batch`` N >= 1 and ``room`` Q >= 0 per row."""
    base = np.array([m.base_ms for m in models], dtype=np.float64)
    slope = np.array([m.slope_ms for m in models], dtype=np.float64)
    batch_arr = np.asarray(batch, dtype=np.int64)
    room_arr = np.asarray(room, dtype=np.int64)
    if batch_arr.size and (batch_arr.min() < 1 or room_arr.min() < 0):
        raise ValueError("batch sizes must be >= 1 and queue rooms >= 0")
    return RowSet(
        queue=queue_rows(base, slope, batch_arr, room_arr),
        base_ms=base,
        slope_ms=slope,
        itl_coef=np.array([m.itl_coef for m in models], dtype=np.float64).reshape(-1, 4),
        prefill_coef=np.array([m.prefill_coef for m in models], dtype=np.float64).reshape(-1, 4),
    )


def take(rows: RowSet, index: IntArray) -> RowSet:
    """The rows at ``index``; the padded width shrinks to the largest batch kept."""
    batch = rows.queue.batch[index]
    width = int(batch.max()) + 1 if batch.size else 1
    queue = QueueRows(
        log_mu_cum=rows.queue.log_mu_cum[index, :width],
        log_mu_top=rows.queue.log_mu_top[index],
        batch=batch,
        room=rows.queue.room[index],
    )
    return RowSet(
        queue=queue,
        base_ms=rows.base_ms[index],
        slope_ms=rows.slope_ms[index],
        itl_coef=rows.itl_coef[index],
        prefill_coef=rows.prefill_coef[index],
    )


def chunks_by_batch(batch: Sequence[int], max_elements: int) -> list[IntArray]:
    """Row indices grouped in ascending batch order so each group's rows x (max N + 1) stays
    within ``max_elements`` (a row wider than that is a group of its own): bounded memory, little
    padding."""
    order = np.argsort(np.asarray(batch, dtype=np.int64), kind="stable")
    groups: list[IntArray] = []
    start = 0
    while start < order.size:
        stop = start + 1
        while stop < order.size and (stop + 1 - start) * (batch[order[stop]] + 1) <= max_elements:
            stop += 1
        groups.append(order[start:stop])
        start = stop
    return groups


def evaluate(rows: RowSet, log_rate: FloatArray) -> Latency:
    """Latencies of every row at arrival rate ``exp(log_rate)`` req/s."""
    state = queue_state(rows.queue, log_rate)
    service = state.service_ms
    positive = rows.slope_ms > 0
    n_eff = np.where(positive, (service - rows.base_ms) / np.where(positive, rows.slope_ms, 1.0), 0.0)
    n_eff = np.clip(n_eff, 0.0, rows.queue.batch)
    features = np.stack([np.ones_like(service), service, state.busy, n_eff], axis=1)
    itl = np.einsum("ij,ij->i", rows.itl_coef, features)
    prefill = np.einsum("ij,ij->i", rows.prefill_coef, features)
    return Latency(state=state, itl_ms=itl, prefill_ms=prefill, ttft_ms=state.wait_ms + prefill)
