"""The chunked engine's model (issue 22): per-step cost, token budget, KV cache, length spread."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from contract.data.perf import StepPerf
from contract.data.system import SystemData
from optimizer.candidates import build_problem, build_problem_with_context
from optimizer.model.latency import ChunkRows, prefill_ms_at, row_set
from optimizer.model.predict import predict
from optimizer.model.queue import queue_state
from optimizer.model.service_time import LengthSpread, service_model
from optimizer.settings import OptimizerSettings
from tests.unit.optimizer.test_candidates import server, system

STEP = StepPerf(20.58, 0.041, 0.041, 0.00128125)
FIXED = LengthSpread(0.0, 0.0)
SETTINGS = OptimizerSettings()


def at(rate_rps: float, **kwargs: Any) -> Any:
    kwargs.setdefault("spread", FIXED)
    return predict(STEP, kwargs.pop("batch", 32), 512, 256, rate_rps, SETTINGS, **kwargs)


def test_a_lone_request_decodes_at_one_step_per_token() -> None:
    """No double count: at zero load the ITL is one decode step of a lone request."""
    alone = 20.58 + 0.041 + 0.00128125 * (512 + 128)
    assert at(0.0, budget_tokens=2048).itl_ms == pytest.approx(alone, rel=1e-6)


def test_a_prompt_the_budget_cannot_hold_with_decodes_takes_two_steps() -> None:
    """With 512 tokens per step a 512-token prompt shares the step with decodes: two steps."""
    wide, narrow = at(0.5, budget_tokens=2048), at(0.5, budget_tokens=512)
    assert narrow.itl_ms == pytest.approx(wide.itl_ms, rel=0.01)
    assert 15.0 < narrow.ttft_ms - wide.ttft_ms < 30.0  # about one step more


@pytest.mark.parametrize(
    ("batch", "budget", "kv", "chain"),
    [(32, 2048, 0, 32), (256, 512, 0, 172), (256, 2048, 32_000, 49), (32, 2048, 32_000, 32)],
    ids=["batch", "budget", "kv-cache", "kv-room-to-spare"],
)
def test_saturation_is_the_chain_batch_the_budget_and_kv_allow(
    batch: int, budget: int, kv: int, chain: int
) -> None:
    model = service_model(STEP, 512, 256, spread=FIXED, budget_tokens=budget)
    assert model.chain_batch(batch, kv) == chain
    rows = row_set([model], [batch], [10 * batch], [kv])
    assert rows.queue.batch[0] == chain
    expected = 1000.0 * chain / model.service_ms(chain)
    assert at(1.0, batch=batch, budget_tokens=budget, kv_tokens=kv).saturation_rps == pytest.approx(expected)


def test_the_kv_cache_holds_requests_by_their_mean_context() -> None:
    model = service_model(STEP, 512, 256, spread=FIXED, budget_tokens=2048)
    assert model.kv_request_tokens == pytest.approx(512 + 127.5)
    assert model.kv_batch(32_000) == 49  # 32000 / (639.5 + 7.5)
    long_outputs = service_model(STEP, 512, 256, budget_tokens=2048)  # cv^2 1: long ones stay longest
    assert long_outputs.kv_request_tokens > model.kv_request_tokens + 100


def test_fixed_lengths_wait_half_as_long_in_the_queue() -> None:
    model = service_model(STEP, 512, 256, spread=FIXED, budget_tokens=2048)
    rows = row_set([model, replace(model, wait_scale=1.0)], [32, 32], [320, 320])
    state = queue_state(rows.queue, np.log(np.array([2.3, 2.3])))
    assert state.wait_ms[0] == pytest.approx(0.5 * state.wait_ms[1])
    assert state.busy[0] == pytest.approx(state.busy[1])


def test_prefill_steps_docstring_example() -> None:
    """in 512 fixed, B 512, p_0 = 0.4, d = Ls/busy = 5, nothing ahead: 1.6 steps."""
    model = service_model(STEP, 512, 256, spread=FIXED, budget_tokens=512)
    rows = row_set([model], [32], [320])
    state = queue_state(rows.queue, np.log(np.array([0.5])))
    state = state._replace(idle_prob=np.array([0.4]), busy=np.array([3.0]), throughput_rps=np.array([0.0]))
    step = np.array([30.0])
    chunks: ChunkRows = rows.chunks
    assert prefill_ms_at(chunks, state, step)[0] == pytest.approx(1.6 * 30.0 + model.prefill_own_ms)


def test_length_spread_is_validated() -> None:
    with pytest.raises(ValueError, match="finite and >= 0"):
        LengthSpread(-1.0, 0.0)
    with pytest.raises(ValueError, match=r"in \[-1, 1\]"):
        LengthSpread(1.0, 1.0, 2.0)
    assert LengthSpread(0.92, 0.60, -0.112).cross() == pytest.approx(1 - 0.112 * math.sqrt(0.92 * 0.6))


def _kv_system(**entry: Any) -> SystemData:
    data = system(server(out=256)).model_dump(mode="json", by_alias=True)
    for model in data["models"]["models"]:
        model.update(entry)
    return SystemData.model_validate(data)


def test_kv_cache_caps_the_batch_with_a_reason() -> None:
    """A100: maxBatchSize 32 at 512 tokens, out 256 -> rule 64; a 16,000-token cache holds 40
    (128 in + 256 out with the default spread: 384 + 7.5 tokens each)."""
    problem, contexts = build_problem_with_context(_kv_system(kvCacheTokens=16_000), SETTINGS)
    (a100,) = [c for c in problem.servers[0].candidates if c.accelerator == "A100"]
    assert a100.max_batch == 40
    assert "batch 64 capped at 40: the KV cache (16000 tokens)" in contexts["s"].candidate_notes["A100"]
    unlimited = build_problem(_kv_system(), SETTINGS)
    (free,) = [c for c in unlimited.servers[0].candidates if c.accelerator == "A100"]
    assert free.max_batch == 64


def test_the_load_spread_reaches_the_model() -> None:
    """Fixed lengths (cv^2 0) wait half as long in the queue as with the default spread."""
    fixed = system(server(out=256, rpm=20_000))
    data = fixed.model_dump(mode="json", by_alias=True)
    data["servers"]["servers"][0]["currentAlloc"]["load"] |= {"inTokensCv2": 0.0, "outTokensCv2": 0.0}
    spread = SystemData.model_validate(data)
    assert spread.servers.servers[0].load.out_tokens_cv2 == 0.0
    assert (
        "outTokensCv2"
        not in fixed.model_dump(mode="json", by_alias=True)["servers"]["servers"][0]["currentAlloc"]["load"]
    )
    base = {c.accelerator: c for c in build_problem(fixed, SETTINGS).servers[0].candidates}
    tight = {c.accelerator: c for c in build_problem(spread, SETTINGS).servers[0].candidates}
    assert tight["A100"].max_rate_per_replica_rps == base["A100"].max_rate_per_replica_rps  # ITL binds
    assert tight["A100"].ttft_ms < base["A100"].ttft_ms
