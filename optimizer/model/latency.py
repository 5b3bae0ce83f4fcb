"""Mean ITL and TTFT of many replicas at once: queue steady state plus the schema's latency forms.

Role: the vectorised kernel shared by sizing (:mod:`optimizer.model.sizing`, called ~10 times per
root find) and prediction (:mod:`optimizer.model.predict`). A :class:`RowSet` packs one row per
(service model, batch N, queue room Q, KV cache); the chain's batch is N capped by the token
budget and the KV cache (:func:`chain_batches`). :func:`evaluate` returns per-row latencies at one
arrival rate per row. See :mod:`optimizer.model.service_time` for the forms:
``ITL = itl_coef . (1, S, Ls, n_eff)`` and ``TTFT = W + k*(prefill_coef . (1, S, Ls, n_eff)) +
own + residual``, with ``n_eff = clip((S - base)/slope, 0, N)`` (0 when slope is 0) and, on a
chunked engine, k the prefill steps and ``own`` the prompt's own work (:func:`prefill_ms_at`;
k = 1, own = 0 elsewhere). Times in ms, rates in req/s.

Example (decode-only, base 1000 ms, slope 0: S(n) = 1000 ms for any n, ITL coefficient 1/10 on S,
i.e. 10 output tokens): with N = 1 this is an M/M/1/K queue with mu = 1 req/s; at lambda = 0.5
req/s and a large K, W = rho/(mu - lambda) = 1000 ms, S = 1000 ms, ITL = 100 ms, TTFT = 1100 ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from optimizer.model.queue import QueueRows, QueueState, queue_rows, queue_state
from optimizer.model.service_time import KV_BLOCK_TOKENS, ServiceModel
from optimizer.model.states import FloatArray, IntArray

MAX_PROMPT_LOAD = 0.95
"""Cap on the load of the queue of prompt tokens (:func:`prefill_ms_at`)."""


class RowSet(NamedTuple):
    """Rows to evaluate: chain constants plus each row's latency coefficients."""

    queue: QueueRows
    itl_coef: FloatArray
    """rows x 4, weights of (1, S_ms, Ls, n_eff)."""
    prefill_coef: FloatArray
    step_coef: FloatArray
    """rows x 4: the decode iteration ``d`` (ms), for the residual an arrival waits out."""
    stall_coef: FloatArray
    """rows x 4: the batch-stalling prefill iteration ``f`` (ms); zeros when prefills do not stall."""
    chunks: ChunkRows
    """Chunked engines: how many steps a prompt takes (:func:`prefill_ms_at`)."""

    @property
    def size(self) -> int:
        return int(self.queue.batch.size)

    def take(self, index: IntArray) -> RowSet:
        return RowSet(
            self.queue.take(index),
            self.itl_coef[index],
            self.prefill_coef[index],
            self.step_coef[index],
            self.stall_coef[index],
            self.chunks.take(index),
        )


class ChunkRows(NamedTuple):
    """Per row: the prompt's own work (ms), mean prompt, ``E[in^2]``, fixed lengths or not, and
    the token budget (inf: none, and a prompt takes one step)."""

    own_ms: FloatArray
    in_tokens: FloatArray
    in_sq_tokens: FloatArray
    exact: NDArray[np.bool_]
    budget_tokens: FloatArray
    token_ms: FloatArray
    """The cost of one prompt token in a step (``a_p``)."""

    def take(self, index: IntArray) -> ChunkRows:
        return ChunkRows._make(a[index] for a in self)


class Latency(NamedTuple):
    state: QueueState
    itl_ms: FloatArray
    prefill_ms: FloatArray
    """TTFT minus the queueing wait: the time from entering service to the first token."""
    ttft_ms: FloatArray


