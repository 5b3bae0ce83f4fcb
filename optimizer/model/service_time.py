"""Request service time ``S(n)`` and the latency formulas of the performance schemas.

Role: turn typed perf parameters (:mod:`contract.data.perf`) plus a load's token counts (means,
and their spread: :class:`LengthSpread`) into one :class:`ServiceModel`, the only thing the
queueing code needs. Callers: :mod:`optimizer.model.latency` (vectorised evaluation),
:mod:`optimizer.model.predict`, :mod:`optimizer.candidates`.

Every schema gives a service time that is *linear* in the number ``n`` of requests in the
batch, ``S(n) = base_ms + slope_ms * n``, and an ITL that is linear in four features of the
queue's steady state, ``(1, S, Ls, n_eff)``: S the mean service time (ms), Ls the mean number in
service, ``n_eff = clip((S - base_ms) / slope_ms, 0, N)`` the concurrency at which ``S(n_eff) = S``.
So ``ITL = itl_coef . (1, S, Ls, n_eff)`` and ``TTFT = W + prefill_coef . (1, S, Ls, n_eff)``, with
W the mean queueing wait; on a chunked engine (step and iteration schemas) ``prefill_coef`` is one
prefill step, paid once per step the prompt takes, which depends on the load
(:func:`optimizer.model.latency.prefill_ms_at`). This keeps the hot code schema-free and
vectorised; the per-schema builders below state each formula. Times in ms, ``in``/``out`` the
mean input/output tokens. The KV cache a request holds, the token budget's batch and the spread's
effect on the wait are fields too; :meth:`ServiceModel.chain_batch` turns them into the chain's
batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from contract.data.perf import (
    DecodeOnlyPerf,
    IterationPerf,
    PerfParams,
    PrefillDecodePerf,
    StepPerf,
    as_step_perf,
)

FloatArray = NDArray[np.float64]
Coefficients = tuple[float, float, float, float]
"""Weights of the features ``(1, S_ms, Ls, n_eff)`` of a latency in ms."""


@dataclass(frozen=True, slots=True)
class LengthSpread:
    """Squared coefficients of variation (variance / mean^2) of the input and output lengths.

    The collector reads them from vLLM's ``vllm:request_prompt_tokens`` and
    ``vllm:request_generation_tokens`` histograms (second moment from the buckets). The default,
    1 and 1, is the exponential-like (geometric) spread the model assumed before it had them;
    fixed lengths are 0 and 0. Example: the Azure 2023 conversation trace, 0.92 and 0.60.
    """

    in_cv2: float = 1.0
    out_cv2: float = 1.0
    correlation: float = 0.0
    """Pearson correlation of a request's input and output lengths (0: independent)."""

    def __post_init__(self) -> None:
        if not (self.in_cv2 >= 0 and self.out_cv2 >= 0 and math.isfinite(self.in_cv2 + self.out_cv2)):
            raise ValueError(f"length spreads must be finite and >= 0, got {self.in_cv2}, {self.out_cv2}")
        if not -1.0 <= self.correlation <= 1.0:
            raise ValueError(f"length correlation must be in [-1, 1], got {self.correlation}")

    def kv_tokens(self, in_tokens: float, out_tokens: float) -> float:
        """Mean KV a request holds over its stay, ``E[in*out + out^2/2] / out`` tokens (prefill
        time neglected): ``cross*in + (1 + cv_out^2)*out/2``."""
        return self.cross() * in_tokens + (1.0 + self.out_cv2) * out_tokens / 2.0

    def kv_wait_scale(self) -> float:
        """``(1 + cv^2)/2`` of a request's KV-time, ``(1 + cv_in^2)(1 + cv_out^2)*cross^2 / 2``
        (at least the output's own ``(1 + cv_out^2)/2``). Default spread: 2; fixed lengths: 1/2."""
        product = (1.0 + self.in_cv2) * (1.0 + self.out_cv2) * self.cross() ** 2 / 2.0
        return max(product, (1.0 + self.out_cv2) / 2.0)

    def cross(self) -> float:
        """``E[in*out] / (E[in]*E[out]) = 1 + correlation*sqrt(in_cv2*out_cv2)``."""
        return 1.0 + self.correlation * math.sqrt(self.in_cv2 * self.out_cv2)


