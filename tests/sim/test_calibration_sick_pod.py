"""A sick pod in the whole loop: calibration leaves it out of its Deployment's window, not averaged in.

The what-if world of benchmark 8's loop (granite_13b on A100, step schema, the engine running the
static data exactly) at 2.5x its load, so each Deployment runs three or more pods. After the first
cycle one pod's GPU turns three times slower. The collector's per-pod series (completions, gaps,
batch, KV cache) let the learner see it against its peers: the pod is listed as left out and the
learned values stay at the truth. The same run with the per-pod series withheld averages the sick
pod into its Deployment and learns a slower engine than the healthy pods run.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import structlog

import collector.measured
from benchmarks.bench_calibration import PRIOR
from benchmarks.calibration_loop import write_world
from calibration import Rejection, scaled
from contract.calibration import CalibrationSummary
from controller.settings import ControllerSettings
from load_emulator.timing import IterationCost
from load_emulator.whatif.deciders import Decision, LoopDecider
from load_emulator.whatif.driver import Scenario, WhatIfRun

pytestmark = pytest.mark.sim


class OnePodTurnsSick(LoopDecider):
    """The real loop; before its first cycle the first pod's engine becomes 3x slower."""

    sick_pod = ""

    async def decide(self, now_s: float) -> Decision:
        if not self.sick_pod:
            _, replica = next(iter(self.run.engine.replicas()))
            replica.cost = IterationCost.from_perf(scaled(PRIOR, 3.0, 3.0))
            self.sick_pod = replica.pod
        return await super().decide(now_s)


def _run(tmp_path: Path) -> tuple[str, list[CalibrationSummary]]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    scenario = Scenario(
        samples=write_world(tmp_path / "world", PRIOR), params={"scale": "2.5"}, duration_s=900.0, seed=3,
        controller=ControllerSettings(calibration="observe"),
    )  # fmt: skip
    run = WhatIfRun(scenario, decider=OnePodTurnsSick)
    asyncio.run(run.run())
    assert isinstance(run.decider, OnePodTurnsSick)
    return run.decider.sick_pod, [c for r in run.reports for c in r.calibration]


def test_the_sick_pod_is_left_out_and_the_learned_values_stay_true(tmp_path: Path) -> None:
    sick, summaries = _run(tmp_path)
    last = summaries[-1]
    left = {(x.source.rsplit("/", 1)[-1], x.code) for s in summaries[-5:] for x in s.left_out}
    assert (sick, Rejection.OUTLIER) in left
    assert last.identified != "none"
    assert (last.fixed_factor, last.work_factor) == (
        pytest.approx(1.0, abs=0.04),
        pytest.approx(1.0, abs=0.04),
    )


def test_without_the_per_pod_series_the_sick_pod_is_averaged_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector.measured, "_pods", lambda *_: [])
    _, summaries = _run(tmp_path)
    last = summaries[-1]
    assert not any(x.code == Rejection.OUTLIER for s in summaries for x in s.left_out)
    assert max(last.fixed_factor, last.work_factor) > 1.1  # a slower engine than the healthy pods run