def row_set(
    models: Sequence[ServiceModel],
    batch: Sequence[int],
    room: Sequence[int],
    kv_tokens: Sequence[float] | None = None,
) -> RowSet:
    """Pack rows; ``batch`` N >= 1 and ``room`` Q >= 0 per row. The queue is open below
    saturation (as vLLM's): ``room`` applies at or above it (:func:`optimizer.model.queue.effective_room`).
    The chain's batch is :meth:`ServiceModel.chain_batch` of N and the row's KV cache in tokens
    (``kv_tokens``; 0 or None: unknown, no limit)."""
    slot: dict[int, int] = {}
    which = np.array([slot.setdefault(id(m), len(slot)) for m in models], dtype=np.int64)
    distinct = list({id(m): m for m in models}.values())
    scalars = np.array([_scalars(m) for m in distinct], dtype=np.float64).reshape(-1, len(_SCALARS))[which]
    coefs = np.array([_coefficients(m) for m in distinct], dtype=np.float64).reshape(-1, 4, 4)[which]

    def column(name: str) -> FloatArray:
        return np.ascontiguousarray(scalars[:, _SCALARS.index(name)])

    kv = np.zeros(len(models)) if kv_tokens is None else np.asarray(kv_tokens, dtype=np.float64)
    batch_arr, kv_bound = chain_batches(
        np.asarray(batch, dtype=np.int64), column("budget_batch"), kv, column("kv_request_tokens")
    )
    room_arr = np.asarray(room, dtype=np.int64)
    if batch_arr.size and (batch_arr.min() < 1 or room_arr.min() < 0):
        raise ValueError("batch sizes must be >= 1 and queue rooms >= 0")
    queue = queue_rows(
        column("base_ms"),
        column("slope_ms"),
        batch_arr,
        room_arr,
        prefill_first=(column("stall_base_ms"), column("stall_slope_ms"), column("refill_cap")),
        open_queue=True,
        wait_scale=np.where(kv_bound, column("kv_wait_scale"), column("wait_scale")),
    )
    chunks = ChunkRows(
        column("prefill_own_ms"),
        column("chunk_in_tokens"),
        column("chunk_in_sq_tokens"),
        column("chunk_exact") > 0,
        column("budget_tokens"),
        column("chunk_token_ms"),
    )
    return RowSet(
        queue=queue,
        itl_coef=np.ascontiguousarray(coefs[:, 0]),
        prefill_coef=np.ascontiguousarray(coefs[:, 1]),
        step_coef=np.ascontiguousarray(coefs[:, 2]),
        stall_coef=np.ascontiguousarray(coefs[:, 3]),
        chunks=chunks,
    )


_SCALARS = (
    "base_ms",
    "slope_ms",
    "stall_base_ms",
    "stall_slope_ms",
    "refill_cap",
    "wait_scale",
    "kv_wait_scale",
    "prefill_own_ms",
    "chunk_in_tokens",
    "chunk_in_sq_tokens",
    "chunk_exact",
    "budget_tokens",
    "chunk_token_ms",
    "budget_batch",
    "kv_request_tokens",
)
_scalars = attrgetter(*_SCALARS)
_coefficients = attrgetter("itl_coef", "prefill_coef", "step_coef", "stall_coef")


def chain_batches(
    batch: IntArray, budget_batch: FloatArray, kv_tokens: FloatArray, kv_request_tokens: FloatArray
) -> tuple[IntArray, NDArray[np.bool_]]:
    """:meth:`optimizer.model.service_time.ServiceModel.chain_batch` for many rows (vLLM's
    default KV block): ``min(N, round(n_B), floor(kv / (kv_request + 7.5)))``, at least 1; and
    whether the KV cache is what bounds it."""
    budget = np.where(np.isfinite(budget_batch), np.round(np.minimum(budget_batch, 1e18)), np.inf)
    known = (kv_tokens > 0) & (kv_request_tokens > 0)
    per_request = np.where(known, kv_request_tokens, 1.0) + (KV_BLOCK_TOKENS - 1) / 2.0
    held = np.where(known, np.floor(kv_tokens / per_request + 1e-9), np.inf)
    slots = np.minimum(batch, budget)
    chain = np.maximum(np.minimum(slots, held), 1).astype(np.int64)
    return chain, np.asarray(held < slots, dtype=np.bool_)


def evaluate(rows: RowSet, log_rate: FloatArray) -> Latency:
    """Latencies of every row at arrival rate ``exp(log_rate)`` req/s."""
    state = queue_state(rows.queue, log_rate)
    service = state.service_ms
    base, slope = state.head_base_ms, state.head_slope_ms
    positive = slope > 0
    n_eff = np.where(positive, (service - base) / np.where(positive, slope, 1.0), 0.0)
    n_eff = np.clip(n_eff, 0.0, rows.queue.batch)
    # Prefill-first rows: a request's prefill runs with the batch it is admitted into.
    stalls = rows.queue.refill_ms > 0
    n_eff = np.where(stalls, state.admit_batch, n_eff)
    features = np.stack([np.ones_like(service), service, state.busy, n_eff], axis=1)
    itl = np.einsum("ij,ij->i", rows.itl_coef, features)
    residual = _residual_ms(rows, state, features)
    grouped = features.copy()
    grouped[:, 3] = np.where(stalls, _grouped_admit_batch(rows, state, residual), n_eff)
    step_ms = np.einsum("ij,ij->i", rows.prefill_coef, grouped)
    prefill = prefill_ms_at(rows.chunks, state, step_ms) + residual
    # ... and its stay counts from its arrival, so the rest of the step in progress is not a decode.
    itl = np.where(stalls, itl - residual * rows.itl_coef[:, 1], itl)
    return Latency(state=state, itl_ms=itl, prefill_ms=prefill, ttft_ms=state.wait_ms + prefill)


