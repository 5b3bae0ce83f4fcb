"""The demand forecast (controller/forecast.py): Holt on a ramp and on noise, the season, the guards."""

from __future__ import annotations

import random

import pytest

from controller.forecast import ForecastPolicy, forecast

POLICY = ForecastPolicy(min_history_s=600.0)


def test_a_ramp_is_extended_beyond_its_last_value() -> None:
    ramp = [100.0 + 2.0 * i for i in range(30)]  # 2 req/min per minute, last 158
    f = forecast(ramp, None, horizon_s=180.0, quantile=0.9, policy=POLICY)
    assert f is not None and f.method == "holt"
    assert 160.0 < f.point_rpm < 165.0  # damped: 158 + 2 * (0.9 + 0.81 + 0.729) = 162.9
    assert f.rate_rpm >= f.point_rpm and f.rate_rpm < 170.0  # a clean ramp: a narrow bound


def test_noise_widens_the_upper_quantile() -> None:
    rng = random.Random(7)
    noisy = [100.0 + rng.gauss(0.0, 10.0) for _ in range(120)]
    flat = [100.0] * 120
    f_noisy = forecast(noisy, None, 180.0, 0.9, POLICY)
    f_flat = forecast(flat, None, 180.0, 0.9, POLICY)
    assert f_noisy is not None and f_flat is not None
    assert f_flat.rate_rpm == pytest.approx(100.0)
    assert 80.0 < f_noisy.point_rpm < 120.0
    assert f_noisy.rate_rpm > f_noisy.point_rpm + 15.0  # ~1.28 * sigma * sqrt(3) above the point
    higher = forecast(noisy, None, 180.0, 0.99, POLICY)
    assert higher is not None and higher.rate_rpm > f_noisy.rate_rpm


def test_the_season_carries_yesterdays_rise() -> None:
    flat = [100.0] * 30
    yesterday = [80.0, 80.0, 160.0, 160.0]  # a season ago: now, then a doubling two buckets later
    f = forecast(flat, yesterday, horizon_s=180.0, quantile=0.9, policy=POLICY)
    holt = forecast(flat, None, horizon_s=180.0, quantile=0.9, policy=POLICY)
    assert f is not None and holt is not None and f.method == "seasonal"
    assert f.point_rpm == pytest.approx(180.0)  # 160 + (100 - 80)
    assert holt.point_rpm == pytest.approx(100.0)


def test_too_short_a_history_gives_no_forecast() -> None:
    assert forecast([100.0] * 9, None, 180.0, 0.9, POLICY) is None
    assert forecast([100.0] * 10, None, 180.0, 0.9, POLICY) is not None


@pytest.mark.parametrize("quantile", [0.0, 1.0, -0.5], ids=["zero", "one", "negative"])
def test_a_quantile_outside_0_1_is_an_error(quantile: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        forecast([100.0] * 20, None, 180.0, quantile, POLICY)


def test_never_below_zero() -> None:
    falling = [max(100.0 - 20.0 * i, 0.0) for i in range(12)]
    f = forecast(falling, None, 600.0, 0.5, POLICY)
    assert f is not None and f.rate_rpm >= 0.0 and f.point_rpm >= 0.0
