"""Hand-checked timelines of one replica, one per data schema, and bookkeeping invariants.

Times in the expected values are worked out in the comments from the time model in
:mod:`load_emulator.timing` (ms in the data, s in the engine).
"""

from __future__ import annotations

import math

import pytest

from load_emulator.engine import EngineConfig
from load_emulator.patterns import Arrival, Steps
from load_emulator.stats import DONE_WIDTH
from load_emulator.tokens import TokenSpec
from tests.unit.load_emulator.builders import (
    DEP,
    FixedArrivals,
    decode_only,
    iteration,
    one_server,
    prefill_decode,
)


def _done(engine: object) -> list[tuple[float, ...]]:
    stats = engine.stats(DEP)  # type: ignore[attr-defined]
    rows = list(stats.done)
    return [tuple(rows[i : i + 6]) for i in range(0, len(rows), DONE_WIDTH)]


def test_decode_only_two_requests_share_iterations() -> None:
    # alpha 10 ms, beta 1 ms: t(1) = 11 ms, t(2) = 12 ms; 10 output tokens each.
    # r1 at 0: first iteration [0, 11]. r2 at 5 ms joins at the boundary 11 ms: iteration [11, 23]
    # gives r1 its 2nd token and r2 its 1st (TTFT 18 ms). Then 8 iterations of 12 ms: r1 ends at
    # 119 ms (its 10th token); r2 needs one more, alone: 130 ms.
    pattern = FixedArrivals([Arrival(0.0, 0, 10), Arrival(0.005, 0, 10)])
    engine, _ = one_server(decode_only(10, 1, max_batch=4), pattern)
    engine.advance_to(1.0)
    done = _done(engine)
    assert [round(d[0] * 1000, 6) for d in done] == [119.0, 130.0]
    assert [round(d[1] * 1000, 6) for d in done] == [11.0, 18.0]  # TTFT
    assert [round(d[3] * 1000, 6) for d in done] == [119.0, 125.0]  # e2e


def test_prefill_first_single_request() -> None:
    # prefill f(1) = gamma + delta*in*1 = 50 + 0.1*100 = 60 ms (first token), then 4 decodes of
    # d(1) = 10 + 1 = 11 ms: e2e 104 ms, TPOT 11 ms.
    pattern = FixedArrivals([Arrival(0.0, 100, 5)])
    engine, _ = one_server(prefill_decode(10, 1, 50, 0.1), pattern)
    engine.advance_to(1.0)
    ((_, ttft, tpot, e2e, n_in, n_out),) = _done(engine)
    assert (ttft, e2e, tpot) == pytest.approx((0.060, 0.104, 0.011))
    assert (n_in, n_out) == (100, 5)


def test_chunked_iteration_single_request_attends_its_context() -> None:
    # prefill: alpha + beta*100 + gamma*100 = 10 + 50 + 1 = 61 ms (first token);
    # token 2 attends 100 + 1: 10 + 0.5 + 1.01 = 11.51 ms; token 3 attends 102: 11.52 ms.
    pattern = FixedArrivals([Arrival(0.0, 100, 3)])
    engine, _ = one_server(iteration(10, 0.5, 0.01), pattern)
    engine.advance_to(1.0)
    ((_, ttft, _, e2e, _, _),) = _done(engine)
    assert ttft == pytest.approx(0.061)
    assert e2e == pytest.approx(0.061 + 0.01151 + 0.01152)


def test_chunked_prefill_splits_long_prompts_by_token_budget() -> None:
    # budget 64 tokens: a 100-token prompt takes two iterations, 10 + 0.5*64 + 0.01*64 = 42.64 ms
    # then 10 + 0.5*36 + 0.01*100 = 29 ms; the first token comes after the second.
    pattern = FixedArrivals([Arrival(0.0, 100, 1)])
    config = EngineConfig(sync_period_s=0, max_num_batched_tokens=64)
    engine, _ = one_server(iteration(10, 0.5, 0.01, max_batch=8), pattern, config=config)
    engine.advance_to(1.0)
    ((_, ttft, tpot, _, _, _),) = _done(engine)
    assert ttft == pytest.approx(0.04264 + 0.029)
    assert math.isnan(tpot)  # one output token: no inter-token gap


def test_prefill_first_newcomer_pauses_running_decodes() -> None:
    # r1 (in 100, out 5) prefills [0, 60]; decodes of 11 ms. r2 arrives at 65 ms, joins at the end
    # of r1's iteration (71 ms): its prefill with n = 2 takes 50 + 0.1*100*2 = 70 ms -> [71, 141],
    # r1 waits: its next gap is 141 + 12 - 71 = 82 ms (prefill + one decode of d(2) = 12 ms).
    pattern = FixedArrivals([Arrival(0.0, 100, 5), Arrival(0.065, 100, 5)])
    engine, _ = one_server(prefill_decode(10, 1, 50, 0.1), pattern)
    engine.advance_to(1.0)
    r1, r2 = _done(engine)
    assert r2[1] == pytest.approx(0.141 - 0.065)  # r2's TTFT
    # r1: tokens at 60, 71, 153, 165, 177 -> e2e 177 ms
    assert r1[3] == pytest.approx(0.177)
    itl = engine.stats(DEP).window(0, 1)
    assert itl.itl_p95_ms == pytest.approx(82.0)


@pytest.mark.parametrize(
    ("perf", "scheduling"),
    [
        (decode_only(20, 0.4, max_batch=16), "chunked"),
        (prefill_decode(20, 0.4, 160, 0.012, max_batch=16), "chunked"),
        (iteration(20, 0.05, 0.001, max_batch=16), "chunked"),
        (iteration(20, 0.05, 0.001, max_batch=16), "prefill-first"),
    ],
    ids=["decode-only", "prefill-decode", "iteration-chunked", "iteration-prefill-first"],
)
def test_books_balance_after_the_queue_empties(perf: object, scheduling: str) -> None:
    """Every token gap is recorded once; counters match the exact per-request log."""
    pattern = Steps(((0.0, 300.0), (120.0, 0.0)), TokenSpec(200, 100, "geometric"))
    config = EngineConfig(sync_period_s=0, scheduling=scheduling)  # type: ignore[arg-type]
    engine, _ = one_server(perf, pattern, replicas=2, config=config, seed=3)  # type: ignore[arg-type]
    metrics = [r.metrics for _, r in engine.replicas()]
    engine.advance_to(10_000.0)
    stats = engine.stats(DEP)
    done = _done(engine)
    w = stats.window(0, 10_001)
    assert w.aborted == 0 and w.completed == w.arrivals > 300
    gaps = list(stats.itl_rec)
    gap_total = sum(gaps[i + 1] * gaps[i + 2] for i in range(0, len(gaps), 3))
    assert gap_total == pytest.approx(sum(d[3] - d[1] for d in done), rel=1e-9)
    assert sum(m.generation_tokens for m in metrics) == sum(d[5] for d in done)
    assert sum(m.prompt_tokens for m in metrics) == sum(d[4] for d in done)
    assert sum(m.success_by_reason["stop"] for m in metrics) == len(done)
    assert sum(m.itl.count for m in metrics) == pytest.approx(sum(d[5] - 1 for d in done))
    assert sum(m.ttft.count for m in metrics) == len(done)