GEOMETRIC = LengthSpread()
KV_BLOCK_TOKENS = 16
"""vLLM's default KV block (``--block-size``); a request wastes half a block on average."""


@dataclass(frozen=True, slots=True)
class ServiceModel:
    """``S(n) = base_ms + slope_ms * n`` (without stalls) and the linear latency forms of one schema
    and load; see :mod:`optimizer.model.queue` for how stalls stretch it."""

    base_ms: float
    slope_ms: float
    itl_coef: Coefficients
    prefill_coef: Coefficients
    schema: str
    stall_base_ms: float = 0.0
    stall_slope_ms: float = 0.0
    """One batch-stalling prefill iteration ``f(n) = stall_base + stall_slope*n``; 0 when none stalls."""
    refill_cap: float = 1.0
    """Prefill-first: the most prompts one refill prefill serves, the cohort bound of
    :func:`refill_prompts` (1: one prompt per refill, as when output lengths vary)."""
    step_coef: Coefficients = (0.0, 0.0, 0.0, 0.0)
    """The mean decode iteration ``d`` (ms) over the features: a newcomer that finds the engine
    busy first waits for the iteration in progress to end (mean residual ``d/2``)."""
    stall_coef: Coefficients = (0.0, 0.0, 0.0, 0.0)
    """The mean prefill iteration ``f`` (ms) when prefills run alone and stall the batch
    (prefill-first); 0 when they do not."""
    prefill_own_ms: float = 0.0
    """Chunked engines: the prompt's own work (its tokens and contexts), paid once; the
    ``prefill_coef`` line is then one prefill step, paid once per step the prompt takes."""
    chunk_in_tokens: float = 0.0
    """Chunked engines: the mean prompt (0: a prompt takes one step, as in the older schemas)."""
    chunk_in_sq_tokens: float = 0.0
    """``E[in^2]``: the prompts ahead of a newcomer in the step queue (their residual work)."""
    chunk_exact: bool = True
    """Fixed prompt lengths: ``ceil(in/room)`` steps; else the mean of an exponential spread."""
    chunk_token_ms: float = 0.0
    """Chunked engines: the cost of one prompt token in a step."""
    budget_tokens: float = math.inf
    """The token budget per step (``max_num_batched_tokens``); inf: none."""
    budget_batch: float = math.inf
    """The most requests in service the budget sustains (a step is full there); inf: no limit."""
    kv_request_tokens: float = 0.0
    """Mean KV cache a request in service holds (tokens), weighted by its time in service."""
    wait_scale: float = 1.0
    """Queueing wait relative to the chain's (exponential service): ``(1 + cv^2)/2`` with cv^2 the
    output length's (Allen-Cunneen, Poisson arrivals): 1/2 for fixed lengths."""
    kv_wait_scale: float = 1.0
    """The same where the KV cache bounds the batch: what a request holds is then its KV over its
    stay, about ``in*out``, whose cv^2 is ``(1 + cv_in^2)(1 + cv_out^2)*cross^2 - 1`` (jointly
    lognormal lengths; cross = :meth:`LengthSpread.cross`)."""

    def service_ms(self, in_service: float) -> float:
        """``S(n)`` in ms for n requests in service."""
        return self.base_ms + self.slope_ms * in_service

    def stall_ms(self, in_service: float) -> float:
        """``f(n)``: a batch-stalling prefill iteration with n requests in the batch (0 if none)."""
        return self.stall_base_ms + self.stall_slope_ms * in_service

    def saturated_service_ms(self, batch: int) -> float:
        """Mean stay with the batch full and a queue: ``S(N) + (N-1)*f(N)`` when each finishing
        request lets one queued request in, whose prefill stalls the N - 1 others; with cohorts of
        c (:func:`refill_prompts`) the N refills per stay share ``gamma`` c at a time:
        ``D*d(N) + N*(gamma/c + delta*in*N)``."""
        decode_ms = self.service_ms(batch) - self.stall_ms(batch)
        if self.stall_base_ms + self.stall_slope_ms <= 0:
            return decode_ms
        prefill_n = self.stall_slope_ms * batch
        cohort = refill_prompts(
            np.array([decode_ms / batch]),
            np.array([self.stall_base_ms]),
            np.array([prefill_n]),
            np.array([min(self.refill_cap, batch)]),
        )
        return decode_ms + batch * (self.stall_base_ms / float(cohort[0]) + prefill_n)

    def service_rate_rps(self, in_service: int) -> float:
        """Completion rate with n in service: ``mu_n = 1000 * n / S(n)`` requests per second."""
        return 1000.0 * in_service / self.service_ms(in_service)

    def kv_batch(self, kv_tokens: float, block_tokens: int = KV_BLOCK_TOKENS) -> int:
        """Requests the KV cache holds on average, ``floor(kv / (kv_request + (block-1)/2))``
        (>= 1; a large number when ``kv_tokens`` <= 0, unknown). Example: 32,000 tokens, 512 in /
        256 out fixed: 32000 / (639.5 + 7.5) = 49.5 -> 49."""
        if kv_tokens <= 0 or self.kv_request_tokens <= 0:
            return 1 << 30
        return max(1, math.floor(kv_tokens / (self.kv_request_tokens + (block_tokens - 1) / 2.0) + 1e-9))

    def chain_batch(self, batch: int, kv_tokens: float = 0.0) -> int:
        """The batch of the queueing chain: the deployed batch N, at most what the token budget
        sustains (:attr:`budget_batch`, rounded) and what the KV cache holds (:meth:`kv_batch`)."""
        budget = round(self.budget_batch) if math.isfinite(self.budget_batch) else batch
        return max(1, min(batch, budget, self.kv_batch(kv_tokens)))


