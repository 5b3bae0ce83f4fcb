"""Start-up time and the forecast in the optimizer: sizing for max(measured, forecast) for a class
that asks, and decisions that say when new or starting replicas serve."""

from __future__ import annotations

from typing import Any

import pytest

from contract.data.system import SystemData
from optimizer.optimize import optimize
from tests.unit.optimizer.test_candidates import server, system

TARGETS = [{"model": "granite_13b", "slo-itl": 40, "slo-ttft": 1000}]


def forecasting(*servers: dict[str, Any], quantile: float = 0.9) -> SystemData:
    classes = [{"name": "Premium", "priority": 1, "modelTargets": TARGETS, "forecastQuantile": quantile}]
    return system(*servers, classes=classes)


def with_startup(data: SystemData, accelerator: str, startup_s: float) -> SystemData:
    doc = data.model_dump()
    for entry in doc["models"]["models"]:
        if entry["acc"] == accelerator:
            entry["startupS"] = startup_s
    return SystemData.model_validate(doc)


def forecast(rpm: float) -> dict[str, Any]:
    return {"forecast": {"arrivalRate": rpm, "quantile": 0.9, "horizonS": 180}}


@pytest.mark.parametrize(
    ("measured", "ahead", "sized", "says"),
    [
        (600, 1200, 1200, "sized for 1200 req/min (0.9 quantile over the next 180 s) > measured 600"),
        (600, 300, 600, "300 req/min (0.9 quantile over the next 180 s) <= measured 600 req/min"),
    ],
    ids=["forecast-above", "forecast-below"],
)
def test_a_forecasting_class_is_sized_for_the_larger(
    measured: int, ahead: int, sized: int, says: str
) -> None:
    (d,) = optimize(forecasting(server(rpm=measured, **forecast(ahead)))).decisions
    assert d.demand_rpm == pytest.approx(sized)
    assert any(says in r for r in d.reasons), d.reasons


def test_without_a_forecast_the_class_is_sized_reactively_and_says_so() -> None:
    (d,) = optimize(forecasting(server(rpm=600))).decisions
    assert d.demand_rpm == pytest.approx(600)
    assert any("forecast: none this cycle: sized on the measured load (reactive)" in r for r in d.reasons)


def test_a_class_that_does_not_ask_ignores_a_forecast() -> None:
    (d,) = optimize(forecasting(server(rpm=600, **forecast(1200)), quantile=0.0)).decisions
    assert d.demand_rpm == pytest.approx(600)
    assert not any("forecast" in r for r in d.reasons)


def test_new_replicas_say_when_they_serve_from_model_data() -> None:
    data = with_startup(forecasting(server(rpm=1200), quantile=0.0), "A100", 95.0)
    data = with_startup(data, "L4", 40.0)
    data = with_startup(data, "2xA100", 95.0)
    (d,) = optimize(data).decisions
    assert d.allocation is not None and d.allocation.num_replicas > 0
    expected = {"A100": 95.0, "2xA100": 95.0, "L4": 40.0}[d.allocation.accelerator]
    assert d.startup_s == expected
    assert any(f"serve in about {expected:.0f} s (model data)" in r for r in d.reasons), d.reasons


def test_starting_replicas_are_coming_capacity_with_the_measured_start_up() -> None:
    """Three of the replicas still load the model; the load needs them all: nothing more is
    asked for, and the decision says when the starting ones serve (measured: no model-data entry)."""
    (plain,) = optimize(forecasting(server(rpm=600), quantile=0.0)).decisions
    assert plain.allocation is not None
    a = plain.allocation
    replicas = a.num_replicas
    current = {"accelerator": a.accelerator, "numReplicas": replicas, "maxBatch": a.max_batch}
    spec = server(rpm=600, startingReplicas=3, startupS=210.0, keepAccelerator=True)
    spec["currentAlloc"] |= current
    (d,) = optimize(forecasting(spec, quantile=0.0)).decisions
    assert d.allocation is not None and d.allocation.num_replicas == replicas  # no cascade
    assert any(f"3 of {replicas} replicas are starting" in r for r in d.reasons), d.reasons
    assert any("takes about 210 s (measured, creation to Ready)" in r for r in d.reasons), d.reasons
    assert d.startup_s == 210.0
