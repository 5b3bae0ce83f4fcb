"""Typed performance parameters of one (model, accelerator) pair, in the three inferno generations.

These are plain frozen dataclasses (not pydantic): they are read in hot numeric code by the
queueing model (:mod:`optimizer.model`) and by the load emulator. All times are milliseconds.

- :class:`DecodeOnlyPerf` (inferno v0.1): token time ``t(n) = alpha + beta * n`` for a batch of n.
- :class:`PrefillDecodePerf` (v0.6): decode ``d(n) = alpha + beta * n`` per token and prefill
  ``f(n) = gamma + delta * in_tokens * n`` per request.
- :class:`IterationPerf` (v0.7): one engine iteration of a batch of n takes
  ``alpha + n * (beta * tokens_per_iteration + gamma * attended_tokens)``; see
  :mod:`optimizer.model.service_time` for how prefill and decode iterations are derived from it.
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


PerfParams = DecodeOnlyPerf | PrefillDecodePerf | IterationPerf
