"""Record vLLM's per-step scheduling decisions as small golden traces (CI fixtures).

    .venv/bin/python -m benchmarks.vllm_reference.golden [--out DIR] [--engine v1|v0|all]

needs the vLLM venvs (``benchmarks/vllm_reference/setup.sh`` for V1, ``setup.sh 0.8.5`` for the V0
traces ``v0_*.json``); CI only reads the files it writes
(``tests/unit/load_emulator/test_vllm_golden_fixtures.py`` checks they are well formed, and the
engine's replay test compares its decisions with them). Each scenario is small enough to record
every step (a few hundred) and exercises one behaviour: chunking of prompts longer than the
budget, a saturated token budget, KV pressure with preemption, mixed lengths, a burst.
The format is documented in ``tests/fixtures/vllm_golden/README.md``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.vllm_reference.runner import VLLM_V0_VERSION, VLLM_VERSION, default_vllm_python, run_driver
from benchmarks.vllm_reference.scenarios import A100_13B, azure_pairs, step_cost_json

OUT_DIR = Path("tests/fixtures/vllm_golden")
RESULT_KEYS = ("id", "first_token_s", "finish_s", "preemptions")


@dataclass(frozen=True, slots=True)
class Golden:
    name: str
    note: str
    config: dict[str, Any]
    requests: list[dict[str, Any]]
    engine: str = "v1"


def _pairs(ins: np.ndarray, outs: np.ndarray) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in zip(ins, outs, strict=True)]


def _requests(arrivals: np.ndarray, pairs: list[tuple[int, int]]) -> list[dict[str, Any]]:
    return [
        {"id": f"r{i}", "arrival_s": round(float(t), 6), "in_tokens": int(a), "out_tokens": int(b)}
        for i, (t, (a, b)) in enumerate(zip(arrivals, pairs, strict=True))
    ]


def scenarios() -> list[Golden]:
    """The five recorded scenarios (seeded; the same list on every run)."""
    rng = np.random.default_rng(2022)
    out = []
    # Prompts of 1,200-3,000 tokens against a 512-token budget: every prompt takes 3-6 chunks,
    # and a new prompt's first chunk shares a step with another's last one.
    n = 14
    pairs = _pairs(rng.integers(1200, 3001, n), rng.integers(16, 65, n))
    out.append(
        Golden(
            "chunking",
            "prompts longer than the token budget are prefilled in chunks, running requests first",
            {"max_num_seqs": 8, "max_num_batched_tokens": 512, "num_blocks": 100_000},
            _requests(np.cumsum(rng.exponential(0.4, n)), pairs),
        )
    )
    # 40 requests at ~12 req/s against a 256-token budget and 32 seats: decodes and prefill
    # chunks compete for the budget on most steps.
    n = 40
    pairs = _pairs(rng.integers(150, 400, n), rng.integers(20, 60, n))
    out.append(
        Golden(
            "budget",
            "the token budget binds: decodes take their tokens first, prefill chunks share the rest",
            {"max_num_seqs": 32, "max_num_batched_tokens": 256, "num_blocks": 100_000},
            _requests(np.cumsum(rng.exponential(1 / 12, n)), pairs),
        )
    )
    # 160 blocks of 16 tokens (2,544 usable tokens) for 24 requests of 200-400 + 80-160 tokens
    # arriving within ~1 s: decodes run out of blocks and the newest running request is preempted.
    n = 24
    pairs = _pairs(rng.integers(200, 401, n), rng.integers(80, 161, n))
    out.append(
        Golden(
            "kv_pressure",
            "a small KV cache: admission needs the whole prompt's blocks; a decode without a free "
            "block preempts the newest running request (recompute)",
            {"max_num_seqs": 32, "max_num_batched_tokens": 1024, "num_blocks": 160},
            _requests(np.cumsum(rng.exponential(0.04, n)), pairs),
        )
    )
    # 16 (in, out) pairs from the Azure 2023 conversation trace, outputs capped at 64 tokens to
    # keep the trace short; a 1,024-token budget.
    trace = azure_pairs()
    n = 16
    idx = rng.integers(0, len(trace), n)
    pairs = [(trace[int(i)][0], min(trace[int(i)][1], 64)) for i in idx]
    out.append(
        Golden(
            "mixed",
            "Azure 2023 conversation lengths (outputs capped at 64): short and long prompts interleave",
            {"max_num_seqs": 16, "max_num_batched_tokens": 1024, "num_blocks": 100_000},
            _requests(np.cumsum(rng.exponential(0.25, n)), pairs),
        )
    )
    # Four requests running, then 40 arrive at the same instant: more than the 32 seats and the
    # 2,048-token budget, so the burst is admitted over several steps in arrival (id) order.
    pairs = [(256, 96)] * 4 + [(int(a), 64) for a in rng.integers(100, 300, 40)]
    arrivals = np.concatenate([np.array([0.0, 0.01, 0.02, 0.03]), np.full(40, 0.5)])
    out.append(
        Golden(
            "burst",
            "40 requests arrive at once: seats (max_num_seqs) and the budget admit them over several steps",
            {"max_num_seqs": 32, "max_num_batched_tokens": 2048, "num_blocks": 100_000},
            _requests(arrivals, pairs),
        )
    )
    return out


def scenarios_v0() -> list[Golden]:
    """Prefill-first traces of vLLM 0.8.5's V0 scheduler (chunked prefill off), ``v0_*.json``."""
    rng = np.random.default_rng(2023)
    v0 = {"engine": "v0", "enable_chunked_prefill": False, "max_model_len": 2048}
    out = []
    # 48 requests at ~10 req/s, 150-600 in: a prefill step takes as many waiting prompts as fit
    # the 2,048-token budget and the seats, and the running decodes pause for it.
    n = 48
    pairs = _pairs(rng.integers(150, 601, n), rng.integers(20, 60, n))
    out.append(
        Golden(
            "v0_prefill_first",
            "V0: waiting prompts go first, whole, in a prefill-only step (within the budget and seats); "
            "decodes run only in steps without prefills",
            {**v0, "max_num_seqs": 32, "max_num_batched_tokens": 2048, "num_blocks": 100_000},
            _requests(np.cumsum(rng.exponential(0.1, n)), pairs),
            engine="v0",
        )
    )
    # 200 blocks for 24 requests of 300-500 + 100-200 tokens arriving within ~1 s: V0 admits while
    # the prompt's blocks fit above its 1% watermark and preempts the newest running request
    # (recompute) when a decode finds no free block.
    n = 24
    pairs = _pairs(rng.integers(300, 501, n), rng.integers(100, 201, n))
    out.append(
        Golden(
            "v0_kv_pressure",
            "V0 with a small KV cache: admission needs the prompt's blocks above a 1% watermark; a "
            "decode without a free block preempts the newest running request (recompute)",
            {**v0, "max_num_seqs": 32, "max_num_batched_tokens": 2048, "num_blocks": 200},
            _requests(np.cumsum(rng.exponential(0.04, n)), pairs),
            engine="v0",
        )
    )
    # Four requests running, then 40 at once: the burst is admitted in prefill steps of up to
    # 2,048 prompt tokens, while the four wait.
    pairs = [(256, 96)] * 4 + [(int(a), 64) for a in rng.integers(100, 300, 40)]
    arrivals = np.concatenate([np.array([0.0, 0.01, 0.02, 0.03]), np.full(40, 0.5)])
    out.append(
        Golden(
            "v0_burst",
            "V0: 40 requests arrive at once and are prefilled in budget-sized prefill steps",
            {**v0, "max_num_seqs": 32, "max_num_batched_tokens": 2048, "num_blocks": 100_000},
            _requests(arrivals, pairs),
            engine="v0",
        )
    )
    return out


