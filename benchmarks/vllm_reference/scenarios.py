"""Scenarios for vLLM's own scheduler (the reference) and the requests they send, deterministically.

Host side (the project's venv): :mod:`benchmarks.bench_vllm_reference` and
:mod:`benchmarks.vllm_reference.golden` build runs from here and hand them to ``driver.py`` in the
vLLM venv as JSON. Our engine replays the same requests by calling :func:`poisson_requests` /
:func:`closed_requests` with the same scenario, rate and seed.

A run's config uses the driver's keys (``max_num_seqs``, ``max_num_batched_tokens``,
``block_size``, ``num_blocks``, ...; see ``tests/fixtures/vllm_golden/README.md``). The step cost
is :class:`contract.data.perf.StepPerf` as JSON (``fixed_ms``, ``per_decode_ms``,
``per_prefill_token_ms``, ``per_context_token_ms``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from contract.data.perf import StepPerf

A100_13B = StepPerf(
    fixed_ms=20.58, per_decode_ms=0.041, per_prefill_token_ms=0.041, per_context_token_ms=0.00128125
)
"""The step cost of every reference run: a 13B model on an A100 (inferno's granite_13b iteration
data read as a step cost). 32 decodes at context 600 take 46.5 ms."""

AZURE_CONV_CSV = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "reference-data"
    / "azure-llm-inference-2023"
    / "AzureLLMInferenceTrace_conv.csv"
)
"""The Azure 2023 conversation trace (``TIMESTAMP,ContextTokens,GeneratedTokens``); its lengths only."""

UNLIMITED_BLOCKS = 1_000_000
"""KV blocks for the runs without a KV limit (16M tokens: never binds)."""

FIXED_IN_TOKENS, FIXED_OUT_TOKENS = 512, 256


@dataclass(frozen=True, slots=True)
class Scenario:
    """One engine configuration and one length distribution."""

    name: str
    max_num_seqs: int
    max_num_batched_tokens: int
    lengths: str  # "fixed" (512 in / 256 out) or "azure" (the conversation trace's (in, out) pairs)
    num_blocks: int = UNLIMITED_BLOCKS
    block_size: int = 16
    engine: str = "v1"  # "v1": vLLM 0.33's chunked scheduler; "v0": vLLM 0.8.5's prefill-first one
    max_model_len: int = 16384

    def config(self) -> dict[str, Any]:
        """The driver's config for this scenario (the settings the driver does not default)."""
        return {
            "engine": self.engine,
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "block_size": self.block_size,
            "num_blocks": self.num_blocks,
            "enable_chunked_prefill": self.engine == "v1",
            "max_model_len": self.max_model_len,
        }


def grid() -> list[Scenario]:
    """The issue's grid: batch 32 and 256 x budgets 512 / 2048 / 8192 x fixed and Azure lengths,
    plus the KV-limited case (2,000 blocks of 16 tokens at batch 256, budget 2048, fixed lengths)."""
    out = [
        Scenario(f"b{batch}-t{budget}-{lengths}", batch, budget, lengths)
        for lengths in ("fixed", "azure")
        for batch in (32, 256)
        for budget in (512, 2048, 8192)
    ]
    out.append(Scenario("b256-t2048-fixed-kv2000", 256, 2048, "fixed", num_blocks=2000))
    return out


def grid_v0() -> list[Scenario]:
    """The prefill-first (V0) reference: batch 32 and 256, fixed and Azure lengths, and the
    KV-limited case. V0 without chunked prefill needs a budget of at least ``max_model_len`` (its
    default is ``max(max_model_len, 2048)``): 2,048 for fixed lengths (max_model_len 2,048) and
    16,384 for the Azure lengths (prompts up to 14,050 tokens)."""
    out = []
    for lengths, max_len in (("fixed", 2048), ("azure", 16384)):
        for batch in (32, 256):
            out.append(
                Scenario(
                    f"v0-b{batch}-{lengths}", batch, max_len, lengths, engine="v0", max_model_len=max_len
                )
            )
    out.append(
        Scenario("v0-b256-fixed-kv2000", 256, 2048, "fixed", num_blocks=2000, engine="v0", max_model_len=2048)
    )
    return out


@cache
def azure_pairs() -> tuple[tuple[int, int], ...]:
    """Every (prompt tokens, output tokens) pair of the Azure conversation trace, in file order."""
    with AZURE_CONV_CSV.open(encoding="utf-8") as f:
        return tuple((int(row["ContextTokens"]), int(row["GeneratedTokens"])) for row in csv.DictReader(f))


def length_pairs(lengths: str, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``n`` (in, out) pairs: fixed 512 / 256, or drawn with replacement from the Azure trace."""
    if lengths == "fixed":
        return [(FIXED_IN_TOKENS, FIXED_OUT_TOKENS)] * n
    if lengths == "azure":
        pairs = azure_pairs()
        idx = rng.integers(0, len(pairs), size=n)
        return [pairs[int(i)] for i in idx]
    raise ValueError(f"unknown lengths {lengths!r}: 'fixed' or 'azure'")


def poisson_requests(scenario: Scenario, rate_rps: float, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` requests with Poisson arrivals at ``rate_rps``, the first at its exponential gap."""
    rng = np.random.default_rng(seed)
    pairs = length_pairs(scenario.lengths, n, rng)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_rps, size=n))
    return [
        {"id": f"r{i}", "arrival_s": round(float(t), 6), "in_tokens": a, "out_tokens": b}
        for i, (t, (a, b)) in enumerate(zip(arrivals, pairs, strict=True))
    ]


def closed_requests(scenario: Scenario, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` requests all arriving at 0: the closed overload run that measures saturation."""
    rng = np.random.default_rng(seed)
    pairs = length_pairs(scenario.lengths, n, rng)
    return [
        {"id": f"r{i}", "arrival_s": 0.0, "in_tokens": a, "out_tokens": b} for i, (a, b) in enumerate(pairs)
    ]


def step_cost_json(perf: StepPerf) -> dict[str, float]:
    return {
        "fixed_ms": perf.fixed_ms,
        "per_decode_ms": perf.per_decode_ms,
        "per_prefill_token_ms": perf.per_prefill_token_ms,
        "per_context_token_ms": perf.per_context_token_ms,
    }
