"""The minute-level TTFT target: the busy-minute rate (optimizer.model.minute) and a class with
``slo-ttft-minute-percentile`` sized for it, with a typed reason; classes without it unchanged."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from pydantic import ValidationError

from contract.data.system import SystemData
from contract.data.workload import ModelTarget
from contract.steps import StepCode
from optimizer.model.minute import minute_rate_rps
from optimizer.optimize import optimize
from tests.unit.optimizer.test_candidates import server, system


def poisson_quantile(mean: float, q: float) -> int:
    """Smallest k with P(Poisson(mean) <= k) >= q, by summing the pmf (independent of scipy)."""
    k, term = 0, math.exp(-mean)
    total = term
    while total < q:
        k += 1
        term *= mean / k
        total += term
    return k


@pytest.mark.parametrize(
    ("rpm", "percentile"),
    [(6, 99.5), (60, 99.5), (60, 90.0), (180, 99.0), (600, 95.0), (25, 50.0)],
    ids=["6rpm-p99.5", "60rpm-p99.5", "60rpm-p90", "180rpm-p99", "600rpm-p95", "25rpm-median"],
)
def test_the_busy_minute_rate_is_the_poisson_quantile_of_a_minutes_count(
    rpm: float, percentile: float
) -> None:
    expected = max(poisson_quantile(rpm, percentile / 100.0), rpm) / 60.0
    assert minute_rate_rps(rpm / 60.0, percentile) == pytest.approx(expected, rel=1e-12)


def test_the_worked_example() -> None:
    assert minute_rate_rps(1.0, 99.5) * 60.0 == pytest.approx(81.0)
    assert minute_rate_rps(3.0, 99.5) * 60.0 == pytest.approx(215.0)


def test_the_busy_minute_rate_grows_with_p_never_below_the_mean_and_shrinks_relatively_with_the_rate() -> (
    None
):
    percentiles = [1.0, 50.0, 80.0, 90.0, 95.0, 99.0, 99.5, 99.9]
    rates = [minute_rate_rps(1.0, p) for p in percentiles]
    assert rates == sorted(rates) and rates[-1] > rates[0]
    assert all(r >= 1.0 for r in rates)
    ratios = [minute_rate_rps(rps, 99.5) / rps for rps in (0.1, 0.5, 1.0, 3.0, 10.0)]
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] > 1.0
    assert minute_rate_rps(0.0, 99.5) == 0.0


@pytest.mark.parametrize(
    ("rps", "percentile", "window_s", "says"),
    [
        (1.0, 0.0, 60.0, "minute percentile must be in (0, 100), got 0.0"),
        (1.0, 100.0, 60.0, "minute percentile must be in (0, 100), got 100.0"),
        (1.0, math.nan, 60.0, "minute percentile must be in (0, 100), got nan"),
        (-1.0, 99.0, 60.0, "arrival rate must be finite and >= 0 req/s, got -1.0"),
        (math.inf, 99.0, 60.0, "arrival rate must be finite and >= 0 req/s, got inf"),
        (1.0, 99.0, 0.0, "window must be > 0 s, got 0.0"),
    ],
    ids=["p0", "p100", "p-nan", "negative-rate", "inf-rate", "zero-window"],
)
def test_bad_input_gets_a_clear_error(rps: float, percentile: float, window_s: float, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        minute_rate_rps(rps, percentile, window_s)


def minute_system(*servers: dict[str, Any], percentile: float | None) -> SystemData:
    target: dict[str, Any] = {"model": "granite_13b", "slo-itl": 40, "slo-ttft": 1000}
    if percentile is not None:
        target["slo-ttft-minute-percentile"] = percentile
    return system(*servers, classes=[{"name": "Premium", "priority": 1, "modelTargets": [target]}])


@pytest.mark.parametrize("rpm", [6, 30, 60, 120, 300, 900])
def test_a_minute_class_is_sized_for_its_busy_minute_never_below_the_mean_target_sizing(rpm: int) -> None:
    (mean,) = optimize(minute_system(server(rpm=rpm), percentile=None)).decisions
    (minute,) = optimize(minute_system(server(rpm=rpm), percentile=99.5)).decisions
    assert mean.allocation is not None and minute.allocation is not None
    assert minute.allocation.cost >= mean.allocation.cost
    assert minute.demand_rpm == pytest.approx(minute_rate_rps(rpm / 60.0, 99.5) * 60.0)
    (step,) = [s for s in minute.steps if s.code is StepCode.MINUTE_PERCENTILE]
    assert step.stage == "size"
    assert step.text.startswith("minute percentile: mean TTFT <= 1000 ms in 99.5% of minutes: sized for")
    assert not any(s.code is StepCode.MINUTE_PERCENTILE for s in mean.steps)
    assert mean.demand_rpm == pytest.approx(rpm)


def test_the_minute_target_buys_replicas_where_a_minute_is_busier_than_the_mean() -> None:
    """At 300 req/min the p99.5 minute has 346 arrivals: more replicas than the mean needs."""
    (mean,) = optimize(minute_system(server(rpm=300), percentile=None)).decisions
    (minute,) = optimize(minute_system(server(rpm=300), percentile=99.5)).decisions
    assert mean.allocation is not None and minute.allocation is not None
    assert minute.allocation.cost > mean.allocation.cost


def test_a_class_without_the_setting_is_sized_and_dumped_as_before() -> None:
    data = minute_system(server(rpm=60), percentile=None)
    dumped = data.model_dump(by_alias=True)
    target = dumped["serviceClasses"]["serviceClasses"][0]["modelTargets"][0]
    assert "slo-ttft-minute-percentile" not in target


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"slo-ttft": 1000, "slo-ttft-percentile": 95, "slo-ttft-minute-percentile": 99}, "set one"),
        ({"slo-itl": 40, "slo-ttft-minute-percentile": 99}, "needs an slo-ttft to bound"),
        ({"slo-ttft": 1000, "slo-ttft-minute-percentile": 100}, "less than 100"),
        ({"slo-ttft": 1000, "slo-ttft-minute-percentile": -1}, "greater than or equal to 0"),
    ],
    ids=["both-percentiles", "no-slo-ttft", "p100", "negative"],
)
def test_a_bad_minute_target_is_refused_with_a_clear_error(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        ModelTarget.model_validate({"model": "m", **fields})
