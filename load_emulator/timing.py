"""The emulator's time model: how long one engine iteration of a batch takes, per data schema.

Read by :mod:`load_emulator.replica` (the hot loop) and :mod:`load_emulator.fleet` (initial sizing).
This module is the emulator's own reading of the data files' parameters; it never imports the
optimizer's queueing model, so the two can disagree and the what-if runs can show it.

Times are seconds inside the emulator (the data files give milliseconds; converted once here).
One *iteration* is one forward pass of the engine over the running batch.

- **decode-only** (``DecodeOnlyPerf``, inferno v0.1): no prefill cost. Every iteration produces one
  token for each of the ``n`` running requests and takes ``t(n) = alpha + beta*n``. A request's first
  token comes out of its first iteration.
  Example (A100, alpha 20.58 ms, beta 0.41 ms): 32 running requests -> 33.7 ms per iteration.
- **prefill+decode** (``PrefillDecodePerf``, v0.6), scheduled *prefill-first* like vLLM V0 without
  chunked prefill: when requests wait and the batch has room, the next iteration is a prefill-only
  iteration for the newcomers (decodes pause), taking ``gamma + delta * sum(in_tokens) * n`` where
  ``n`` counts running requests including the newcomers (for one newcomer this is the data's
  ``f(n) = gamma + delta*in*n``); it yields each newcomer's first token. Otherwise a decode iteration
  takes ``d(n) = alpha + beta*n``.
- **iteration** (``IterationPerf``, v0.7) and **step** (``StepPerf``): the iteration schema is
  read as a step cost (:func:`contract.data.perf.as_step_perf`, exact); a step takes
  ``fixed + per_decode * decodes + per_prefill_token * prefill_tokens + per_context_token *
  context`` where ``context`` sums, over the requests the step computes, their computed tokens
  after it (a decode attends to its prompt and the tokens generated before the step; a chunk to
  the prompt computed so far including itself). Scheduling is *chunked* (vLLM V1, default) or
  *prefill-first* (V0), where a prefill step costs ``fixed + (per_prefill_token +
  per_context_token) * sum(prompt tokens)``.
  Example (A100 granite_13b-like, fixed 20.58 ms, per decode 0.041 ms, per context token
  0.00128 ms): 32 decodes at context 600 -> 20.58 + 32*(0.041 + 0.00128*600) = 46.5 ms.

In every schema a prefill (or the first decode-only iteration) yields the first output token, then
one decode step per further output token. Which requests a step computes, the KV cache and
preemption are :mod:`load_emulator.replica_steps`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contract.data.perf import (
    DecodeOnlyPerf,
    IterationPerf,
    PerfParams,
    PrefillDecodePerf,
    StepPerf,
    as_step_perf,
)

Scheduling = Literal["chunked", "prefill-first"]
DECODE_ONLY, PREFILL_DECODE, ITERATION = 0, 1, 2
MIN_ITERATION_S = 1e-6
"""Floor on any iteration's duration so the event loop always advances time."""


@dataclass(frozen=True, slots=True)
class IterationCost:
    """Perf parameters in seconds, with the schema as a small int for the hot loop."""

    kind: int
    alpha_s: float
    beta_s: float
    gamma_s: float = 0.0
    delta_s: float = 0.0
    prefill_token_s: float = 0.0
    """Iteration and step schemas: the cost of one prefill token (``beta_s`` is per decode)."""

    @classmethod
    def from_perf(cls, perf: PerfParams) -> IterationCost:
        if isinstance(perf, DecodeOnlyPerf):
            return cls(DECODE_ONLY, perf.alpha_ms / 1000, perf.beta_ms / 1000)
        if isinstance(perf, PrefillDecodePerf):
            return cls(
                PREFILL_DECODE,
                perf.alpha_ms / 1000,
                perf.beta_ms / 1000,
                perf.gamma_ms / 1000,
                perf.delta_ms / 1000,
            )
        if isinstance(perf, IterationPerf | StepPerf):
            step = as_step_perf(perf)
            return cls(
                ITERATION,
                step.fixed_ms / 1000,
                step.per_decode_ms / 1000,
                step.per_context_token_ms / 1000,
                prefill_token_s=step.per_prefill_token_ms / 1000,
            )
        raise TypeError(f"unknown perf parameters {perf!r}")

    def decode_s(self, n: int, attended_tokens: float) -> float:
        """One decode iteration of ``n`` requests attending ``attended_tokens`` in total."""
        if self.kind == ITERATION:
            t = self.alpha_s + self.beta_s * n + self.gamma_s * attended_tokens
        else:
            t = self.alpha_s + self.beta_s * n
        return max(t, MIN_ITERATION_S)

    def prefill_s(self, prompt_tokens: int, n_after: int) -> float:
        """A prefill-only iteration (prefill-first scheduling) over ``prompt_tokens`` new tokens."""
        if self.kind == PREFILL_DECODE:
            t = self.gamma_s + self.delta_s * prompt_tokens * n_after
        else:
            t = self.alpha_s + (self.prefill_token_s + self.gamma_s) * prompt_tokens
        return max(t, MIN_ITERATION_S)

    def mixed_s(self, decodes: int, prefill_tokens: int, attended_tokens: float) -> float:
        """A chunked iteration (iteration and step schemas): decodes and prefill chunks together."""
        t = (
            self.alpha_s
            + self.beta_s * decodes
            + self.prefill_token_s * prefill_tokens
            + self.gamma_s * attended_tokens
        )
        return max(t, MIN_ITERATION_S)


def full_batch_throughput_rps(cost: IterationCost, batch: int, in_tokens: float, out_tokens: float) -> float:
    """Rough completions/s of one replica kept full, used only to pick demo replica counts.

    Decode-only: ``batch / (out * t(batch))``. Prefill schemas: per completed request the replica
    spends one prefill iteration and ``(out - 1) / batch`` decode iterations. KV per running
    request is taken as ``in + out``, not ``in + out/2``: with spread-out lengths the requests in
    the batch at any moment are mostly long ones (length-biased sampling).
    """
    out = max(out_tokens, 1.0)
    mid_kv = batch * (in_tokens + out)
    if cost.kind == DECODE_ONLY:
        return batch / (out * cost.decode_s(batch, 0))
    per_request_s = cost.prefill_s(round(in_tokens), batch) + (out - 1) / batch * cost.decode_s(batch, mid_kv)
    return 1.0 / per_request_s
