"""One emulated replica's engine parameters, and the fleet engine that runs replicas of them.

:class:`ReplicaParams` is what a caller states about the emulated vLLM it wants: the model name it
serves, the step-time parameters of any data schema (:mod:`contract.data.perf`), the scheduler
limits (``--max-num-seqs``, ``--max-num-batched-tokens``, KV cache, block size) and the context
length. The profiler's tests start replicas with known parameters and check that a sweep recovers
them. :meth:`ReplicaParams.from_entry` reads them off a model-data entry.

Output lengths: a real engine stops at its end-of-sequence token, which an emulator has no text
to produce. With ``ignore_eos`` a request generates exactly ``max_tokens`` (finish reason
``length``), which is what benchmark clients send when they fix output lengths. Without it, the
length is drawn per request from ``output_distribution`` with mean ``mean_output_tokens``
(:mod:`load_emulator.tokens`: geometric by default), at least ``min_tokens``; a draw that reaches
``max_tokens`` is cut there (``length``), any other ends with ``stop``.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

from contract.data.catalog import DEFAULT_KV_BLOCK_TOKENS, ModelPerfEntry
from contract.data.perf import DecodeOnlyPerf, IterationPerf, PerfParams, PrefillDecodePerf, StepPerf
from load_emulator.engine import EngineConfig
from load_emulator.sched_config import V1_MAX_NUM_BATCHED_TOKENS, V1_MAX_NUM_SEQS
from load_emulator.timing import Scheduling
from load_emulator.tokens import TokenDistribution, TokenSpec

DEFAULT_MAX_MODEL_LEN = 8192
"""Context length when the KV cache is unlimited (vLLM takes the model's own, e.g. 8192)."""


@dataclass(frozen=True)
class ReplicaParams:
    """Everything that sets one emulated replica's timing and limits; units in the names."""

    model: str
    perf: PerfParams
    max_batch: int = V1_MAX_NUM_SEQS
    """vLLM ``--max-num-seqs``."""
    accelerator: str = "EMULATED"
    kv_cache_tokens: int | None = None
    """KV cache of one replica in tokens (vLLM's "GPU KV cache size"); None: unlimited."""
    kv_block_tokens: int = DEFAULT_KV_BLOCK_TOKENS
    max_num_batched_tokens: int = V1_MAX_NUM_BATCHED_TOKENS
    scheduling: Scheduling = "chunked"
    long_prefill_token_threshold: int = 0
    max_model_len: int | None = None
    """Longest prompt plus output (vLLM ``--max-model-len``); None: the KV cache, else 8192."""
    mean_output_tokens: float = 256.0
    """Mean generated length of a request without ``ignore_eos`` (see the module doc)."""
    output_distribution: TokenDistribution = "geometric"

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("model name must not be empty")
        if self.max_batch < 1 or self.max_num_batched_tokens < 1 or self.kv_block_tokens < 1:
            raise ValueError(
                f"max_batch, max_num_batched_tokens and kv_block_tokens must be >= 1, got "
                f"{self.max_batch}, {self.max_num_batched_tokens}, {self.kv_block_tokens}"
            )
        if self.kv_cache_tokens is not None and self.kv_cache_tokens < self.kv_block_tokens:
            raise ValueError(f"kv_cache_tokens {self.kv_cache_tokens} is less than one KV block")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise ValueError(f"max_model_len must be >= 2, got {self.max_model_len}")
        if (
            self.max_model_len is not None
            and self.kv_cache_tokens is not None
            and self.max_model_len > self.kv_cache_tokens
        ):
            # vLLM refuses to start when one request of max_model_len cannot fit the cache.
            raise ValueError(
                f"max_model_len {self.max_model_len} exceeds the KV cache ({self.kv_cache_tokens} tokens)"
            )
        if self.mean_output_tokens < 1:
            raise ValueError(f"mean_output_tokens must be >= 1, got {self.mean_output_tokens}")

    @property
    def model_len_tokens(self) -> int:
        """The context length in force: ``max_model_len``, else the KV cache, else 8192."""
        if self.max_model_len is not None:
            return self.max_model_len
        if self.kv_cache_tokens is not None:
            return self.kv_cache_tokens
        return DEFAULT_MAX_MODEL_LEN

    @classmethod
    def from_entry(cls, entry: ModelPerfEntry, **overrides: Any) -> ReplicaParams:
        """The parameters of a model-data entry (its model, accelerator, perf, batch, KV cache)."""
        fields: dict[str, Any] = {
            "model": entry.name,
            "perf": entry.perf,
            "max_batch": entry.max_batch_size,
            "accelerator": entry.acc,
            "kv_cache_tokens": entry.kv_cache_tokens,
            "kv_block_tokens": entry.kv_block_tokens,
        }
        fields.update(overrides)
        return cls(**fields)

    def entry(self) -> ModelPerfEntry:
        """These parameters as a model-data entry (what the fleet engine's catalog holds)."""
        data: dict[str, Any] = {
            "name": self.model,
            "acc": self.accelerator,
            "maxBatchSize": self.max_batch,
            "kvBlockTokens": self.kv_block_tokens,
            **perf_json(self.perf),
        }
        if self.kv_cache_tokens is not None:
            data["kvCacheTokens"] = self.kv_cache_tokens
        return ModelPerfEntry.model_validate(data)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            scheduling=self.scheduling,
            max_num_batched_tokens=self.max_num_batched_tokens,
            long_prefill_token_threshold=self.long_prefill_token_threshold,
            kv_limit=self.kv_cache_tokens is not None,
            sync_period_s=0.0,
            max_model_len=self.model_len_tokens,
        )

    def replace(self, **changes: Any) -> ReplicaParams:
        return dataclasses.replace(self, **changes)


def perf_json(perf: PerfParams) -> dict[str, Any]:
    """The model-data fields of a perf schema (ms), as :attr:`ModelPerfEntry.perf` reads them."""
    if isinstance(perf, DecodeOnlyPerf):
        return {"decodeParms": {"alpha": perf.alpha_ms, "beta": perf.beta_ms}}
    if isinstance(perf, PrefillDecodePerf):
        return {
            "decodeParms": {"alpha": perf.alpha_ms, "beta": perf.beta_ms},
            "prefillParms": {"gamma": perf.gamma_ms, "delta": perf.delta_ms},
        }
    if isinstance(perf, IterationPerf):
        return {"perfParms": {"alpha": perf.alpha_ms, "beta": perf.beta_ms, "gamma": perf.gamma_ms}}
    if isinstance(perf, StepPerf):
        return {
            "stepParms": {
                "fixed": perf.fixed_ms,
                "perDecode": perf.per_decode_ms,
                "perPrefillToken": perf.per_prefill_token_ms,
                "perContextToken": perf.per_context_token_ms,
            }
        }
    raise TypeError(f"unknown perf parameters {perf!r}")


class OutputLengths:
    """Decides how many tokens a request generates and why it stops (see the module doc)."""

    def __init__(self, params: ReplicaParams, seed: int) -> None:
        spec = TokenSpec(0.0, params.mean_output_tokens, params.output_distribution)
        self._sampler = spec.sampler()
        self._rng = random.Random(seed)

    def decide(self, max_tokens: int, *, ignore_eos: bool, min_tokens: int = 0) -> tuple[int, str]:
        """``(output tokens, finish reason)`` for a request allowed ``max_tokens``."""
        if ignore_eos:
            return max_tokens, "length"
        drawn = max(self._sampler.draw(self._rng)[1], min_tokens, 1)
        if drawn >= max_tokens:
            return max_tokens, "length"
        return drawn, "stop"