def decode_only(
    perf: DecodeOnlyPerf, out_tokens: float, *, spread: LengthSpread = GEOMETRIC, in_tokens: float = 0.0
) -> ServiceModel:
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
        kv_request_tokens=spread.kv_tokens(in_tokens, out_tokens),
        wait_scale=(1.0 + spread.out_cv2) / 2.0,
        kv_wait_scale=spread.kv_wait_scale(),
    )


def prefill_decode(
    perf: PrefillDecodePerf,
    in_tokens: float,
    out_tokens: float,
    *,
    spread: LengthSpread = GEOMETRIC,
    budget_tokens: float = math.inf,
) -> ServiceModel:
    """Prefill + decode (inferno v0.6) on a prefill-first engine (vLLM V0 without chunked prefill):
    ``d(n) = alpha + beta*n`` per decode iteration and ``f(n) = gamma + delta*in*n`` per prefill
    iteration, which runs *alone*: every running request waits for it.

    Alone, a request takes ``S(n) = f(n) + D*d(n)`` (inferno's formula; D = out - 1 decode steps,
    floored at 0). In a batch its decodes are also interrupted by the other requests' prefills: the
    queue pays each prefill in the state it starts in (:func:`optimizer.model.queue.
    prefill_first_head`: ``mu_n = 1000*n/(D*d(n) + n*f(n))``), and with the batch full and a queue
    a refill prefill follows the departures, so the saturation rate is ``mu_N = 1/(gamma/c +
    delta*in*N + D*d(N)/N)``: prefills are paid serially, decodes shared, and a refill serves c
    prompts at once when requests finish together (:func:`refill_prompts`; inferno's ``N/S(N)``
    shares the prefills too).

    Latencies, with ``n_a`` the mean batch an arrival's prefill runs with
    (:attr:`optimizer.model.queue.QueueState.admit_batch`) and R the rest of the iteration in
    progress when it arrives (from ``step_coef`` and ``stall_coef``): ``TTFT = W + R + f(n)``, its
    prefill step also serving the prompts that arrived during the step it arrived in (n about
    ``n_a*(1 + 2*X*R)``: :func:`optimizer.model.latency.evaluate`); ``ITL = (S - f(n_a) - R)/D``,
    the stay after the first token (decodes and the others' prefills, as the chain charges them)
    per token.

    ``refill_cap``: outputs of equal length (standard deviation under one token) keep the requests
    prefilled together together until they finish, so a refill serves the cohort, at most what one
    step's ``budget_tokens`` holds (``floor(B/in)``); spread outputs finish one by one (cap 1).

    Example (granite_13b on A100: alpha 20.58, beta 0.41, gamma 164.64, delta 0.0128125; in 128,
    out 1024, spread outputs): ``S(n) = 21217.98 + 421.07 n`` ms alone, ``f(16) = 190.88`` ms, so
    with N = 16 the saturated stay is ``S(16) + 15*190.88 = 30818.3`` ms and mu_16 = 0.5192 req/s
    (inferno: 0.5723).
    """
    decode_steps = max(out_tokens - 1.0, 0.0)
    prefill_per_n = perf.delta_ms * in_tokens
    if decode_steps > 0:
        itl_coef = (-perf.gamma_ms / decode_steps, 1.0 / decode_steps, 0.0, -prefill_per_n / decode_steps)
    else:
        itl_coef = (perf.alpha_ms, 0.0, 0.0, perf.beta_ms)
    equal_outputs = spread.out_cv2 * out_tokens * out_tokens < 1.0
    cap = 1.0
    if equal_outputs:
        bounded = math.isfinite(budget_tokens) and in_tokens > 0
        cap = math.floor(budget_tokens / in_tokens) if bounded else math.inf
    return ServiceModel(
        base_ms=perf.gamma_ms + decode_steps * perf.alpha_ms,
        slope_ms=prefill_per_n + decode_steps * perf.beta_ms,
        itl_coef=itl_coef,
        prefill_coef=(perf.gamma_ms, 0.0, 0.0, prefill_per_n),
        schema=perf.kind,
        stall_base_ms=perf.gamma_ms,
        stall_slope_ms=prefill_per_n,
        refill_cap=max(cap, 1.0),
        step_coef=(perf.alpha_ms, 0.0, 0.0, perf.beta_ms),
        stall_coef=(perf.gamma_ms, 0.0, 0.0, prefill_per_n),
        kv_request_tokens=spread.kv_tokens(in_tokens, out_tokens),
        wait_scale=(1.0 + spread.out_cv2) / 2.0,
        kv_wait_scale=spread.kv_wait_scale(),
    )


