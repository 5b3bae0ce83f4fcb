"""What one replica delivers at a given arrival rate: the model's prediction, scalar or vectorised.

Role: the public face of the performance model. Callers: :mod:`optimizer.candidates` (ITL, TTFT
and utilisation of every candidate at its actual per-replica load) and the load-emulator
benchmark, which compares :func:`predict` against emulated vLLM replicas.

``predict(perf, batch, in_tokens, out_tokens, rate_rps, settings)`` builds the schema's service
model (:mod:`optimizer.model.service_time`), the replica chain (:mod:`optimizer.model.queue`:
unbounded queue below saturation, room ``settings.max_queue_factor * batch`` at or above it) and
evaluates it. At zero
load it returns the limit lambda -> 0 (a lone request: no wait, ``S = S(1)``).

Example: granite_13b on A100 (decode-only, alpha 20.58, beta 0.41 ms), out 1024 tokens, N = 16,
Q = 160, at 0.3 req/s: ITL 24.01 ms, mean wait 27.8 ms, TTFT 63.8 ms (wait, ITL and 12.0 ms left
of the iteration in progress), utilisation 0.461, 7.38 requests in the replica (saturation is
0.5757 req/s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from contract.data.perf import PerfParams
from optimizer.model.latency import evaluate, row_set
from optimizer.model.service_time import GEOMETRIC, LengthSpread, ServiceModel, service_model
from optimizer.model.sizing import SizingRequest
from optimizer.model.tail import wait_quantile_ms
from optimizer.settings import OptimizerSettings

_ZERO_LOAD_SHARE = 1e-12
"""A zero rate is evaluated at this share of mu_1: the lambda -> 0 limit to ~1e-12."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """Steady state of one replica. Rates in req/s, times in ms."""

    rate_rps: float
    throughput_rps: float
    """Admitted rate, ``rate * (1 - block_prob)``."""
    itl_ms: float
    ttft_ms: float
    """Mean TTFT: wait plus prefill."""
    ttft_percentile_ms: float
    """TTFT at the requested percentile (0 when none was requested)."""
    wait_ms: float
    service_ms: float
    utilization: float
    """Mean share of batch slots busy, Ls/N."""
    in_system: float
    block_prob: float
    saturation_rps: float = 0.0
    """The chain's saturation rate mu_N (batch, token budget and KV cache permitting)."""


def predict_many(
    services: Sequence[ServiceModel],
    batches: Sequence[int],
    rooms: Sequence[int],
    *,
    rates_rps: Sequence[float],
    percentiles: Sequence[float],
    kv_tokens: Sequence[float] | None = None,
) -> list[Prediction]:
    """One prediction per row; ``percentiles[i]`` in (0, 100) also computes that TTFT percentile;
    ``kv_tokens[i]`` is the replica's KV cache (0 or None: no limit)."""
    if not services:
        return []
    rows = row_set(services, batches, rooms, kv_tokens)
    rates = np.asarray(rates_rps, dtype=np.float64)
    zero = rates <= 0
    zero_load = np.log(_ZERO_LOAD_SHARE) + rows.queue.log_mu_one
    lat = evaluate(rows, np.where(zero, zero_load, np.log(np.where(zero, 1.0, rates))))
    pct = np.asarray(percentiles, dtype=np.float64)
    quantile = np.zeros_like(rates)
    wanted = np.flatnonzero(pct > 0)
    if wanted.size:
        q = rows.queue
        wait = wait_quantile_ms(
            lat.state.take(wanted), q.log_wait_rate[wanted], lat.state.room[wanted], 1.0 - pct[wanted] / 100.0
        )
        quantile[wanted] = wait + lat.prefill_ms[wanted]
    s = lat.state
    loaded = ~zero
    columns = zip(
        np.maximum(rates, 0.0).tolist(),
        np.where(loaded, s.throughput_rps, 0.0).tolist(),
        lat.itl_ms.tolist(),
        lat.ttft_ms.tolist(),
        quantile.tolist(),
        s.wait_ms.tolist(),
        s.service_ms.tolist(),
        np.where(loaded, s.utilization, 0.0).tolist(),
        np.where(loaded, s.in_system, 0.0).tolist(),
        np.where(loaded, s.block_prob, 0.0).tolist(),
        np.exp(rows.queue.log_mu_top).tolist(),
        strict=True,
    )
    return [Prediction(*values) for values in columns]


def predict_requests(requests: Sequence[SizingRequest], rates_rps: Sequence[float]) -> list[Prediction]:
    """Predictions for sized rows (service model, batch, room; the TTFT percentile of the targets
    when there is a percentile target) at the given rates. Equal (request object, rate) pairs,
    common when many servers share a sizing, are evaluated once."""
    index: dict[tuple[int, float], int] = {}
    row_of = [
        index.setdefault((id(r), rate), len(index)) for r, rate in zip(requests, rates_rps, strict=True)
    ]
    first = {row: r for r, row in zip(requests, row_of, strict=True)}
    unique = [first[row] for row in range(len(index))]
    predicted = predict_many(
        [r.service for r in unique],
        [r.batch for r in unique],
        [r.room for r in unique],
        rates_rps=[rate for _, rate in index],
        percentiles=[r.targets.ttft_percentile if r.targets.ttft_ms > 0 else 0.0 for r in unique],
        kv_tokens=[r.kv_tokens for r in unique],
    )
    return [predicted[row] for row in row_of]


def predict(  # noqa: PLR0917 - the load emulator's benchmark calls it positionally
    perf: PerfParams,
    batch: int,
    in_tokens: float,
    out_tokens: float,
    rate_rps: float,
    settings: OptimizerSettings,
    ttft_percentile: float = 0.0,
    *,
    spread: LengthSpread = GEOMETRIC,
    budget_tokens: float | None = None,
    kv_tokens: float = 0.0,
) -> Prediction:
    """Prediction for one replica of batch ``batch`` at ``rate_rps`` (ValueError on bad input):
    lengths of that ``spread``, a token budget per step (None: ``settings.max_num_batched_tokens``)
    and a KV cache of ``kv_tokens`` (0: no limit)."""
    budget = settings.max_num_batched_tokens if budget_tokens is None else budget_tokens
    model = service_model(perf, in_tokens, out_tokens, spread=spread, budget_tokens=budget)
    room = settings.max_queue_factor * batch
    return predict_many(
        [model], [batch], [room], rates_rps=[rate_rps], percentiles=[ttft_percentile], kv_tokens=[kv_tokens]
    )[0]
