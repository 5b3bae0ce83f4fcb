"""The engine on benchmark 5's published runs: the same requests give vLLM's latencies."""

from __future__ import annotations

import json

from benchmarks.engine_vs_vllm import RESULTS, run


def test_the_engine_reproduces_a_kv_limited_vllm_run_with_its_preemptions() -> None:
    reference = json.loads((RESULTS / "vllm_reference.json").read_text())
    (kv,) = [sc for sc in reference["scenarios"] if sc["config"]["num_blocks"] < 1_000_000]
    row = next(r for r in kv["loads"] if r["preemptions"] > 0)
    ttft_ms, itl_ms, preemptions = run(kv, row, reference["step_cost"])
    assert abs(ttft_ms / row["mean_ttft_ms"] - 1) < 0.03
    assert abs(itl_ms / row["mean_itl_ms"] - 1) < 0.02
    assert preemptions == row["preemptions"]