def refill_prompts(
    decode_share_ms: FloatArray, gamma_ms: FloatArray, prefill_ms: FloatArray, cap: FloatArray
) -> FloatArray:
    """Mean prompts c one refill prefill serves on a prefill-first engine whose batch is full with
    a queue, when requests prefilled together finish together (equal output lengths), capped to
    ``[1, cap]``: ``c = (1 + b/u + sqrt((1 + b/u)^2 + 4*gamma/u))/2``, ``u = D*d(N)/N`` the decode
    time per departure (``decode_share_ms``), ``b = delta*in*N`` a prompt's prefill in the full
    batch (``prefill_ms``), per row.

    What it represents: a cohort is the prompts prefilled back to back, with no decode step
    between; they finish in the same step and, with a queue, are replaced in one prefill, which
    pays ``gamma`` once. An arrival during a prefill step joins the cohort being prefilled (the
    next step prefills it), one during a decode step starts a new cohort, so the mean cohort is
    ``1/(1 - s)``, s the share of time in prefills. At saturation ``s = (gamma/c + b)/(u + gamma/c
    + b)``; the two give ``c = 1 + (b + gamma/c)/u``, whose root is the formula. Approximation:
    the cohorts are formed while the batch fills, at the saturation's prefill share; an engine
    filled by a sudden burst forms larger ones and keeps them (the state persists while the queue
    lasts). No cohorts (``u <= 0`` or no prefill cost): 1.

    Example (llama_7b on H100: alpha 6.96, beta 0.38, gamma 55.68, delta 0.011875 ms; in 512,
    out 256, N = 32): u = 255*19.12/32 = 152.37, b = 194.56, so b/u = 1.277 and c = (2.277 +
    sqrt(5.184 + 1.462))/2 = 2.428; the saturation is 1000/(152.37 + 22.93 + 194.56) = 2.704
    req/s, against 2.484 with one prompt per refill."""
    u = np.maximum(decode_share_ms, 1e-12)
    ratio = 1.0 + prefill_ms / u
    c = 0.5 * (ratio + np.sqrt(ratio * ratio + 4.0 * gamma_ms / u))
    c = np.where((decode_share_ms > 0) & (gamma_ms > 0), c, 1.0)
    return np.asarray(np.clip(c, 1.0, np.maximum(cap, 1.0)), dtype=np.float64)


