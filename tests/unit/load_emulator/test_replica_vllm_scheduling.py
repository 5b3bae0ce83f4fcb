"""One replica schedules as vLLM does: KV admission, preemption, resume order, budget, V0 prefill-first.

Hand-checked step traces of small cases (block size 4, step cost 10 ms + 1 ms per decode + 0.1 ms
per prefill token), and the bulk decode runs checked against step-by-step scheduling on random
workloads.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from contract.data.perf import PrefillDecodePerf, StepPerf
from load_emulator.reference_drive import drive_replica
from load_emulator.replica import ReplicaSim, Request, StepTrace
from load_emulator.replica_book import GONE
from load_emulator.stats import ServerStats
from load_emulator.timing import IterationCost

STEP = StepPerf(fixed_ms=10, per_decode_ms=1, per_prefill_token_ms=0.1, per_context_token_ms=0)
V0_PERF = PrefillDecodePerf(alpha_ms=10, beta_ms=1, gamma_ms=5, delta_ms=0.01)


def replica(
    *, batch: int = 4, budget: int = 16, kv_blocks: int | None = None, v0: bool = False, **kw: Any
) -> ReplicaSim:
    return ReplicaSim(
        "p",
        IterationCost.from_perf(V0_PERF if v0 else STEP),
        batch,
        ServerStats(),
        chunked=not v0,
        token_budget=budget,
        kv_capacity_tokens=None if kv_blocks is None else kv_blocks * 4,
        kv_block_tokens=4,
        trace=True,
        **kw,
    )


def requests(*specs: tuple[float, int, int]) -> list[Request]:
    """``(arrival_s, in, out)`` each, named r0, r1, ..."""
    return [Request(i, t, n_in, n_out, name=f"r{i}") for i, (t, n_in, n_out) in enumerate(specs)]


def trace_of(rep: ReplicaSim, reqs: list[Request]) -> list[StepTrace]:
    drive_replica(rep, reqs)
    assert rep.trace is not None
    return rep.trace


@pytest.mark.parametrize(
    ("kv_blocks", "reserve_full_prompt", "first_step"),
    [
        pytest.param(6, True, [("r0", 12)], id="the-whole-prompt-must-fit"),
        pytest.param(6, False, [("r0", 12), ("r1", 4)], id="without-reserve-the-first-chunk-suffices"),
        pytest.param(9, True, [("r0", 12), ("r1", 4)], id="room-for-both"),
        pytest.param(None, True, [("r0", 12), ("r1", 4)], id="unlimited-cache"),
    ],
)
def test_admission_needs_free_blocks(
    kv_blocks: int | None, reserve_full_prompt: bool, first_step: list[tuple[str, int]]
) -> None:
    # r0 takes 3 of the 5 usable blocks (one of the 6 is vLLM's null block); r1's 16-token prompt
    # needs 4 blocks, its first 4-token chunk (the budget's rest) one.
    rep = replica(budget=16, kv_blocks=kv_blocks, reserve_full_prompt=reserve_full_prompt)
    steps = trace_of(rep, requests((0.0, 12, 2), (0.0, 16, 2)))
    assert steps[0].scheduled == first_step
    assert all(r.state == GONE for r in rep.order) and rep.used_blocks == 0


def test_preemption_takes_the_newest_and_it_resumes_first() -> None:
    # 6 usable blocks of 4 tokens; three requests of 4 prompt tokens grow one token per step.
    rep = replica(batch=3, budget=16, kv_blocks=7)
    reqs = requests((0.0, 4, 10), (0.0, 4, 10), (0.0, 4, 10), (0.0, 4, 2))
    steps = trace_of(rep, reqs)
    assert steps[0].scheduled == [("r0", 4), ("r1", 4), ("r2", 4)]  # r3 finds no seat
    # Step 5: every request reaches 9 tokens and needs a third block; the newest (r2) is preempted.
    assert steps[5].scheduled == [("r0", 1), ("r1", 1)] and steps[5].preempted == ["r2"]
    # Nobody is admitted while the older requests hold the blocks r2 would need again.
    assert all(s.scheduled == [("r0", 1), ("r1", 1)] for s in steps[6:9])
    # Step 9: r0 needs a fourth block; r1 (now the newest) is preempted; r0 finishes.
    assert steps[9].scheduled == [("r0", 1)] and steps[9].preempted == ["r1"] and steps[9].finished == ["r0"]
    # The queue is r1, r2 (preempted, in running order), then r3. Each re-prefills its prompt and
    # the tokens it had generated: r1 4 + 9 (it completes at once), r2 4 + 5.
    assert steps[10].scheduled == [("r1", 13)] and steps[10].finished == ["r1"]
    assert steps[11].scheduled == [("r2", 9), ("r3", 4)]
    assert [r.preemptions for r in reqs] == [0, 1, 1, 0]
    assert rep.metrics.preemptions == 2
    # A resumed request's re-prefill token is an inter-token gap, not a second first token.
    assert rep.metrics.ttft.count == 4 and rep.metrics.generation_tokens == 10 + 10 + 10 + 2


@pytest.mark.parametrize(
    ("threshold", "r1_chunks"),
    [
        pytest.param(0, [15, 15, 15, 15, 4], id="decodes-first-then-the-rest-of-the-budget"),
        pytest.param(6, [6] * 10 + [4], id="long-prefill-cap"),
    ],
)
def test_budget_is_shared_in_running_order(threshold: int, r1_chunks: list[int]) -> None:
    # r0 decodes from t=0; r1's 64-token prompt arrives while it runs.
    rep = replica(budget=16, long_prefill_token_threshold=threshold)
    steps = trace_of(rep, requests((0.0, 4, 30), (0.015, 64, 2)))
    chunks = [n for s in steps for name, n in s.scheduled if name == "r1"][: len(r1_chunks)]
    assert chunks == r1_chunks
    # Every step that carried a chunk of r1 also decoded r0, ahead of it.
    carrying = [s for s in steps if any(name == "r1" for name, _ in s.scheduled)]
    assert all(s.scheduled[0] == ("r0", 1) for s in carrying[: len(r1_chunks)])


def test_a_lone_request_ignores_the_long_prefill_cap() -> None:
    steps = trace_of(replica(budget=16, long_prefill_token_threshold=6), requests((0.0, 40, 2)))
    assert [s.scheduled for s in steps[:3]] == [[("r0", 16)], [("r0", 16)], [("r0", 8)]]


def test_step_time_is_the_step_cost_of_what_it_computed() -> None:
    steps = trace_of(replica(budget=16), requests((0.0, 12, 3), (0.0, 8, 2)))
    # Step 0: 12 + 4 prefill tokens. Step 1: r0 decodes, r1 gets its last 4 prompt tokens.
    assert steps[0].duration_s == pytest.approx((10 + 0.1 * 16) / 1000)
    assert steps[1].scheduled == [("r0", 1), ("r1", 4)]
    assert steps[1].duration_s == pytest.approx((10 + 1 + 0.1 * 4) / 1000)


def test_v0_prefills_alone_before_decoding() -> None:
    # r0 decodes; r1 and r2 arrive together: one prefill-only step for both (12 tokens within the
    # 16-token budget), during which r0 makes no progress; r3 does not fit the budget with them.
    rep = replica(v0=True, budget=16)
    steps = trace_of(rep, requests((0.0, 4, 20), (0.05, 6, 3), (0.05, 6, 3), (0.05, 8, 3)))
    prefill = next(i for i, s in enumerate(steps) if ("r1", 6) in s.scheduled)
    assert steps[prefill].scheduled == [("r1", 6), ("r2", 6)]
    assert steps[prefill + 1].scheduled == [("r3", 8)]
    assert steps[prefill + 2].scheduled == [("r0", 1), ("r1", 1), ("r2", 1), ("r3", 1)]
    # gamma + delta * prompt tokens * running requests after the step.
    assert steps[prefill].duration_s == pytest.approx((5 + 0.01 * 12 * 3) / 1000)


def test_v0_preempts_the_newest_by_recompute() -> None:
    rep = replica(v0=True, batch=3, budget=16, kv_blocks=7, watermark=0.0)
    reqs = requests((0.0, 4, 10), (0.0, 4, 10), (0.0, 4, 10))
    steps = trace_of(rep, reqs)
    preempting = [(i, s.preempted) for i, s in enumerate(steps) if s.preempted]
    assert preempting == [(5, ["r2"]), (9, ["r1"])]
    assert steps[5].scheduled == [("r0", 1), ("r1", 1)]
    # Recompute: each re-prefills its prompt and generated tokens, the older one first, alone.
    assert [steps[10].scheduled, steps[11].scheduled] == [[("r1", 13)], [("r2", 9)]]


@pytest.mark.parametrize(
    ("v0", "kv_blocks", "aborted"),
    [
        pytest.param(False, 101, 0, id="v1-100-usable-blocks-no-watermark"),
        pytest.param(True, 100, 1, id="v0-100-blocks-1pct-watermark"),
    ],
)
def test_a_request_the_cache_can_never_hold_is_aborted(v0: bool, kv_blocks: int, aborted: int) -> None:
    # 100 blocks hold requests either way (V1 keeps a null block, V0 does not); 400 tokens of prompt
    # and output fill them exactly, which V0's watermark (int(0.01 * 100) = 1 block) never allows.
    rep = replica(v0=v0, batch=2, budget=512, kv_blocks=kv_blocks)
    drive_replica(rep, requests((0.0, 399, 2)))
    assert rep.metrics.success_by_reason["abort"] == aborted
    assert rep.metrics.success_by_reason["stop"] == 1 - aborted


def _random_run(seed: int, *, trace: bool) -> tuple[list[tuple[float, float, int]], float, float]:
    rng = random.Random(seed)
    t, specs = 0.0, []
    for _ in range(150):
        t += rng.expovariate(rng.choice([10.0, 40.0]))
        specs.append((t, rng.randint(1, 120), rng.randint(1, 60)))
    v0 = seed % 3 == 0
    rep = ReplicaSim(
        "p",
        IterationCost.from_perf(V0_PERF if v0 else StepPerf(10, 0.05, 0.05, 0.001)),
        rng.choice([2, 8, 32]),
        ServerStats(),
        chunked=not v0,
        token_budget=rng.choice([32, 64, 512]),
        kv_capacity_tokens=rng.choice([None, 16 * 30, 16 * 120]),
        long_prefill_token_threshold=rng.choice([0, 16]),
        trace=trace,
    )
    reqs = requests(*specs)
    drive_replica(rep, reqs)
    m = rep.metrics
    return [(r.first_token_s, r.finish_s, r.preemptions) for r in reqs], m.itl.sum, m.preemptions


@pytest.mark.parametrize("seed", range(12))
def test_bulk_decode_runs_equal_step_by_step_scheduling(seed: int) -> None:
    fast, fast_itl, fast_preempted = _random_run(seed, trace=False)
    slow, slow_itl, slow_preempted = _random_run(seed, trace=True)
    assert fast_preempted == slow_preempted
    assert fast_itl == pytest.approx(slow_itl, rel=1e-9)
    for a, b in zip(fast, slow, strict=True):
        assert a[0] == pytest.approx(b[0], rel=1e-9) and a[1] == pytest.approx(b[1], rel=1e-9)
        assert a[2] == b[2]


def _served(abort_s: float | None, which: int) -> tuple[ReplicaSim, list[Request], ServerStats]:
    """Three requests (8 in, 40 out) at t = 0 on one replica; request ``which`` aborted at ``abort_s``."""
    from load_emulator.server import ServerSim  # noqa: PLC0415

    server = ServerSim(iter(()))
    rep = replica(batch=2, budget=16, kv_blocks=40)
    server.add_replica(rep, 0.0)
    placed = [server.submit(8, 40) for _ in range(3)]
    reqs = [p[0] for p in placed if p is not None]
    if abort_s is not None:
        server.advance_to(abort_s)
        server.abort(reqs[which], rep)
    server.advance_to(60.0)
    server.flush()
    return rep, reqs, rep.sink


@pytest.mark.parametrize(
    ("which", "abort_s"),
    [
        pytest.param(0, 0.2, id="running-mid-run-of-decodes"),
        pytest.param(2, 0.2, id="waiting-in-the-queue"),
        pytest.param(0, 0.0, id="before-its-first-step-ends"),
    ],
)
def test_an_aborted_request_leaves_frees_its_blocks_and_the_others_go_on(which: int, abort_s: float) -> None:
    rep, reqs, stats = _served(abort_s, which)
    gone = reqs[which]
    assert gone.aborted and gone.finish_s < 0 and gone.state == GONE
    window = stats.window(0.0, 60.0)
    assert rep.metrics.success_by_reason["abort"] == 1 and window.aborted == 1 and window.completed == 2
    others = [r for i, r in enumerate(reqs) if i != which]
    assert all(r.finish_s > 0 and not r.aborted for r in others)
    assert rep.n_run == 0 and rep.used_blocks == 0 and not rep.waiting  # nothing leaks
    _, unaborted, _ = _served(None, which)
    last = max(r.finish_s for r in others)
    assert last < max(r.finish_s for r in unaborted)  # the freed seat lets the rest finish sooner
