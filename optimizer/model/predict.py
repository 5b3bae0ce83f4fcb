"""What one replica delivers at a given arrival rate: the model's prediction, scalar or vectorised.

Role: the public face of the performance model. Callers: :mod:`optimizer.candidates` (ITL, TTFT
and utilisation of every candidate at its actual per-replica load) and the load-emulator
benchmark, which compares :func:`predict` against emulated vLLM replicas.

``predict(perf, batch, in_tokens, out_tokens, rate_rps, settings)`` builds the schema's service
model (:mod:`optimizer.model.service_time`), the replica chain with queue room
``settings.max_queue_factor * batch`` (:mod:`optimizer.model.queue`) and evaluates it. At zero
load it returns the limit lambda -> 0 (a lone request: no wait, ``S = S(1)``).

Example: granite_13b on A100 (decode-only, alpha 20.58, beta 0.41 ms), out 1024 tokens, N = 16,
0.3 req/s: about 23.5 ms ITL, a few seconds below the 0.576 req/s saturation of the replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optimizer.data.perf import PerfParams
from optimizer.model.latency import DEFAULT_CHUNK_ELEMENTS, chunks_by_batch, evaluate, row_set
from optimizer.model.service_time import ServiceModel, service_model
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


def predict_many(
    services: Sequence[ServiceModel],
    batches: Sequence[int],
    rooms: Sequence[int],
    *,
    rates_rps: Sequence[float],
    percentiles: Sequence[float],
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> list[Prediction]:
    """One prediction per row; ``percentiles[i]`` in (0, 100) also computes that TTFT percentile."""
    out: list[Prediction | None] = [None] * len(services)
    for group in chunks_by_batch(batches, chunk_elements):
        rows = row_set([services[i] for i in group], [batches[i] for i in group], [rooms[i] for i in group])
        rates = np.array([rates_rps[i] for i in group], dtype=np.float64)
        zero = rates <= 0
        zero_load = np.log(_ZERO_LOAD_SHARE) + rows.log_mu_one
        log_rate = np.where(zero, zero_load, np.log(np.where(zero, 1.0, rates)))
        lat = evaluate(rows, log_rate)
        pct = np.array([percentiles[i] for i in group], dtype=np.float64)
        quantile = np.zeros_like(rates)
        wanted = np.flatnonzero(pct > 0)
        if wanted.size:
            state = type(lat.state)(*(a[wanted] for a in lat.state))
            wait = wait_quantile_ms(
                state, rows.log_mu_top[wanted], rows.queue.room[wanted], 1.0 - pct[wanted] / 100.0
            )
            quantile[wanted] = wait + lat.prefill_ms[wanted]
        s = lat.state
        for k, i in enumerate(group):
            out[int(i)] = Prediction(
                rate_rps=max(float(rates[k]), 0.0),
                throughput_rps=0.0 if zero[k] else float(s.throughput_rps[k]),
                itl_ms=float(lat.itl_ms[k]),
                ttft_ms=float(lat.ttft_ms[k]),
                ttft_percentile_ms=float(quantile[k]),
                wait_ms=float(s.wait_ms[k]),
                service_ms=float(s.service_ms[k]),
                utilization=0.0 if zero[k] else float(s.utilization[k]),
                in_system=0.0 if zero[k] else float(s.in_system[k]),
                block_prob=0.0 if zero[k] else float(s.block_prob[k]),
            )
    return [p for p in out if p is not None]


def predict(  # noqa: PLR0917 - the load emulator's benchmark calls it positionally
    perf: PerfParams,
    batch: int,
    in_tokens: float,
    out_tokens: float,
    rate_rps: float,
    settings: OptimizerSettings,
    ttft_percentile: float = 0.0,
) -> Prediction:
    """Prediction for one replica of batch ``batch`` at ``rate_rps`` (ValueError on bad input)."""
    model = service_model(perf, in_tokens, out_tokens)
    room = settings.max_queue_factor * batch
    return predict_many([model], [batch], [room], rates_rps=[rate_rps], percentiles=[ttft_percentile])[0]
