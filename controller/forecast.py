"""Demand forecast per server: seasonal-naive + trend when a season of history exists, else Holt.

Pure (history in, forecast out, time an argument). Called by :mod:`controller.cycle` for servers
whose class sets ``forecastQuantile``; the optimizer then sizes them for ``max(measured,
forecast)``. The history is :mod:`controller.history`'s bucketed per-minute rates.

The forecast is of the highest per-bucket rate over ``(now, now + horizon]``, where the horizon
is the start-up time of a new pod plus one control period (a pod asked for now serves from
``now + startup``, and the next decision comes a period later), at an upper quantile ``q``:

1. **Level and trend** (Holt's linear method, additive, damped): on the series ``y_1..y_n``,
   ``l_t = a*y_t + (1-a)*(l_{t-1} + phi*b_{t-1})`` and ``b_t = g*(l_t - l_{t-1}) + (1-g)*phi*b_{t-1}``;
   ``k`` buckets ahead the point forecast is ``l_n + (phi + ... + phi^k) * b_n``.
2. **Season** (when the history reaches back one season, a day by default): the seasonal-naive
   forecast ``y(t + k - S)`` shifted by how far the level now stands from the level a season ago,
   ``l_n - y(t - S)``. It carries the shape of yesterday's ramp that Holt's straight line misses.
3. **Upper quantile**: Holt's one-step errors over the history give ``sigma`` (the series' noise
   around its local level; for the seasonal forecast too, which has no error history of its own); the
   ``k``-step error of a random walk grows as ``sqrt(k)``, so the bound at step ``k`` is the point
   forecast ``+ z_q * sigma * sqrt(k)`` (``z_q`` the standard normal quantile). The forecast is the
   highest bound over the horizon's steps, never below zero.

Example: per-minute rates 100, 102, ..., 118 (a ramp of 2 req/min per minute), horizon 3 minutes,
q = 0.9: the smoothed level lags the ramp a little (~117), the damped trend adds ~2 x (0.9 + 0.81
+ 0.729), so the point forecast is ~121 and its 0.9 bound ~123. Sixty minutes of noise at 100
+/- 10 give a point near the recent level and a bound ~1.28 x ~12 x sqrt(3) ~ 25 req/min above it.

Why not a library (statsforecast, Prophet): this needs one number per server per minute from a
few hundred points, and the two methods above are ~60 lines; a dependency that pulls numba or
cmdstan would not earn its place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class ForecastPolicy:
    """How the forecast is computed. ``bucket_s``: the recent history's step, ``recent_s`` how much
    of it is kept; ``season_s``: the seasonal period (0: none), read from buckets of
    ``season_bucket_s``; ``min_history_s``: shortest history that gives a forecast; ``alpha``,
    ``beta``, ``phi``: Holt's level and trend smoothing and the trend's damping."""

    bucket_s: float = 60.0
    season_s: float = 86400.0
    season_bucket_s: float = 300.0
    recent_s: float = 7200.0
    min_history_s: float = 600.0
    alpha: float = 0.5
    beta: float = 0.2
    phi: float = 0.9


@dataclass(frozen=True)
class Forecast:
    """The upper bound of demand over the horizon (req/min) and how it was made."""

    rate_rpm: float
    quantile: float
    horizon_s: float
    method: str
    """``holt`` or ``seasonal``."""
    point_rpm: float
    """The point forecast's highest value over the horizon (no quantile)."""


def forecast(
    series_rpm: Sequence[float],
    season_rpm: Sequence[float] | None,
    horizon_s: float,
    quantile: float,
    policy: ForecastPolicy,
) -> Forecast | None:
    """The forecast from the per-bucket rates ``series_rpm`` (oldest first, the last is now).

    ``season_rpm``: the rates one season ago, aligned so that ``season_rpm[i]`` is the bucket one
    season before ``series_rpm[-1]`` plus ``i`` buckets (``i = 0..k``); None or too short: no
    seasonal term. None when the series is shorter than ``policy.min_history_s``.
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    n_min = max(math.ceil(policy.min_history_s / policy.bucket_s), 3)
    if len(series_rpm) < n_min:
        return None
    steps = max(math.ceil(horizon_s / policy.bucket_s), 1)
    level, trend, holt_errors = _holt(series_rpm, policy)
    z = NormalDist().inv_cdf(quantile)
    use_season = season_rpm is not None and len(season_rpm) > steps
    if use_season:
        assert season_rpm is not None
        shift = level - season_rpm[0]
        points = [season_rpm[k] + shift for k in range(1, steps + 1)]
    else:
        damped = 0.0
        points = []
        for k in range(1, steps + 1):
            damped += policy.phi**k
            points.append(level + damped * trend)
    sigma = _rms(holt_errors)
    bounds = [p + z * sigma * math.sqrt(k) for k, p in enumerate(points, start=1)]
    return Forecast(
        rate_rpm=max(*bounds, 0.0),
        quantile=quantile,
        horizon_s=horizon_s,
        method="seasonal" if use_season else "holt",
        point_rpm=max(*points, 0.0),
    )


def _holt(series: Sequence[float], p: ForecastPolicy) -> tuple[float, float, list[float]]:
    """Damped Holt: the final level and trend, and the one-step-ahead errors."""
    level, trend = series[0], series[1] - series[0]
    errors: list[float] = []
    for y in series[1:]:
        predicted = level + p.phi * trend
        errors.append(y - predicted)
        new_level = p.alpha * y + (1 - p.alpha) * predicted
        trend = p.beta * (new_level - level) + (1 - p.beta) * p.phi * trend
        level = new_level
    return level, trend, errors[1:]  # the first error reflects the start values only


def _rms(values: Sequence[float]) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values)) if values else 0.0
