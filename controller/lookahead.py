"""Each cycle, the forecast for the servers whose class asks for it, and the hold when there is none.

Pure (system and history in, system with forecasts out, time an argument); called by
:class:`controller.cycle.CycleRunner` between collect and optimize. A server of a class with
``forecastQuantile`` q > 0 gets ``forecast`` = the q-quantile of its demand over the horizon =
its start-up time (:meth:`contract.data.system.SystemData.startup_s`, else ``default_startup_s``)
+ one control period; the optimizer sizes it for ``max(measured, forecast)``, so a scale-down
also waits until the forecast comes down.

Without a forecast (history shorter than ``policy.min_history_s``: first start, or the stored
history was lost or unreadable) such a server is sized on the measured load, reactive, and held
at its current replicas: no scale-down happens because the forecast is missing. The note says
why. Classes that do not ask are untouched: sized on the measured load as always.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contract.data.system import SystemData
from contract.data.workload import ForecastSpec
from controller import history
from controller.forecast import ForecastPolicy, forecast
from controller.history import LoadHistory


@dataclass(frozen=True)
class Lookahead:
    system: SystemData
    holds: dict[str, int] = field(default_factory=dict)
    """Servers without a forecast, by name: the replicas they keep (their current count)."""
    notes: list[str] = field(default_factory=list)


def not_asking(system: SystemData) -> set[str]:
    """The servers whose class does not ask for a forecast: the load history leaves them out."""
    classes = system.class_by_name()
    return {
        spec.name
        for spec in system.servers.servers
        if (c := classes.get(spec.service_class)) is None or c.forecast_quantile <= 0
    }


def plan(
    system: SystemData,
    load_history: LoadHistory,
    now_s: float,
    *,
    period_s: float,
    policy: ForecastPolicy,
    default_startup_s: float,
    fault: str | None = None,
) -> Lookahead:
    """Forecasts for the asking servers; ``fault``: why the stored history was not read (said in
    the note of a server left without a forecast)."""
    classes = system.class_by_name()
    specs = []
    holds: dict[str, int] = {}
    notes: list[str] = []
    for spec in system.servers.servers:
        service_class = classes.get(spec.service_class)
        quantile = service_class.forecast_quantile if service_class is not None else 0.0
        if quantile <= 0:
            specs.append(spec)
            continue
        startup_s, _ = system.startup_s(spec, spec.current_alloc.accelerator)
        horizon_s = (startup_s if startup_s is not None else default_startup_s) + period_s
        known = load_history.get(spec.name, history.ServerHistory())
        series = history.recent_series(known, now_s, policy)
        season = history.season_series(known, now_s, horizon_s, policy)
        result = forecast(series, season, horizon_s, quantile, policy) if series else None
        if result is None:
            current = spec.current_alloc.num_replicas
            holds[spec.name] = current
            why = f"{len(series) * policy.bucket_s:.0f} s of history, {policy.min_history_s:.0f} s needed"
            why = f"{fault}; {why}" if fault else why
            notes.append(
                f"{spec.name}: no forecast ({why}): sized on the measured load, held at {current} "
                "replica(s): no scale-down until the forecast is back"
            )
            specs.append(spec)
            continue
        given = ForecastSpec(arrival_rate_rpm=result.rate_rpm, quantile=quantile, horizon_s=horizon_s)
        specs.append(spec.model_copy(update={"forecast": given}))
    servers = system.servers.model_copy(update={"servers": specs})
    return Lookahead(system.model_copy(update={"servers": servers}), holds, notes)
