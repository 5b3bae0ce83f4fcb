"""Online calibration against the emulated engine (benchmark 8's machinery, short runs).

- one replica pair at one steady load: the learner moves only the common scale and says so;
- the whole loop (what-if: collect -> calibrate -> optimize -> act) on an engine twice as slow as
  the static data: the collector's windows become evidence, the learned factors approach x2 and,
  with ``calibration=apply``, the optimizer sizes with them (more replicas than the prior run).
"""

from __future__ import annotations

import logging

import pytest
import structlog

from benchmarks.accuracy_grid import emulated_saturation_rps
from benchmarks.bench_calibration import BATCH, CASES, TOKENS, learn
from benchmarks.calibration_loop import run_loop
from calibration import Rejection


@pytest.fixture(autouse=True)
def _quiet() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def test_at_one_steady_load_only_the_common_scale_is_learned() -> None:
    prior, truth = CASES["split"]
    saturation = emulated_saturation_rps(truth, BATCH, TOKENS, 1000, 3)
    state, reports = learn(prior, truth, (0.5, 0.5, 0.5), saturation, 3)
    assert state.identified == "scale"
    assert state.fixed_factor == state.work_factor
    assert 1.0 < state.fixed_factor < 1.5  # the truth's step at this load, neither 2.0 nor 0.5
    assert "only the common scale is identifiable" in reports[-1].reasons[-1]


def test_the_loop_learns_from_the_collectors_windows_and_sizes_with_them() -> None:
    prior, truth = CASES["x2"]
    _, run = run_loop("x2", prior, truth, "calibrated", 5, duration_s=1200.0)
    _, prior_run = run_loop("x2", prior, truth, "prior", 5, duration_s=1200.0)
    summaries = [c for r in run.reports for c in r.calibration]
    assert summaries and all((c.model, c.acc) == ("granite_13b", "A100") for c in summaries)
    assert sum(c.accepted for c in summaries) >= 5
    assert {x.code for c in summaries for x in c.left_out} <= {r.value for r in Rejection}
    last = summaries[-1]
    assert last.applied and last.identified != "none"
    assert 1.6 < last.fixed_factor < 2.4 and 1.6 < last.work_factor < 2.4
    assert "applied to this cycle's sizing" in last.effect
    cost, prior_cost = run.reports[-1].total_cost, prior_run.reports[-1].total_cost
    assert cost is not None and prior_cost is not None
    assert cost > 1.5 * prior_cost  # sized for the engine twice as slow