def iteration(
    perf: IterationPerf | StepPerf,
    in_tokens: float,
    out_tokens: float,
    *,
    spread: LengthSpread = GEOMETRIC,
    budget_tokens: float = math.inf,
) -> ServiceModel:
    """Step schema (and the iteration schema, read exactly as one: :func:`as_step_perf`) on a
    chunked engine (vLLM V1): every step runs all decoding requests and, within the token budget
    ``B`` (``max_num_batched_tokens``), prefill chunks; it costs ``f + a_d*decodes +
    a_p*prefill_tokens + a_c*context_tokens``.

    A request spends ``c`` prefill steps (``c`` = :func:`prefill_steps` with room ``B - 1``: a
    prompt shares its step with at least one decode) and ``out - 1`` decode steps. Its work beyond
    the fixed step costs is ``w = a_d*(out-1) + a_p*in + a_c*(in*(c+1)/2 + (out-1)*in +
    (E[out^2] - out)/2)`` (prefill contexts of equal chunks; decode contexts ``in + g``, g = 1..out-1).
    With n requests in service each step carries, on average, ``w/(c+out-1)`` of each of them, so a
    request stays ``S(n) = (c+out-1)*f + n*w``: its own work once, as n counts it. Latencies:

    - ``ITL = S/(c+out-1) - w/(c+out-1) + w_d/(out-1)``: the mean step, with the request's own
      average share replaced by its decode work ``w_d = a_d*(out-1) + a_c*((out-1)*in + (E[out^2] -
      out)/2)`` (token-weighted: long outputs carry more tokens). At n = 1 this is ``f + a_d +
      a_c*(in + E[out^2]/(2 out))``, a decode step alone.
    - ``TTFT = W + k*(f + a_c*in/2 + Ls*w/(c+out-1)) + in*(a_p + a_c/2) + residual``: k prefill
      steps with the others' mean work, the prompt's own tokens and contexts, and the rest of the
      step in progress (half the mean step). k depends on the load (decodes take budget first, and
      prompts ahead of it in the step queue): :func:`optimizer.model.latency.evaluate`.
    - Saturation: tokens per step ``n*(in+out-1)/(c+out-1)`` cannot exceed ``B``, so the chain's
      batch is at most ``n_B = B*(c+out-1)/(in+out-1)`` (:attr:`ServiceModel.budget_batch`): there
      a step is full and the rate ``n_B/S(n_B) = 1000*B/((in+out-1)*f + B*w)`` does not grow.

    Example (granite_13b on A100: fixed 20.58, per decode and per prefill token 0.041, per context
    token 0.00128125 ms; in 512, out 256, fixed lengths, B = 2048): c = 1, w = 241.20 ms, ``S(n) =
    5268.48 + 241.20 n``, so with N = 32 the saturation is 32000/12987 = 2.464 req/s (the emulated
    engine: 2.462); n_B = 683.6. At n = 1 the ITL is 21.44 ms; a prefill step with Ls = 2 others
    is 20.91 + 2*0.942 = 22.79 ms, plus the prompt's own 21.32 ms. With B = 512 a 512-token prompt
    needs c = 2 steps and n_B = 171.6 (saturation 3.672 req/s at N = 256; emulated: 3.670).
    """
    step = as_step_perf(perf)
    f, a_d, a_p, a_c = step.fixed_ms, step.per_decode_ms, step.per_prefill_token_ms, step.per_context_token_ms
    decodes = max(out_tokens - 1.0, 0.0)
    out_sq = (1.0 + spread.out_cv2) * out_tokens * out_tokens
    chunks = prefill_steps(in_tokens, budget_tokens - 1.0, exact=spread.in_cv2 <= 0.0)
    steps = chunks + decodes
    decode_context = (spread.cross() * out_tokens - 1.0) * in_tokens + (out_sq - out_tokens) / 2.0
    decode_work = a_d * decodes + a_c * decode_context
    work = decode_work + a_p * in_tokens + a_c * in_tokens * (chunks + 1.0) / 2.0
    own_decode_ms = decode_work / decodes if decodes > 0 else f + a_d + a_c * in_tokens
    itl_coef = (own_decode_ms - work / steps, 1.0 / steps, 0.0, 0.0)
    if decodes <= 0:
        itl_coef = (own_decode_ms, 0.0, 0.0, 0.0)
    tokens = in_tokens + decodes
    budget_batch = budget_tokens * steps / tokens if tokens > 0 else math.inf
    return ServiceModel(
        base_ms=steps * f,
        slope_ms=work,
        itl_coef=itl_coef,
        prefill_coef=(f + a_c * in_tokens / 2.0, 0.0, work / steps, 0.0),
        schema=perf.kind,
        step_coef=(0.0, 1.0 / steps, 0.0, 0.0),
        prefill_own_ms=in_tokens * (a_p + a_c / 2.0),
        chunk_in_tokens=in_tokens,
        chunk_in_sq_tokens=(1.0 + spread.in_cv2) * in_tokens * in_tokens,
        chunk_exact=spread.in_cv2 <= 0.0,
        chunk_token_ms=a_p,
        budget_tokens=budget_tokens,
        budget_batch=budget_batch,
        kv_request_tokens=(chunks * in_tokens + decode_context) / steps,
        wait_scale=(1.0 + spread.out_cv2) / 2.0,
        kv_wait_scale=spread.kv_wait_scale(),
    )


