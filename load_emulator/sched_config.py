"""The scheduler limits of one emulated vLLM replica, with vLLM's defaults and where they come from.

Read by :class:`load_emulator.replica.ReplicaSim` (built by :mod:`load_emulator.engine` from
``EngineConfig`` and the model data, or by a test from a golden trace's ``config``). Two modes:

- ``"v1"``: vLLM V1's scheduler (``vllm/v1/core/sched/scheduler.py``, ``Scheduler.schedule``):
  chunked prefill, one ordered pass over the running requests then the waiting ones;
- ``"v0"``: vLLM V0's default scheduler without chunked prefill (``vllm/core/scheduler.py``,
  ``Scheduler._schedule_default``; golden traces of 0.8.5's): a step either prefills whole prompts
  of newly admitted requests or decodes every running request, never both.

KV blocks are counted as vLLM counts them: ``kv_blocks`` is vLLM's ``num_gpu_blocks`` (what it
logs at start-up as "GPU KV cache size: kv_blocks * block_tokens tokens"), one of which is the
block pool's reserved null block (``vllm/v1/core/block_pool.py``, ``BlockPool.__init__``), so
``kv_blocks - 1`` blocks hold requests. V0's block manager has no null block: all of them do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SchedulerMode = Literal["v1", "v0"]

V1_MAX_NUM_BATCHED_TOKENS = 2048
"""``vllm serve`` default on GPUs below 70 GB and on A100s (``EngineArgs.
_set_default_max_num_seqs_and_batched_tokens_args``, 0.33.0); 8192 on H100/H200-class cards,
16384 on cards of 160 GB or more. ``SchedulerConfig.max_num_batched_tokens`` also defaults to 2048."""
V1_MAX_NUM_SEQS = 256
"""``vllm serve`` default below 70 GB and on A100s (same function); 1024 on larger cards."""
V1_LONG_PREFILL_TOKEN_THRESHOLD = 0
"""``SchedulerConfig.long_prefill_token_threshold``: 0 turns the per-request chunk cap off."""
V1_WATERMARK = 0.0
"""``SchedulerConfig.watermark``: share of blocks kept free when admitting; 0 turns it off."""
V1_RESERVE_FULL_PROMPT = True
"""``SchedulerConfig.scheduler_reserve_full_isl``: admission needs blocks for the whole prompt
(plus generated tokens, for a preempted request), not just its first chunk."""
V0_WATERMARK = 0.01
"""vLLM V0's block manager (``vllm/core/block_manager.py``, ``SelfAttnBlockSpaceManager``,
``watermark=0.01``): admission keeps 1% of the blocks free."""
DEFAULT_BLOCK_TOKENS = 16
"""``CacheConfig.block_size`` resolves to 16 on CUDA and ROCm GPUs."""


@dataclass(frozen=True, slots=True)
class SchedulerLimits:
    """One replica's scheduler settings; ``kv_blocks=None`` models an unlimited KV cache."""

    max_num_seqs: int
    max_num_batched_tokens: int
    kv_blocks: int | None = None
    block_tokens: int = DEFAULT_BLOCK_TOKENS
    long_prefill_token_threshold: int = V1_LONG_PREFILL_TOKEN_THRESHOLD
    reserve_full_prompt: bool = V1_RESERVE_FULL_PROMPT
    watermark: float | None = None
    """Share of blocks kept free at admission; None takes the mode's default (V1 0, V0 0.01)."""
    mode: SchedulerMode = "v1"

    @property
    def usable_blocks(self) -> int | None:
        """Blocks that can hold requests (V1: the null block excluded); None when unlimited."""
        if self.kv_blocks is None:
            return None
        return self.kv_blocks if self.mode == "v0" else max(self.kv_blocks - 1, 1)

    @property
    def watermark_blocks(self) -> int:
        """``int(watermark * num_blocks)``, as both vLLM generations compute it."""
        if self.kv_blocks is None:
            return 0
        share = self.watermark if self.watermark is not None else (V0_WATERMARK if self.mode == "v0" else 0.0)
        return int(share * self.kv_blocks)
