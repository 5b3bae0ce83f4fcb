"""Drive vLLM's own V1 scheduler standalone on CPU at virtual time, with a synthetic step cost.

Run INSIDE the vLLM venv made by ``setup.sh`` (never by the project's interpreter):

    ~/.cache/inferno-vllm/venv-0.33.0/bin/python benchmarks/vllm_reference/driver.py IN.json OUT.json

It imports nothing from the project (the host side, :mod:`benchmarks.bench_vllm_reference` and
:mod:`benchmarks.vllm_reference.golden`, writes the input and reads the output), so it lies outside
the project's mypy scope. The engine is ``engine_v1.py`` (vLLM 0.33's V1 ``Scheduler``) or, when
a run's ``config["engine"]`` is ``"v0"``, ``engine_v0.py`` (vLLM 0.8.5's V0 scheduler, in its own
venv); each builds the scheduler standalone and no model is loaded (a ``config.json`` for a tiny
Llama in a temporary directory satisfies V1's ``ModelConfig``).

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

import importlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
V0_CONFIG_KEYS = (
    "engine",
    "max_num_seqs",
    "max_num_batched_tokens",
    "block_size",
    "num_blocks",
    "enable_chunked_prefill",
    "long_prefill_token_threshold",
    "enable_prefix_caching",
    "policy",
    "max_model_len",
)
"""The settings the V0 engine passes to vLLM (V0 has no ``watermark`` setting, its block manager
keeps 1% of the blocks free; nor the V1-only ones)."""


def prompt_tokens(index: int, n: int) -> list[int]:
    """Distinct token ids per request, so that no two prompts share a prefix."""
    return [(index * 31 + k) % 900 + 10 for k in range(n)]


def run_one(run: dict[str, Any], model_dir: str) -> dict[str, Any]:
    """One scenario from an empty engine until every request has finished."""
    config = {**CONFIG_DEFAULTS, **run.get("config", {})}
    if config["engine"] == "v0":
        config = {k: config[k] for k in V0_CONFIG_KEYS}
    engine = importlib.import_module(f"engine_{config['engine']}").Engine(config, model_dir)
    cost = run["step_cost"]
    fixed_ms, per_decode_ms = cost["fixed_ms"], cost["per_decode_ms"]
    per_prefill_ms, per_context_ms = cost["per_prefill_token_ms"], cost["per_context_token_ms"]
    record_steps = bool(run.get("record_steps", False))
    record_tokens = bool(run.get("record_token_times", False))

    pending = sorted(run["requests"], key=lambda r: r["arrival_s"])  # stable: ties in list order
    state: dict[str, dict[str, Any]] = {
        spec["id"]: {
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
        for spec in run["requests"]
    }
    steps: list[dict[str, Any]] = []
    now_s, next_i, n_steps, busy_s = 0.0, 0, 0, 0.0
    wall0 = time.perf_counter()
    while True:
        while next_i < len(pending) and pending[next_i]["arrival_s"] <= now_s:
            spec = pending[next_i]
            next_i += 1
            prompt = prompt_tokens(next_i, int(spec["in_tokens"]))
            engine.add(spec["id"], prompt, int(spec["out_tokens"]), spec["arrival_s"])
        if engine.unfinished() == 0:
            if next_i >= len(pending):
                break
            now_s = max(now_s, pending[next_i]["arrival_s"])
            continue
        rows, preempted, kv_used = engine.plan()
        if not rows:
            if next_i >= len(pending):
                raise RuntimeError(f"{run.get('name')}: nothing schedulable at {now_s:.3f} s (KV too small?)")
            now_s = max(now_s, pending[next_i]["arrival_s"])
            continue
        decodes = sum(1 for row in rows if row[3])
        prefill_tokens = sum(row[1] for row in rows if not row[3])
        context_tokens = sum(row[2] for row in rows)
        step_ms = fixed_ms + per_decode_ms * decodes + per_prefill_ms * prefill_tokens
        duration_s = (step_ms + per_context_ms * context_tokens) / 1000.0
        start_s = now_s
        now_s += duration_s
        busy_s += duration_s
        n_steps += 1
        for rid in preempted:
            state[rid]["preemptions"] += 1
        for rid, *_, sample in rows:
            if not sample:
                continue
            rec = state[rid]
            if rec["first_token_s"] is None:
                rec["first_token_s"] = now_s
            else:
                rec["itl_sum_s"] += now_s - rec["last_token_s"]
                rec["itl_count"] += 1
            rec["last_token_s"] = now_s
            if record_tokens:
                rec["token_times_s"].append(now_s)
        finished = engine.finish()
        for rid in finished:
            state[rid]["finish_s"] = now_s
        if record_steps:
            steps.append(
                {
                    "start_s": round(start_s, 9),
                    "duration_s": round(duration_s, 9),
                    "scheduled": [[row[0], row[1]] for row in rows],
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
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine_v0.py, engine_v1.py
    import vllm  # noqa: PLC0415 (only its version; the engines import the scheduler)

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