def prefill_ms_at(chunks: ChunkRows, state: QueueState, step_ms: FloatArray) -> FloatArray:
    """Mean time from a newcomer's first step to its first token on a chunked engine, its own
    prompt work included: ``step_ms + own`` on rows without a budget (a prompt takes one step).

    With a budget B, a busy step's decodes take ``d = Ls/busy`` tokens first and the prompts
    ahead of the newcomer (admitted in this or earlier steps, FIFO) the next ``R``. Those prompts
    form an M/G/1 queue of tokens served at ``v = (B - d)/T_full`` per ms, T_full = step_ms +
    a_p*(B - d) a step full of prompt tokens, so ``R = X*E[in^2]/(2v(1 - rho))``, rho = X*in/v
    (Pollaczek-Khinchine, rho at most 0.95: beyond, the chain's own saturation takes over). The
    prompt then takes ``k0 = ceil(in/m)`` steps for fixed lengths, else ``1/(1 - exp(-m/in))``
    (:func:`optimizer.model.service_time.prefill_steps`), with m = B when idle (probability p_0)
    and ``B - d`` when busy, and waits ``k - k0`` full steps more, k the same count for ``in + R``
    tokens. Example: in 512 fixed, B 512, p_0 = 0.4, d = 5, R = 0: k0 = 0.4*1 + 0.6*2 = 1.6 steps.
    """
    budget = chunks.budget_tokens
    limited = np.isfinite(budget) & (chunks.in_tokens > 0)
    own = step_ms + chunks.own_ms
    if not limited.any():
        return own
    safe_budget = np.where(limited, budget, 1.0)
    busy = 1.0 - state.idle_prob
    decodes = np.minimum(state.busy / np.maximum(busy, 1e-12), safe_budget - 1.0)
    room = np.maximum(safe_budget - decodes, 1.0)
    full_ms = step_ms + chunks.token_ms * room
    speed = room / np.maximum(full_ms, 1e-9)
    rate = state.throughput_rps / 1000.0
    load = np.minimum(rate * chunks.in_tokens / speed, MAX_PROMPT_LOAD)
    ahead = rate * chunks.in_sq_tokens / (2.0 * speed * (1.0 - load))
    prompt = np.maximum(chunks.in_tokens, 1.0)

    def steps(tokens: FloatArray, extra: FloatArray) -> FloatArray:
        def count(m: FloatArray) -> FloatArray:
            exact = np.maximum(np.ceil(tokens / m - 1e-9), 1.0) + extra / m
            spread = 1.0 / -np.expm1(-m / (tokens + extra))
            return np.where(chunks.exact, exact, spread)

        return state.idle_prob * count(safe_budget) + busy * count(room)

    alone = steps(prompt, np.zeros_like(prompt))
    behind = steps(prompt, ahead) - alone
    chunked = alone * step_ms + behind * full_ms + chunks.own_ms
    return np.where(limited, chunked, own)


def _grouped_admit_batch(rows: RowSet, state: QueueState, residual_ms: FloatArray) -> FloatArray:
    """Prefill-first: the batch that sets a request's own prefill step, ``n_direct*k + c*N*P(n >=
    N)``. A request admitted at once is prefilled in one step with the prompts that arrived during
    the step it arrived in, whose mean length (as arrivals see it) is twice the residual R, so its
    group is ``k = 1 + 2*X*R`` prompts and the step ``gamma + delta*in*k*n``; a queued one is refilled
    with its cohort of c (:attr:`optimizer.model.queue.QueueState.admit_batch`). Example: X = 1.321
    req/s, R = 59 ms: k = 1.156."""
    queued = rows.queue.refill_group * rows.queue.batch * state.full_prob
    group = 1.0 + 2.0 * state.throughput_rps * residual_ms / 1000.0
    grouped: FloatArray = (state.admit_batch - queued) * group + queued
    return grouped


def _residual_ms(rows: RowSet, state: QueueState, features: FloatArray) -> FloatArray:
    """Mean rest of the iteration in progress when a request arrives (Poisson arrivals see time
    averages): ``((busy - phi) * d + phi * f) / 2``, with busy = 1 - p_0 the share of time the engine
    runs, ``phi = min(X * f / 1000, busy)`` the share spent in batch-stalling prefills (one per
    admitted request) and d, f the decode and prefill iterations at n_eff. Example: busy 0.9,
    X = 0.3 req/s, f = 180 ms, d = 25 ms: phi = 0.054, residual = (0.846*25 + 0.054*180)/2 = 15.4 ms.
    """
    step = np.einsum("ij,ij->i", rows.step_coef, features)
    stall = np.einsum("ij,ij->i", rows.stall_coef, features)
    busy = 1.0 - state.idle_prob
    phi = np.minimum(state.throughput_rps * stall / 1000.0, busy)
    residual: FloatArray = 0.5 * ((busy - phi) * step + phi * stall)
    return residual