def fixture(g: Golden, version: str, result: dict[str, Any]) -> dict[str, Any]:
    """The fixture document: the driver's full config, the requests, every step and the results."""
    return {
        "scenario": g.name,
        "vllm_version": version,
        "note": g.note,
        "config": result["config"],
        "step_cost": result["step_cost"],
        "requests": g.requests,
        "steps": result["steps"],
        "results": [{k: r[k] for k in RESULT_KEYS} for r in result["results"]],
    }


def dumps(doc: dict[str, Any]) -> str:
    """JSON with one request, step or result per line: small, and readable in a diff."""
    lines = ["{"]
    keys = list(doc)
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        value = doc[key]
        if isinstance(value, list):
            rows = [f"  {json.dumps(v, separators=(', ', ': '))}" for v in value]
            lines.append(f'"{key}": [')
            lines.append(",\n".join(rows))
            lines.append(f"]{comma}")
        else:
            lines.append(f'"{key}": {json.dumps(value)}{comma}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--engine", choices=("v1", "v0", "all"), default="all")
    args = parser.parse_args()
    cost = step_cost_json(A100_13B)
    engines = [("v1", scenarios(), VLLM_VERSION), ("v0", scenarios_v0(), VLLM_V0_VERSION)]
    args.out.mkdir(parents=True, exist_ok=True)
    for engine, goldens, version in engines:
        if args.engine not in (engine, "all"):
            continue
        runs = [
            {
                "name": g.name,
                "config": g.config,
                "step_cost": cost,
                "requests": g.requests,
                "record_steps": True,
            }
            for g in goldens
        ]
        ran_version, results = run_driver(runs, default_vllm_python(version), jobs=1)
        for g, result in zip(goldens, results, strict=True):
            path = args.out / f"{g.name}.json"
            path.write_text(dumps(fixture(g, ran_version, result)), encoding="utf-8")
            summary = result["summary"]
            print(
                f"{path}: {summary['steps']} steps, {summary['preemptions']} preemptions, "
                f"{path.stat().st_size / 1000:.0f} kB"
            )


if __name__ == "__main__":
    main()