def prefill_steps(in_tokens: float, room_tokens: float, *, exact: bool) -> float:
    """Mean steps a prompt of mean ``in_tokens`` takes with ``room_tokens`` of budget per step:
    ``ceil(in/room)`` for fixed lengths (``exact``), else ``1/(1 - exp(-room/in))``, the mean of
    ``ceil(X/room)`` for an exponential X (about ``in/room + 1/2`` for long prompts, 1 for short
    ones); 1 without a budget. Example: in 512, room 511: 2 (exact); in 1164, room 511: 2.81."""
    if not math.isfinite(room_tokens) or in_tokens <= 0:
        return 1.0
    room = max(room_tokens, 1.0)
    if exact:
        return float(max(math.ceil(in_tokens / room - 1e-9), 1))
    return 1.0 / -math.expm1(-room / in_tokens)


def service_model(
    perf: PerfParams,
    in_tokens: float,
    out_tokens: float,
    *,
    spread: LengthSpread = GEOMETRIC,
    budget_tokens: float = math.inf,
) -> ServiceModel:
    """The :class:`ServiceModel` of any schema. ``out_tokens`` must be > 0 (ValueError otherwise).

    ``spread`` and ``budget_tokens`` (``max_num_batched_tokens``; inf or <= 0: none) shape the
    chunked engine of the step and iteration schemas; every schema gets the KV cache a request
    holds, ``in + E[out^2]/(2 out)`` on average over its stay (long outputs stay longest)."""
    if not out_tokens > 0:
        raise ValueError(f"output tokens per request must be > 0, got {out_tokens!r}")
    budget = budget_tokens if budget_tokens > 0 else math.inf
    if isinstance(perf, DecodeOnlyPerf):
        model = decode_only(perf, out_tokens, spread=spread, in_tokens=in_tokens)
    elif isinstance(perf, PrefillDecodePerf):
        model = prefill_decode(perf, in_tokens, out_tokens, spread=spread, budget_tokens=budget)
    else:
        model = iteration(perf, in_tokens, out_tokens, spread=spread, budget_tokens=budget)
    if not model.base_ms + model.slope_ms > 0:
        raise ValueError(f"{perf.kind} parameters give a zero service time: {perf}")
    return model
