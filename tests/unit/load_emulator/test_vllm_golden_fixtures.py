"""The golden traces of vLLM's own scheduler (``tests/fixtures/vllm_golden/``) are well formed.

``*.json`` are vLLM 0.33's V1 scheduler (chunked prefill); ``v0_*.json`` are vLLM 0.8.5's V0
scheduler (prefill-first: a step is all prefills or all decodes).

The fixtures are recorded by ``benchmarks/vllm_reference/golden.py`` with vLLM installed; this test
needs no vLLM. It replays each trace's token accounting: every scheduled chunk fits its request's
prompt plus generated tokens, a request samples a token when its computed tokens reach that end,
a preemption resets its computed tokens (recompute), and the recorded times, first tokens,
finishes, preemption counts, KV blocks and step durations (the StepPerf formula) follow from it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vllm_golden"
FILES = sorted(FIXTURES.glob("*.json"))
TOP_KEYS = {"scenario", "vllm_version", "note", "config", "step_cost", "requests", "steps", "results"}
CONFIG_KEYS = {
    "max_num_seqs",
    "max_num_batched_tokens",
    "block_size",
    "num_blocks",
    "enable_chunked_prefill",
    "long_prefill_token_threshold",
}
STEP_COST_KEYS = {"fixed_ms", "per_decode_ms", "per_prefill_token_ms", "per_context_token_ms"}
MAX_FILE_BYTES = 200_000
VERSION = {"v1": "0.33.0", "v0": "0.8.5"}
NULL_BLOCKS = {"v1": 1, "v0": 0}
"""V1's block pool keeps one null block; V0's block manager none."""


@dataclass
class Replayed:
    in_tokens: int
    out_tokens: int
    computed: int = 0
    generated: int = 0
    scheduled_tokens: int = 0
    preemptions: int = 0
    first_token_s: float = math.nan
    finish_s: float = math.nan
    live: bool = False
    chunks: list[int] = field(default_factory=list)


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def replay(doc: dict[str, Any]) -> dict[str, Replayed]:
    """Walk the steps, checking each against the token accounting; the per-request outcome."""
    config, cost = doc["config"], doc["step_cost"]
    reqs = {r["id"]: Replayed(r["in_tokens"], r["out_tokens"]) for r in doc["requests"]}
    arrival = {r["id"]: r["arrival_s"] for r in doc["requests"]}
    block = config["block_size"]
    for i, step in enumerate(doc["steps"]):
        for rid in step["preempted"]:
            req = reqs[rid]
            assert req.live, f"step {i}: {rid} preempted while not running"
            req.computed, req.live = 0, False
            req.preemptions += 1
        decodes = prefill_tokens = context_tokens = 0
        end_s = step["start_s"] + step["duration_s"]
        sampled = set()
        for rid, n in step["scheduled"]:
            req = reqs[rid]
            assert arrival[rid] <= step["start_s"] + 1e-9, f"step {i}: {rid} scheduled before it arrived"
            assert n >= 1
            total = req.in_tokens + req.generated
            before = req.computed
            assert before + n <= total, f"step {i}: {rid} schedules past its tokens"
            if n == 1 and before >= req.in_tokens and before == total - 1:
                decodes += 1
            else:
                prefill_tokens += n
            req.computed += n
            req.scheduled_tokens += n
            req.live = True
            context_tokens += req.computed
            if req.computed == total:
                req.generated += 1
                sampled.add(rid)
                if req.generated == 1:
                    req.first_token_s = end_s
        # Blocks held during the step: every live request's computed tokens, in whole blocks.
        held = sum(math.ceil(r.computed / block) for r in reqs.values() if r.live)
        assert step["kv_blocks_used"] == held, f"step {i}: {step['kv_blocks_used']} blocks used, {held} held"
        expected_ms = (
            cost["fixed_ms"]
            + cost["per_decode_ms"] * decodes
            + cost["per_prefill_token_ms"] * prefill_tokens
            + cost["per_context_token_ms"] * context_tokens
        )
        assert step["duration_s"] * 1000 == pytest.approx(expected_ms, rel=1e-6, abs=1e-6), f"step {i}"
        done = {rid for rid in sampled if reqs[rid].generated == reqs[rid].out_tokens}
        assert set(step["finished"]) == done, f"step {i}: {step['finished']}, expected {sorted(done)}"
        for rid in done:
            reqs[rid].finish_s, reqs[rid].live = end_s, False
    return reqs


@pytest.fixture(params=FILES, ids=[p.stem for p in FILES])
def fixture_path(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def test_fixtures_exist() -> None:
    names = {p.stem for p in FILES}
    assert names >= {"chunking", "budget", "kv_pressure", "mixed", "burst"}
    assert names >= {"v0_prefill_first", "v0_kv_pressure", "v0_burst"}


def test_fixture_is_small_and_complete(fixture_path: Path) -> None:
    assert fixture_path.stat().st_size < MAX_FILE_BYTES
    doc = load(fixture_path)
    assert set(doc) == TOP_KEYS
    assert doc["scenario"] == fixture_path.stem
    engine = doc["config"]["engine"]
    assert doc["vllm_version"] == VERSION[engine]
    assert fixture_path.stem.startswith("v0_") == (engine == "v0")
    assert set(doc["config"]) >= CONFIG_KEYS
    assert doc["config"]["enable_chunked_prefill"] is (engine == "v1")
    assert set(doc["step_cost"]) == STEP_COST_KEYS
    assert 50 <= len(doc["steps"]) <= 1000


def test_ids_are_consistent(fixture_path: Path) -> None:
    doc = load(fixture_path)
    ids = [r["id"] for r in doc["requests"]]
    assert len(ids) == len(set(ids))
    assert sorted(r["id"] for r in doc["results"]) == sorted(ids)
    known = set(ids)
    for step in doc["steps"]:
        step_ids = [rid for rid, _ in step["scheduled"]]
        assert len(step_ids) == len(set(step_ids))
        assert set(step_ids) | set(step["preempted"]) | set(step["finished"]) <= known


def test_steps_are_in_time_order_within_limits(fixture_path: Path) -> None:
    doc = load(fixture_path)
    config = doc["config"]
    end_s = 0.0
    for step in doc["steps"]:
        assert step["start_s"] >= end_s - 1e-8  # times are rounded to 1 ns
        assert step["duration_s"] > 0
        end_s = step["start_s"] + step["duration_s"]
        assert 1 <= len(step["scheduled"]) <= config["max_num_seqs"]
        assert sum(n for _, n in step["scheduled"]) <= config["max_num_batched_tokens"]
        assert 0 <= step["kv_blocks_used"] <= config["num_blocks"] - NULL_BLOCKS[config["engine"]]


def test_tokens_add_up_with_recompute(fixture_path: Path) -> None:
    doc = load(fixture_path)
    reqs = replay(doc)
    for rid, req in reqs.items():
        assert req.generated == req.out_tokens, rid
        # The last sampled token is never fed back; a preemption recomputes what was computed.
        assert req.computed == req.in_tokens + req.out_tokens - 1, rid
        if req.preemptions == 0:
            assert req.scheduled_tokens == req.in_tokens + req.out_tokens - 1, rid
        else:
            assert req.scheduled_tokens > req.in_tokens + req.out_tokens - 1, rid


def test_results_follow_from_the_steps(fixture_path: Path) -> None:
    doc = load(fixture_path)
    reqs = replay(doc)
    arrival = {r["id"]: r["arrival_s"] for r in doc["requests"]}
    for row in doc["results"]:
        req = reqs[row["id"]]
        assert row["first_token_s"] == pytest.approx(req.first_token_s, abs=1e-6)
        assert row["finish_s"] == pytest.approx(req.finish_s, abs=1e-6)
        assert row["preemptions"] == req.preemptions
        assert arrival[row["id"]] < row["first_token_s"] <= row["finish_s"]


@pytest.mark.parametrize("name", ["kv_pressure", "v0_kv_pressure"])
def test_the_kv_pressure_traces_preempt(name: str) -> None:
    doc = load(FIXTURES / f"{name}.json")
    assert sum(len(s["preempted"]) for s in doc["steps"]) > 0


def test_v0_steps_are_prefill_or_decode_only() -> None:
    for path in FILES:
        doc = load(path)
        if doc["config"]["engine"] != "v0":
            continue
        reqs = {r["id"]: r for r in doc["requests"]}
        for i, step in enumerate(doc["steps"]):
            whole = {n > 1 or reqs[rid]["in_tokens"] == 1 for rid, n in step["scheduled"]}
            assert len(whole) == 1, f"{path.stem} step {i} mixes prefills and decodes"
