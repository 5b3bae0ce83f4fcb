"""vLLM's V1 ``Scheduler`` (vLLM 0.33) behind the driver's small engine interface.

Imported by ``driver.py`` inside the vLLM venv when a run's ``config["engine"]`` is ``"v1"``. The
scheduler is built the way vLLM's own scheduler tests build it: a tiny model's ``config.json``,
``DeviceConfig(device="cpu")``, a ``KVCacheConfig`` with ``num_blocks`` blocks of one full-attention
group. Only the scheduler, the KV cache manager and request objects run; no model is loaded.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.config import CacheConfig, DeviceConfig, ModelConfig, SchedulerConfig, VllmConfig
from vllm.sampling_params import SamplingParams
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec
from vllm.v1.outputs import ModelRunnerOutput
from vllm.v1.request import Request
from vllm.v1.structured_output import StructuredOutputManager

SAMPLED_TOKEN_ID = 7
"""The token every sampling step returns (not the tiny model's EOS; ``ignore_eos`` is set anyway)."""


def build_scheduler(config: dict[str, Any], model_dir: str) -> Scheduler:
    max_model_len = config["max_model_len"]
    model_config = ModelConfig(
        model=model_dir, dtype="float16", seed=0, skip_tokenizer_init=True, max_model_len=max_model_len
    )
    scheduler_config = SchedulerConfig(
        max_num_seqs=config["max_num_seqs"],
        max_num_batched_tokens=config["max_num_batched_tokens"],
        max_model_len=max_model_len,
        is_encoder_decoder=False,
        enable_chunked_prefill=config["enable_chunked_prefill"],
        long_prefill_token_threshold=config["long_prefill_token_threshold"],
        policy=config["policy"],
        watermark=config["watermark"],
        scheduler_reserve_full_isl=config["scheduler_reserve_full_isl"],
        async_scheduling=config["async_scheduling"],
    )
    block_size = config["block_size"]
    cache_config = CacheConfig(block_size=block_size, enable_prefix_caching=config["enable_prefix_caching"])
    vllm_config = VllmConfig(
        scheduler_config=scheduler_config,
        model_config=model_config,
        cache_config=cache_config,
        device_config=DeviceConfig(device="cpu"),
    )
    spec = FullAttentionSpec(block_size=block_size, num_kv_heads=1, head_size=1, dtype=torch.float32)
    kv_cache_config = KVCacheConfig(
        num_blocks=config["num_blocks"],
        kv_cache_tensors=[],
        kv_cache_groups=[KVCacheGroupSpec(["layer"], spec)],
    )
    cache_config.num_gpu_blocks = config["num_blocks"]
    return Scheduler(
        vllm_config=vllm_config,
        kv_cache_config=kv_cache_config,
        structured_output_manager=StructuredOutputManager(vllm_config),
        block_size=block_size,
        log_stats=False,
    )


class Engine:
    """One V1 scheduler; ``plan`` schedules a step, ``finish`` feeds its sampled tokens back."""

    def __init__(self, config: dict[str, Any], model_dir: str) -> None:
        self.scheduler = build_scheduler(config, model_dir)
        self.usable_blocks = config["num_blocks"] - 1  # the block pool keeps one null block
        self._out: Any = None
        self._sampled: list[list[int]] = []

    def add(self, rid: str, prompt: list[int], out_tokens: int, arrival_s: float) -> None:
        params = SamplingParams(ignore_eos=True, max_tokens=out_tokens, temperature=0.0)
        self.scheduler.add_request(
            Request(
                request_id=rid,
                prompt_token_ids=prompt,
                sampling_params=params,
                pooling_params=None,
                arrival_time=arrival_s,
            )
        )

    def unfinished(self) -> int:
        return int(self.scheduler.get_num_unfinished_requests())

    def plan(self) -> tuple[list[tuple[str, int, int, bool, bool]], list[str], int]:
        """Schedule one step: per scheduled request (id, tokens, computed after, decodes, samples),
        the requests preempted while scheduling it (newest first), and the KV blocks held."""
        running_before = [r.request_id for r in self.scheduler.running]
        out = self.scheduler.schedule()
        rows = []
        for rid, n in out.num_scheduled_tokens.items():
            request = self.scheduler.requests[rid]
            after = request.num_computed_tokens  # schedule() has already advanced it
            before = after - n
            decode = n == 1 and before >= request.num_prompt_tokens and before == request.num_tokens - 1
            rows.append((rid, n, after, decode, after >= request.num_tokens))
        preempted = sorted(
            out.preempted_req_ids or (),
            key=lambda rid: -running_before.index(rid) if rid in running_before else 0,
        )
        kv_used = self.usable_blocks - self.scheduler.kv_cache_manager.block_pool.get_num_free_blocks()
        self._out = out
        self._sampled = [[SAMPLED_TOKEN_ID] if sample else [] for *_, sample in rows]
        return rows, preempted, kv_used

    def finish(self) -> list[str]:
        """Hand the planned step's tokens to the scheduler; the requests that finished."""
        ids = list(self._out.num_scheduled_tokens)
        runner_output = ModelRunnerOutput(
            req_ids=ids,
            req_id_to_index={rid: i for i, rid in enumerate(ids)},
            sampled_token_ids=self._sampled,
        )
        engine_outputs = self.scheduler.update_from_output(self._out, runner_output)
        return [
            o.request_id
            for outputs in engine_outputs.values()
            for o in outputs.outputs
            if o.finish_reason is not None
        ]
