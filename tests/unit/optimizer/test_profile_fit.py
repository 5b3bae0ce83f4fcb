"""The profile fit on timelines of the emulated engine at virtual time (exact token times).

Each schema's known parameters run one emulated replica (``load_emulator.closed_loop``: closed-
loop clients, every token's time); the fit of the same schema must recover them, the verdict
must accept, and the wrong schema or a sweep that never fills the batch must be refused.
"""

from __future__ import annotations

import pytest

from contract.data.perf import DecodeOnlyPerf, IterationPerf, PerfParams, PrefillDecodePerf, StepPerf
from load_emulator.closed_loop import LoopLevel, Streamed, run_closed_loop
from load_emulator.replica import ReplicaSim
from load_emulator.stats import ServerStats
from load_emulator.timing import IterationCost
from optimizer.profiling.fit import fit, params_of
from optimizer.profiling.levels import Level, saturation, summarize
from optimizer.profiling.timeline import RequestTimeline, design
from optimizer.profiling.verdict import Refusal, judge, model_entry

BATCH = 8
BUDGET = 1024
LEVEL_S = 6.0
SHAPES = ((64, 24), (700, 24))
CLIENTS = (1, 4, 8, 16)


def _sweep(perf: PerfParams, clients: tuple[int, ...] = CLIENTS) -> tuple[list[RequestTimeline], list[Level]]:
    replica = ReplicaSim(
        "r", IterationCost.from_perf(perf), BATCH, ServerStats(), chunked=True, token_budget=BUDGET
    )
    loop = [LoopLevel(c, LEVEL_S, i, o) for i, o in SHAPES for c in clients]
    records = run_closed_loop(replica, loop, out_spread=0.3, seed=1)
    return [_timeline(r) for r in records], _levels(records, loop)


def _timeline(r: Streamed) -> RequestTimeline:
    return RequestTimeline(r.sent_s, r.in_tokens, tuple(r.token_s), r.level, len(r.token_s) == r.out_tokens)


def _levels(records: list[Streamed], loop: list[LoopLevel]) -> list[Level]:
    out = []
    for i, lv in enumerate(loop):
        start = min(r.sent_s for r in records if r.level == i)
        out.append(Level(i, lv.concurrency, lv.in_tokens, lv.out_tokens, start, start + LEVEL_S))
    return out


CASES = [
    pytest.param(StepPerf(30.0, 0.2, 0.15, 0.0008), id="step"),
    pytest.param(IterationPerf(30.0, 0.2, 0.0008), id="iteration"),
    pytest.param(DecodeOnlyPerf(30.0, 0.9), id="decode-only"),
    pytest.param(PrefillDecodePerf(30.0, 0.9, 40.0, 0.002), id="prefill-decode"),
]


@pytest.mark.parametrize("perf", CASES)
def test_the_fit_recovers_known_parameters_and_is_accepted(perf: PerfParams) -> None:
    timelines, levels = _sweep(perf)
    schema, known = params_of(perf)
    fitted = fit(design(timelines, schema, BUDGET))
    for name, value in known.items():
        assert fitted.params[name] == pytest.approx(value, rel=0.02), name
    shapes = saturation(summarize(timelines, levels))
    verdict = judge(fitted, shapes)
    assert verdict.accepted, verdict.explain()
    assert verdict.batch == BATCH
    entry = model_entry(
        fitted,
        model="m",
        accelerator="X",
        acc_count=1,
        batch=verdict.batch,
        at_tokens=724,
        kv_cache_tokens=None,
    )
    assert params_of(entry.perf) == (schema, fitted.params)


def test_the_wrong_schema_is_refused_as_a_poor_fit() -> None:
    timelines, levels = _sweep(StepPerf(30.0, 0.2, 0.15, 0.0008))
    fitted = fit(design(timelines, "decode-only"))
    verdict = judge(fitted, saturation(summarize(timelines, levels)))
    assert not verdict.accepted
    assert Refusal.POOR_FIT in {code for code, _ in verdict.refusals}


def test_a_sweep_that_never_fills_the_batch_is_refused() -> None:
    timelines, levels = _sweep(StepPerf(30.0, 0.2, 0.15, 0.0008), clients=(1, 2, 4))
    fitted = fit(design(timelines, "step", BUDGET))
    verdict = judge(fitted, saturation(summarize(timelines, levels)))
    assert [code for code, _ in verdict.refusals] == [Refusal.NO_SATURATION]
    assert "never saturated" in verdict.explain()
