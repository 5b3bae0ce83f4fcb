"""Drive vLLM's own V1 scheduler standalone on CPU at virtual time, with a synthetic step cost.

Run INSIDE the vLLM venv made by ``setup.sh`` (never by the project's interpreter):

    ~/.cache/inferno-vllm/venv-0.33.0/bin/python benchmarks/vllm_reference/driver.py IN.json OUT.json

It imports nothing from the project (the host side, :mod:`benchmarks.bench_vllm_reference` and
:mod:`benchmarks.vllm_reference.golden`, writes the input and reads the output), so it lies outside
the project's mypy scope. Only vLLM's scheduler, KV cache manager and request objects run; no model
is loaded: a ``config.json`` for a tiny Llama in a temporary directory satisfies ``ModelConfig``.

Input: ``{"runs": [run, ...]}``; each run is
``{"name", "config": {...}, "step_cost": {...}, "requests": [{"id", "arrival_s", "in_tokens",
"out_tokens"}], "record_steps": bool, "record_token_times": bool}`` (config keys as in
``tests/fixtures/vllm_golden/README.md``). Output: ``{"vllm_version", "runs": [...]}`` with, per run,
``results`` (per request: ``first_token_s``, ``finish_s``, ``preemptions``, ``itl_sum_s``,
``itl_count``, and ``token_times_s`` when asked), ``steps`` when asked, and ``summary`` counts.

The loop, per step (time ``now`` in seconds, starting at 0):
1. add every request whose ``arrival_s <= now``; with nothing running or waiting, jump to the next
   arrival;
2. ``schedule()``; the step costs ``fixed + per_decode * decodes + per_prefill_token *
   prefill_tokens + per_context_token * context_tokens`` ms, where a scheduled request *decodes*
   when it computes exactly its newest token (one token, prompt done before the step), every other
   scheduled token is a prefill token (prompt chunks, and the recompute of a preempted request's
   prompt and generated tokens), and ``context_tokens`` sums ``num_computed_tokens`` after the
   step over the scheduled requests;
3. ``now += duration``; every scheduled request whose computed tokens reach its prompt plus
   generated tokens samples one token at ``now`` (``ignore_eos``; it stops at ``max_tokens`` =
   ``out_tokens``); ``update_from_output``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import vllm
from vllm.config import CacheConfig, DeviceConfig, ModelConfig, SchedulerConfig, VllmConfig
from vllm.sampling_params import SamplingParams
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec
from vllm.v1.outputs import ModelRunnerOutput
from vllm.v1.request import Request
from vllm.v1.structured_output import StructuredOutputManager

TINY_MODEL_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "num_hidden_layers": 1,
    "vocab_size": 1000,
    "max_position_embeddings": 65536,
    "rms_norm_eps": 1e-5,
    "torch_dtype": "float16",
}
SAMPLED_TOKEN_ID = 7
"""The token every sampling step returns (not the tiny model's EOS; ``ignore_eos`` is set anyway)."""

CONFIG_DEFAULTS: dict[str, Any] = {
    "engine": "v1",
    "max_num_seqs": 256,
    "max_num_batched_tokens": 2048,
    "block_size": 16,
    "num_blocks": 1_000_000,
    "enable_chunked_prefill": True,
    "long_prefill_token_threshold": 0,
    "enable_prefix_caching": False,
    "policy": "fcfs",
    "watermark": 0.0,
    "scheduler_reserve_full_isl": True,
    "async_scheduling": False,
    "max_model_len": 16384,
}


def build_scheduler(config: dict[str, Any], model_dir: str) -> Any:
    """vLLM's V1 ``Scheduler`` on CPU with ``num_blocks`` KV blocks, as vLLM's own tests build it."""
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


def run_one(run: dict[str, Any], model_dir: str) -> dict[str, Any]:
    """One scenario from an empty engine until every request has finished."""
    config = {**CONFIG_DEFAULTS, **run.get("config", {})}
    cost = run["step_cost"]
    fixed_ms, per_decode_ms = cost["fixed_ms"], cost["per_decode_ms"]
    per_prefill_ms, per_context_ms = cost["per_prefill_token_ms"], cost["per_context_token_ms"]
    record_steps = bool(run.get("record_steps", False))
    record_tokens = bool(run.get("record_token_times", False))
    scheduler = build_scheduler(config, model_dir)
    usable_blocks = config["num_blocks"] - 1  # the block pool keeps one null block

    pending = sorted(run["requests"], key=lambda r: (r["arrival_s"], r["id"]))
    state: dict[str, dict[str, Any]] = {}
    for spec in pending:
        state[spec["id"]] = {
            "id": spec["id"],
            "arrival_s": spec["arrival_s"],
            "first_token_s": None,
            "finish_s": None,
            "preemptions": 0,
            "last_token_s": None,
            "itl_sum_s": 0.0,
            "itl_count": 0,
            "token_times_s": [],
        }
    steps: list[dict[str, Any]] = []
    now_s, next_i, n_steps, max_running = 0.0, 0, 0, 0
    busy_s = 0.0
    wall0 = time.perf_counter()
    while True:
        while next_i < len(pending) and pending[next_i]["arrival_s"] <= now_s:
            spec = pending[next_i]
            next_i += 1
            params = SamplingParams(ignore_eos=True, max_tokens=int(spec["out_tokens"]), temperature=0.0)
            # Distinct token ids per request (prefix caching is off by default here anyway).
            prompt = [(next_i * 31 + k) % 900 + 10 for k in range(int(spec["in_tokens"]))]
            scheduler.add_request(
                Request(
                    request_id=spec["id"],
                    prompt_token_ids=prompt,
                    sampling_params=params,
                    pooling_params=None,
                    arrival_time=spec["arrival_s"],
                )
            )
        if scheduler.get_num_unfinished_requests() == 0:
            if next_i >= len(pending):
                break
            now_s = max(now_s, pending[next_i]["arrival_s"])
            continue
        running_before = [r.request_id for r in scheduler.running]
        out = scheduler.schedule()
        scheduled = list(out.num_scheduled_tokens.items())
        if not scheduled:
            if next_i >= len(pending):
                raise RuntimeError(f"{run.get('name')}: nothing schedulable at {now_s:.3f} s (KV too small?)")
            now_s = max(now_s, pending[next_i]["arrival_s"])
            continue
        decodes = prefill_tokens = context_tokens = 0
        for rid, n in scheduled:
            request = scheduler.requests[rid]
            before = request.num_computed_tokens - n
            if n == 1 and before >= request.num_prompt_tokens and before == request.num_tokens - 1:
                decodes += 1
            else:
                prefill_tokens += n
            context_tokens += request.num_computed_tokens
        duration_s = (
            fixed_ms
            + per_decode_ms * decodes
            + per_prefill_ms * prefill_tokens
            + per_context_ms * context_tokens
        ) / 1000.0
        start_s = now_s
        now_s += duration_s
        busy_s += duration_s
        n_steps += 1
        max_running = max(max_running, len(scheduler.running))
        kv_used = usable_blocks - scheduler.kv_cache_manager.block_pool.get_num_free_blocks()
        preempted = sorted(
            out.preempted_req_ids or (),
            key=lambda rid: -running_before.index(rid) if rid in running_before else 0,
        )
        for rid in preempted:
            state[rid]["preemptions"] += 1
        sampled: list[list[int]] = []
        ids = [rid for rid, _ in scheduled]
        for rid in ids:
            request = scheduler.requests[rid]
            if request.num_computed_tokens >= request.num_tokens:
                sampled.append([SAMPLED_TOKEN_ID])
                rec = state[rid]
                if rec["first_token_s"] is None:
                    rec["first_token_s"] = now_s
                else:
                    rec["itl_sum_s"] += now_s - rec["last_token_s"]
                    rec["itl_count"] += 1
                rec["last_token_s"] = now_s
                if record_tokens:
                    rec["token_times_s"].append(now_s)
            else:
                sampled.append([])
        runner_output = ModelRunnerOutput(
            req_ids=ids, req_id_to_index={rid: i for i, rid in enumerate(ids)}, sampled_token_ids=sampled
        )
        engine_outputs = scheduler.update_from_output(out, runner_output)
        finished = [
            o.request_id
            for outputs in engine_outputs.values()
            for o in outputs.outputs
            if o.finish_reason is not None
        ]
        for rid in finished:
            state[rid]["finish_s"] = now_s
        if record_steps:
            steps.append(
                {
                    "start_s": round(start_s, 9),
                    "duration_s": round(duration_s, 9),
                    "scheduled": [[rid, n] for rid, n in scheduled],
                    "preempted": preempted,
                    "finished": finished,
                    "kv_blocks_used": kv_used,
                }
            )
    results = []
    for rec in state.values():
        row = {k: rec[k] for k in ("id", "arrival_s", "first_token_s", "finish_s", "preemptions")}
        row["itl_sum_s"], row["itl_count"] = rec["itl_sum_s"], rec["itl_count"]
        if record_tokens:
            row["token_times_s"] = rec["token_times_s"]
        results.append(row)
    out_run: dict[str, Any] = {
        "name": run.get("name", ""),
        "config": config,
        "step_cost": cost,
        "results": results,
        "summary": {
            "steps": n_steps,
            "end_s": now_s,
            "busy_s": busy_s,
            "max_running": max_running,
            "preemptions": sum(r["preemptions"] for r in results),
            "wall_s": time.perf_counter() - wall0,
        },
    }
    if record_steps:
        out_run["steps"] = steps
    return out_run


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    runs_out = []
    with tempfile.TemporaryDirectory(prefix="vllm-ref-model-") as model_dir:
        (Path(model_dir) / "config.json").write_text(json.dumps(TINY_MODEL_CONFIG), encoding="utf-8")
        for run in spec["runs"]:
            result = run_one(run, model_dir)
            summary = result["summary"]
            print(
                f"[driver] {result['name']}: {summary['steps']} steps, {summary['end_s']:.1f} virtual s, "
                f"{summary['preemptions']} preemptions, {summary['wall_s']:.1f} s wall",
                file=sys.stderr,
                flush=True,
            )
            runs_out.append(result)
    out = {"vllm_version": vllm.__version__, "runs": runs_out}
    Path(argv[2]).write_text(json.dumps(out), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
