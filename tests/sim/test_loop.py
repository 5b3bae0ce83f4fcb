"""The real control loop (collect -> optimize -> act) over scripted load traces at virtual time.

Each case runs :class:`load_emulator.whatif.WhatIfRun` on one or two servers of ``samples/small``:
the collector reads the emulated Deployments and an emulated Prometheus, the optimizer sizes them,
the actuator patches the emulated cluster, and the controller's ``CycleRunner`` runs the cycle.
Token counts are deterministic (exactly the data's means) so that what is tested is the loop's
reaction to the load, not to token-length noise (that noise is the subject of the last test).
Patterns run in absolute virtual time; cycles start after the warm-up (start-up delay + rate
window = 180 s), one per 60 s.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import structlog

from actuator.settings import ActuatorSettings
from load_emulator.whatif import Row, Scenario, WhatIfRun, replica_changes, summarize
from tests.conftest import SAMPLES

pytestmark = pytest.mark.sim
PREMIUM = "Premium-llama_13b"


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def run(**kwargs: object) -> WhatIfRun:
    options: dict[str, object] = {"tokens": "deterministic", "servers": (PREMIUM,), "seed": 3}
    options.update(kwargs)
    what_if = WhatIfRun(Scenario(SAMPLES / "small", **options))  # type: ignore[arg-type]
    asyncio.run(what_if.run())
    assert all(r.outcome != "failed" for r in what_if.reports), [r.errors for r in what_if.reports]
    return what_if


def mine(what_if: WhatIfRun, server: str = PREMIUM) -> list[Row]:
    return [r for r in what_if.rows if r.server == server]


def test_step_up_scales_out_and_premium_attainment_recovers() -> None:
    step_s = 600.0
    what_if = run(pattern="steps", params={"factors": "1,2", "step_s": str(step_s)}, duration_s=1200)
    rows = mine(what_if)
    before = [r for r in rows if r.t_s <= step_s]
    after = [r for r in rows if r.t_s > step_s]
    assert min(r.slo_attainment for r in before[-3:]) >= 0.95, "steady before the step"
    assert max(r.replicas for r in after) >= max(r.replicas for r in before) + 2
    # Recovered within 10 cycles of the step (new pods take 60 s, and batch-size rollouts keep
    # one pod in four restarting: see the xfail below), then it holds for the last 5 cycles.
    n_cycles = 10
    trace = [(r.t_s, r.slo_attainment, r.replicas, r.ready) for r in after]
    assert any(r.slo_attainment >= 0.95 for r in after[:n_cycles]), trace
    (summary,) = summarize(after[-5:])
    assert summary.slo_attainment >= 0.95, trace


def test_scale_down_waits_for_the_stabilisation_window_and_churn_stays_bounded() -> None:
    drop_s, window_s = 900.0, 300.0
    what_if = run(
        pattern="steps",
        params={"factors": "2,0.25", "step_s": str(drop_s)},
        duration_s=1500,
        actuator=ActuatorSettings(scale_down_window_s=window_s),
    )
    rows = mine(what_if)
    peak = max(r.replicas for r in rows if r.t_s <= drop_s)
    assert rows[-1].replicas < peak, "the load fell to an eighth: replicas must come down"
    # Hold-down, as users see it: every target is at least the highest recommendation of the
    # window (bounded by the current count), so one low reading never removes replicas at once.
    history: list[tuple[float, int]] = []
    for report in what_if.reports:
        (action,) = report.actions
        assert action.replicas_recommended is not None and action.replicas_target is not None
        assert action.replicas_now is not None
        history.append((report.started_at_s, action.replicas_recommended))
        window_max = max(n for t, n in history if report.started_at_s - t < window_s)
        assert action.replicas_target >= min(action.replicas_now, window_max), (report.started_at_s, history)
    at_drop = next(r.replicas for r in rows if r.t_s >= drop_s)
    first_down = next(r.t_s for r in rows if r.t_s > drop_s and r.replicas < at_drop)
    # The drop's own cycle still recommended the old count, so the window holds it until then.
    assert first_down >= drop_s + window_s - 60, [(r.t_s, r.replicas) for r in rows]
    assert first_down <= drop_s + window_s + 180, "and it does come down once the window has passed"
    # Bounded churn: a drop to a quarter is not a staircase of one replica per cycle.
    assert replica_changes(rows) <= 8, [(r.t_s, r.replicas) for r in rows]


def test_constant_load_converges_and_stops_changing_replicas() -> None:
    what_if = run(pattern="constant", duration_s=1200)
    rows = mine(what_if)
    late = rows[len(rows) // 2 :]
    assert len({r.replicas for r in late}) == 1, [(r.t_s, r.replicas) for r in late]
    assert {r.accelerator for r in late} == {late[0].accelerator}
    (summary,) = summarize(late)
    assert summary.slo_attainment >= 0.95


@pytest.mark.xfail(
    strict=True,
    reason="batch size follows the measured token means cycle by cycle: --max-num-seqs changes by "
    "a few every cycle and each change rolls every pod (optimizer sizing + actuator have no batch "
    "hysteresis)",
)
def test_constant_load_keeps_the_pod_template() -> None:
    what_if = run(pattern="constant", duration_s=900, tokens="geometric")
    late = mine(what_if)[5:]
    assert len({r.max_batch for r in late}) == 1, [(r.t_s, r.max_batch) for r in late]
