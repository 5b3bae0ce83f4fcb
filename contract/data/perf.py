"""Typed performance parameters of one (model, accelerator) pair, in the three inferno generations.

These are plain frozen dataclasses (not pydantic): they are read in hot numeric code by the
queueing model (:mod:`optimizer.model`) and by the load emulator. All times are milliseconds.

- :class:`DecodeOnlyPerf` (inferno v0.1): token time ``t(n) = alpha + beta * n`` for a batch of n.
- :class:`PrefillDecodePerf` (v0.6): decode ``d(n) = alpha + beta * n`` per token and prefill
  ``f(n) = gamma + delta * in_tokens * n`` per request.
- :class:`IterationPerf` (v0.7): one engine iteration of a batch of n takes
  ``alpha + n * (beta * tokens_per_iteration + gamma * attended_tokens)``; see
  :mod:`optimizer.model.service_time` for how prefill and decode iterations are derived from it.
- :class:`StepPerf` (this project's step-cost schema): one engine step (a vLLM V1 scheduler step:
  running decodes and prefill chunks together) costs a fixed part, a part per decoding request, a
  part per prefill token computed and a part per context token attended. It separates the
  memory-bound decode (per request) from the compute-bound prefill (per token), which
  :class:`IterationPerf` ties to one ``beta``. :func:`as_step_perf` maps the iteration schema onto
  it exactly; the two older schemas have no such mapping (their prefill cost depends on the batch,
  not on the step's tokens) and run on a prefill-first (vLLM V0) engine instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class DecodeOnlyPerf:
    """Decode-only model: ``t(n) = alpha_ms + beta_ms * n`` per output token."""

    alpha_ms: float
    beta_ms: float
    kind: Literal["decode-only"] = "decode-only"


@dataclass(frozen=True, slots=True)
class PrefillDecodePerf:
    """Decode ``alpha + beta*n`` per token; prefill ``gamma + delta*in_tokens*n`` per request."""

    alpha_ms: float
    beta_ms: float
    gamma_ms: float
    delta_ms: float
    kind: Literal["prefill-decode"] = "prefill-decode"


@dataclass(frozen=True, slots=True)
class IterationPerf:
    """Iteration-time model: ``T(n) = alpha + n * (beta * tokens + gamma * attended tokens)``."""

    alpha_ms: float
    beta_ms: float
    gamma_ms: float
    kind: Literal["iteration"] = "iteration"


@dataclass(frozen=True, slots=True)
class StepPerf:
    """One engine step: ``fixed + per_decode * decodes + per_prefill_token * prefill_tokens +
    per_context_token * context_tokens`` (ms).

    - ``decodes``: running requests that compute one token in the step;
    - ``prefill_tokens``: prompt tokens computed in the step (chunks, summed over requests);
    - ``context_tokens``: summed over every request scheduled in the step, its computed tokens
      after the step (vLLM's ``num_computed_tokens + num_scheduled_tokens``), i.e. the positions
      its newest token attends to: for a decode, its prompt plus the tokens generated before this
      step; for a prefill chunk, the prompt tokens computed so far including the chunk.

    Example (a 13B model on an A100: fixed 20.58, per decode 0.041, per prefill token 0.041, per
    context token 0.00128125 ms): 32 decodes at context 600 -> 20.58 + 32 * (0.041 + 0.00128125 *
    600) = 46.5 ms; add a 512-token first chunk -> + 512 * 0.041 + 512 * 0.00128125 = 68.2 ms.
    """

    fixed_ms: float
    per_decode_ms: float
    per_prefill_token_ms: float
    per_context_token_ms: float
    kind: Literal["step"] = "step"

    def step_ms(self, decodes: int, prefill_tokens: int, context_tokens: float) -> float:
        """The cost of one step in ms."""
        return (
            self.fixed_ms
            + self.per_decode_ms * decodes
            + self.per_prefill_token_ms * prefill_tokens
            + self.per_context_token_ms * context_tokens
        )


def as_step_perf(perf: IterationPerf | StepPerf) -> StepPerf:
    """The iteration schema read as a step cost: a decode and a prefill token both cost ``beta``
    (one computed token each), and ``gamma`` is the cost per attended context token. Exact: the
    two give the same time for every step."""
    if isinstance(perf, StepPerf):
        return perf
    return StepPerf(
        fixed_ms=perf.alpha_ms,
        per_decode_ms=perf.beta_ms,
        per_prefill_token_ms=perf.beta_ms,
        per_context_token_ms=perf.gamma_ms,
    )


PerfParams = DecodeOnlyPerf | PrefillDecodePerf | IterationPerf | StepPerf
