"""Request service time ``S(n)`` and the latency formulas of the three inferno performance schemas.

Role: turn typed perf parameters (:mod:`contract.data.perf`) plus a load's mean token counts into
one :class:`ServiceModel`, the only thing the queueing code needs. Callers: :mod:`optimizer.model.
latency` (vectorised evaluation), :mod:`optimizer.model.predict`, :mod:`optimizer.candidates`.

All three schemas give a service time that is *linear* in the number ``n`` of requests in the
batch, ``S(n) = base_ms + slope_ms * n``, and latencies that are linear in four features of the
queue's steady state, ``(1, S, Ls, n_eff)``: S the mean service time (ms), Ls the mean number in
service, ``n_eff = clip((S - base_ms) / slope_ms, 0, N)`` the concurrency at which ``S(n_eff) = S``.
So ``ITL = itl_coef . (1, S, Ls, n_eff)`` and ``TTFT = W + prefill_coef . (1, S, Ls, n_eff)``, with
W the mean queueing wait. This keeps the hot code schema-free and vectorised; the per-schema
builders below state each formula. Times in ms, ``in``/``out`` the mean input/output tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.data.perf import (
    DecodeOnlyPerf,
    IterationPerf,
    PerfParams,
    PrefillDecodePerf,
    StepPerf,
    as_step_perf,
)

Coefficients = tuple[float, float, float, float]
"""Weights of the features ``(1, S_ms, Ls, n_eff)`` of a latency in ms."""


@dataclass(frozen=True, slots=True)
class ServiceModel:
    """``S(n) = base_ms + slope_ms * n`` (without stalls) and the linear latency forms of one schema
    and load; see :mod:`optimizer.model.queue` for how stalls stretch it."""

    base_ms: float
    slope_ms: float
    itl_coef: Coefficients
    prefill_coef: Coefficients
    schema: str
    stretch_base_ms: float = 0.0
    stretch_slope_ms: float = 0.0
    """The decode part ``(out-1)*d(n) = stretch_base + stretch_slope*n`` of ``S(n)`` that batch-stalling
    prefills stretch (prefill-first); 0 when prefills do not stall the batch."""
    stall_base_ms: float = 0.0
    stall_slope_ms: float = 0.0
    """One batch-stalling prefill iteration ``f(n) = stall_base + stall_slope*n``; 0 when none stalls."""
    step_coef: Coefficients = (0.0, 0.0, 0.0, 0.0)
    """The mean decode iteration ``d`` (ms) over the features: a newcomer that finds the engine
    busy first waits for the iteration in progress to end (mean residual ``d/2``)."""
    stall_coef: Coefficients = (0.0, 0.0, 0.0, 0.0)
    """The mean prefill iteration ``f`` (ms) when prefills run alone and stall the batch
    (prefill-first); 0 when they do not."""

    def service_ms(self, in_service: float) -> float:
        """``S(n)`` in ms for n requests in service."""
        return self.base_ms + self.slope_ms * in_service

    def stall_ms(self, in_service: float) -> float:
        """``f(n)``: a batch-stalling prefill iteration with n requests in the batch (0 if none)."""
        return self.stall_base_ms + self.stall_slope_ms * in_service

    def saturated_service_ms(self, batch: int) -> float:
        """Mean stay with the batch full and a queue: ``S(N) + (N-1)*f(N)``. Each finishing request
        lets one queued request in, whose prefill stalls the N - 1 others."""
        return self.service_ms(batch) + (batch - 1) * self.stall_ms(batch)

    def service_rate_rps(self, in_service: int) -> float:
        """Completion rate with n in service: ``mu_n = 1000 * n / S(n)`` requests per second."""
        return 1000.0 * in_service / self.service_ms(in_service)


def decode_only(perf: DecodeOnlyPerf, out_tokens: float) -> ServiceModel:
    """Decode-only (inferno v0.1): ``t(n) = alpha + beta*n``, ``S(n) = out * t(n)``, ``ITL = S/out``.

    There is no prefill term: a request joins the batch at the next iteration boundary and its
    first token comes out of its first iteration, so ``TTFT = W + ITL + residual``, the residual
    being the rest of the iteration in progress, ``(1 - p_0) * ITL / 2`` (the older ``slo-ttw``
    target bounds W alone). Without the residual the model is 26-33 % under the emulator's mean
    TTFT at 10-30 % load (granite_13b on A100, N = 16; benchmarks/results/accuracy.md).

    Example (granite_13b on A100: alpha 20.58 ms, beta 0.41 ms; out 1024 tokens):
    ``S(n) = 21073.92 + 419.84 n`` ms, so ``S(1) = 21493.76`` ms and ``mu_1 = 0.04653`` req/s;
    with N = 16, ``mu_16 = 16000 / 27791.36 = 0.5757`` req/s. A mean service time S = 24000 ms
    gives ``ITL = 24000 / 1024 = 23.44`` ms.
    """
    return ServiceModel(
        base_ms=out_tokens * perf.alpha_ms,
        slope_ms=out_tokens * perf.beta_ms,
        itl_coef=(0.0, 1.0 / out_tokens, 0.0, 0.0),
        prefill_coef=(0.0, 1.0 / out_tokens, 0.0, 0.0),
        schema=perf.kind,
        step_coef=(0.0, 1.0 / out_tokens, 0.0, 0.0),
    )


def prefill_decode(perf: PrefillDecodePerf, in_tokens: float, out_tokens: float) -> ServiceModel:
    """Prefill + decode (inferno v0.6) on a prefill-first engine (vLLM V0 without chunked prefill):
    ``d(n) = alpha + beta*n`` per decode iteration and ``f(n) = gamma + delta*in*n`` per prefill
    iteration, which runs *alone*: every running request waits for it.

    Alone, a request takes ``S(n) = f(n) + (out-1)*d(n)`` (inferno's formula). In a batch its
    decode iterations are also interrupted by the other requests' prefills, so the queue
    (:mod:`optimizer.model.queue`) stretches the decode part by ``1/(1 - s)``, s the share of time
    spent in prefills: with free batch slots every arrival is prefilled at once, ``s = lambda *
    f``; with the batch full and a queue, a prefill follows each completion, so a request stays
    ``S(N) + (N-1)*f(N)`` and the saturation rate is ``mu_N = 1 / (f(N) + (out-1)*d(N)/N)``:
    prefills are paid serially, only decodes are shared. (Inferno's ``mu_N = N / S(N)`` shares
    prefills too: ~10 % too high on samples/large, which under-states the wait near saturation
    2-3x; see benchmarks/results/accuracy.md.)

    ``n_eff`` solves ``S'(n_eff) = S`` on the stretched line (clipped to [0, N]). ``ITL = (S -
    f(n_eff))/(out-1)``: decode iterations plus the other requests' prefills, per token.
    ``TTFT = W + f(n_eff) + residual``, the residual being the rest of the iteration in progress
    when the request arrives (:func:`optimizer.model.latency.evaluate`, from ``step_coef`` and
    ``stall_coef``). ``out - 1`` is floored at 0: with one output token there is no decode.

    Example (granite_13b on A100: alpha 20.58, beta 0.41, gamma 164.64, delta 0.0128125; in 128,
    out 1024): ``S(n) = 21217.98 + 421.07 n`` ms, ``f(16) = 190.88`` ms, so with N = 16 the
    saturated stay is ``S(16) + 15*190.88 = 30818.3`` ms and mu_16 = 0.5192 req/s (inferno:
    0.5723). A mean stay S = 24000 ms on the unstretched line gives ``n_eff = 6.607``, ``f =
    175.48`` ms and ``ITL = (24000 - 175.48)/1023 = 23.29`` ms.
    """
    decode_steps = max(out_tokens - 1.0, 0.0)
    prefill_per_n = perf.delta_ms * in_tokens
    if decode_steps > 0:
        itl_coef = (-perf.gamma_ms / decode_steps, 1.0 / decode_steps, 0.0, -prefill_per_n / decode_steps)
    else:
        itl_coef = (perf.alpha_ms, 0.0, 0.0, perf.beta_ms)
    return ServiceModel(
        base_ms=perf.gamma_ms + decode_steps * perf.alpha_ms,
        slope_ms=prefill_per_n + decode_steps * perf.beta_ms,
        itl_coef=itl_coef,
        prefill_coef=(perf.gamma_ms, 0.0, 0.0, prefill_per_n),
        schema=perf.kind,
        stretch_base_ms=decode_steps * perf.alpha_ms,
        stretch_slope_ms=decode_steps * perf.beta_ms,
        stall_base_ms=perf.gamma_ms,
        stall_slope_ms=prefill_per_n,
        step_coef=(perf.alpha_ms, 0.0, 0.0, perf.beta_ms),
        stall_coef=(perf.gamma_ms, 0.0, 0.0, prefill_per_n),
    )


def iteration(perf: IterationPerf | StepPerf, in_tokens: float, out_tokens: float) -> ServiceModel:
    """Iteration model (inferno v0.7): one engine step of a batch of n takes
    ``T(n) = alpha + n*(beta*(in+out)/(out+1) + gamma*(in+out/2))``; the prefill step is
    ``P(n) = T(n) + (beta+gamma)*in``, a decode step ``D(n) = T(n) + beta + gamma*(in+(out+1)/2)``,
    and ``S(n) = P(n) + out*D(n)`` (inferno's formula). Latencies use the mean number in service Ls:
    ``ITL = D = (S - P(Ls)) / out`` and ``TTFT = W + P(Ls) + residual``: the step that runs the
    prompt (mixed with the others' decodes under chunked prefill, vLLM V1's default) samples the
    first token, as vLLM does and as the prefill+decode schema reads it; the residual is the rest
    of the step in progress, ``(1 - p_0) * D / 2`` (:func:`optimizer.model.latency.evaluate`).
    (Inferno's ``P + D`` counted one decode step more: +23 ms, ~+45 % of the mean TTFT at light
    load against the emulated V1 engine; benchmarks/results/accuracy.md.)

    With ``P(Ls) = P0 + k*Ls`` (``P0 = alpha + (beta+gamma)*in``, ``k`` the per-request slope of
    T) the forms are ``ITL = (S - P0 - k*Ls)/out`` and ``prefill = P0 + k*Ls``.

    Example (granite_13b on A100: alpha 20.58, beta 0.041, gamma 0.00128125; in 128, out 1024):
    ``k = 0.86608`` ms, ``P0 = 25.992`` ms, ``S(n) = 21982.23 + 887.73 n`` ms. At S = 24000 ms
    and Ls = 2: ``P(Ls) = 27.724``, ``ITL = (24000 - 27.724)/1024 = 23.41`` ms and a prefill of
    27.724 ms (plus the residual).
    """
    step = as_step_perf(perf)
    computed_ms = step.per_prefill_token_ms * in_tokens + step.per_decode_ms * out_tokens
    context_ms = step.per_context_token_ms
    per_request_ms = computed_ms / (out_tokens + 1.0) + context_ms * (in_tokens + out_tokens / 2.0)
    prefill0_ms = step.fixed_ms + (step.per_prefill_token_ms + context_ms) * in_tokens
    decode0_ms = step.fixed_ms + step.per_decode_ms + context_ms * (in_tokens + (out_tokens + 1.0) / 2.0)
    inv_out = 1.0 / out_tokens
    itl_coef = (-prefill0_ms * inv_out, inv_out, -per_request_ms * inv_out, 0.0)
    return ServiceModel(
        base_ms=prefill0_ms + out_tokens * decode0_ms,
        slope_ms=(1.0 + out_tokens) * per_request_ms,
        itl_coef=itl_coef,
        prefill_coef=(prefill0_ms, 0.0, per_request_ms, 0.0),
        schema=perf.kind,
        step_coef=itl_coef,
    )


def service_model(perf: PerfParams, in_tokens: float, out_tokens: float) -> ServiceModel:
    """The :class:`ServiceModel` of any schema. ``out_tokens`` must be > 0 (ValueError otherwise)."""
    if not out_tokens > 0:
        raise ValueError(f"output tokens per request must be > 0, got {out_tokens!r}")
    if isinstance(perf, DecodeOnlyPerf):
        model = decode_only(perf, out_tokens)
    elif isinstance(perf, PrefillDecodePerf):
        model = prefill_decode(perf, in_tokens, out_tokens)
    else:
        model = iteration(perf, in_tokens, out_tokens)
    if not model.base_ms + model.slope_ms > 0:
        raise ValueError(f"{perf.kind} parameters give a zero service time: {perf}")
    return model
