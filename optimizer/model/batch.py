"""Batch size N (vLLM ``--max-num-seqs``) of a replica: the default rule and the optimal search.

Role: pick N before sizing. Caller: :mod:`optimizer.candidates`, per (server, accelerator).

- Default (inferno): model data profiles ``maxBatchSize`` requests at ``atTokens`` tokens each,
  i.e. a KV budget of ``maxBatchSize * atTokens`` tokens, so with ``out`` output tokens per request
  ``N = floor(maxBatchSize * atTokens / out)``, at least 1; ``atTokens = 0`` means N =
  maxBatchSize. A server's own ``maxBatchSize`` (> 0) overrides the rule.
  Example: granite_13b on A100, maxBatchSize 32 at 512 tokens, out 1024 -> N = 16; out 128 -> 128.
- Optimal (``settings.batch_policy == "optimal"``): the default N is the ceiling; every N in
  1..ceiling is sized and the smallest N whose SLO-bound rate per replica reaches 99 % of the best
  is chosen (a smaller batch gives lower ITL and less memory pressure for the same throughput).
  Cost: ceiling sizing rows per candidate, O(ceiling^2) states, so it is much slower than the
  default for large ceilings; sizing requests are shared across equal (model, tokens, targets).

  Example (inferno v0.7 data, granite_13b on A100: perfParms alpha 20.58, beta 0.041, gamma
  0.00128125, maxBatchSize 64 at 512 tokens; in 128, out 1024 with the default, geometric-like
  spread; ITL 40 ms, TTFT 1000 ms): the ceiling is N = 32, sized at 0.2873 req/s per replica
  (ITL binds). Below N = 20 the mean TTFT binds and the rate falls with N (N = 19: 0.2838, N =
  16: 0.2537); N = 20 gives the best rate, 0.2890, and is the smallest within 1 % of it (0.99 *
  0.2890 = 0.2861 > 0.2838), so N = 20.
- KV cache: no batch above what the replica's KV cache holds on average
  (:meth:`optimizer.model.service_time.ServiceModel.kv_batch`): more slots only make vLLM
  preempt. The caller applies it to the default and to the ceiling of the search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from optimizer.model.service_time import ServiceModel
from optimizer.model.sizing import SizingRequest, SizingResult, Targets, size_rates

OPTIMAL_SHARE = 0.99
"""The optimal batch is the smallest reaching this share of the best per-replica rate."""


def default_batch(max_batch_size: int, at_tokens: float, out_tokens: float, server_max_batch: int = 0) -> int:
    """``floor(max_batch_size * at_tokens / out_tokens)`` (>= 1); see the module docstring."""
    if server_max_batch > 0:
        return server_max_batch
    if at_tokens <= 0 or out_tokens <= 0:
        return max(max_batch_size, 1)
    # The small epsilon keeps exact ratios (32*512/1024 = 16) from flooring to 15 on rounding.
    return max(1, math.floor(max_batch_size * at_tokens / out_tokens + 1e-9))


def batch_search_requests(  # noqa: PLR0917 - the sizing inputs of one (server, accelerator)
    service: ServiceModel,
    ceiling: int,
    queue_factor: int,
    targets: Targets,
    rate_cap: float,
    kv_tokens: float = 0.0,
) -> list[SizingRequest]:
    """One sizing request per N = 1..ceiling (queue room ``queue_factor * N``; the replica's KV
    cache ``kv_tokens``, 0: no limit)."""
    return [
        SizingRequest(service, n, queue_factor * n, targets, rate_cap, kv_tokens)
        for n in range(1, ceiling + 1)
    ]


def pick_optimal(results: Sequence[SizingResult]) -> int:
    """Index into ``results`` (sized for N = 1..ceiling) of the chosen batch; the last one when no
    N is feasible, so the caller reports the ceiling's infeasibility reason."""
    best = max((r.max_rate_rps for r in results), default=0.0)
    if best <= 0:
        return len(results) - 1
    return next(i for i, r in enumerate(results) if r.max_rate_rps >= OPTIMAL_SHARE * best)


def optimal_batch(
    service: ServiceModel, ceiling: int, queue_factor: int, targets: Targets, rate_cap: float
) -> tuple[int, SizingResult]:
    """The optimal batch size and its sizing, searching N = 1..ceiling."""
    results = size_rates(batch_search_requests(service, ceiling, queue_factor, targets, rate_cap))
    index = pick_optimal(results)
    return index + 1, results[index]
