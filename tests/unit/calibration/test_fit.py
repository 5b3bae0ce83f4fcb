"""The fit under noise: windows made from a known truth, their measured gaps perturbed the way
overlapping rate windows are (neighbours share most of their requests, so most of their noise).

The fit must recover the truth's factors without bias, and the relative standard error it
reports (which sets the confidence and decides whether the split is taken) must cover the
factors' real spread over many such draws, not the smaller spread that windows with independent
noise would have.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import numpy as np
import pytest

from calibration import scaled
from calibration.fit import FitLimits, Window, fit, independent_windows, parts_ms
from contract.data.perf import PerfParams, StepPerf

PRIOR = StepPerf(20.58, 0.041, 0.041, 0.00128125)
TRUTH = scaled(PRIOR, 2.0, 0.5)
WINDOW_S, PERIOD_S = 240.0, 60.0
LEVELS = (4.0, 30.0, 12.0, 48.0, 20.0, 8.0)
"""Running requests per replica, each held for five windows' periods (the benchmark's steps)."""


def window(
    truth: PerfParams,
    running: float,
    end_s: float,
    noise: float = 0.0,
    window_s: float = WINDOW_S,
    cv2: float = 1.0,
) -> Window:
    """One replica's window at ``running`` requests, output lengths of squared coefficient of
    variation ``cv2``, its gap the truth's times ``1 + noise``."""
    itl = 30.0
    for _ in range(50):  # the gap at which the step formula agrees with the rate it implies
        rps = running / (256.0 * itl / 1000.0)
        probe = Window(end_s, rps, 512.0, 256.0, itl, 0.0, 1.0, out_cv2=cv2, running=running)
        fixed, work = parts_ms(truth, probe)
        itl = fixed + work
    return Window(
        end_s, rps, 512.0, 256.0, itl * (1.0 + noise), 0.0, 300.0, out_cv2=cv2, running=running,
        window_s=window_s,
    )  # fmt: skip


def noisy_windows(rng: np.random.Generator, minute_sd: float, count: int = 27) -> list[Window]:
    """``count`` windows 60 s apart; each window's noise is the mean of its four minutes' noise."""
    per_window = round(WINDOW_S / PERIOD_S)
    minutes = rng.normal(0.0, minute_sd, count + per_window)
    return [
        window(
            TRUTH,
            LEVELS[(k // 5) % len(LEVELS)],
            WINDOW_S + PERIOD_S * k,
            float(minutes[k : k + per_window].mean()),
        )
        for k in range(count)
    ]


def test_overlapping_windows_count_as_the_time_they_cover() -> None:
    four = [window(TRUTH, 20.0, 1000.0 + 60.0 * k) for k in range(4)]
    assert independent_windows(four) == pytest.approx((180.0 + 240.0) / 240.0)
    apart = [window(TRUTH, 20.0, 1000.0 + 240.0 * k) for k in range(4)]
    assert independent_windows(apart) == pytest.approx(4.0)
    unknown = [window(TRUTH, 20.0, 1000.0 + 60.0 * k, window_s=0.0) for k in range(4)]
    assert independent_windows(unknown) == 4.0


def test_noisy_windows_recover_the_work_factor_and_the_reported_error_covers_its_spread() -> None:
    rng = np.random.default_rng(16)
    errors, reported = [], []
    for _ in range(300):
        found = fit(PRIOR, noisy_windows(rng, minute_sd=0.02), FitLimits())
        assert found.identified == "split"
        errors.append(found.work_factor / 0.5 - 1.0)
        reported.append(found.rel_se)
    spread = statistics.stdev(errors)
    assert abs(statistics.fmean(errors)) < 0.01  # no bias: within 1 % of x0.5 on average
    assert 0.01 < spread < 0.05  # the noise does move the work factor (2.1 % here)
    covered = sum(abs(e) <= 2.0 * se for e, se in zip(errors, reported, strict=True)) / len(errors)
    assert covered >= 0.88  # two reported standard errors hold the truth ~95 % of the time (98 %; 72 % if
    # the windows were counted as independent)
    assert statistics.median(reported) < 2.0 * spread  # ... without an inflated error


def test_a_noise_free_fit_reports_a_standard_error_near_zero() -> None:
    found = fit(PRIOR, noisy_windows(np.random.default_rng(1), minute_sd=0.0), FitLimits())
    assert found.fixed_factor == pytest.approx(2.0)
    assert found.work_factor == pytest.approx(0.5)
    assert found.rel_se < 1e-6
    assert found.confidence == pytest.approx(1.0)
    assert "27 windows (7.5 independent)" in found.reason


def test_the_output_lengths_spread_sets_the_context_and_so_the_work_factor() -> None:
    fixed_lengths = [window(TRUTH, running, 1000.0 + 240.0 * k, cv2=0.0) for k, running in enumerate(LEVELS)]
    found = fit(PRIOR, fixed_lengths, FitLimits())
    assert found.fixed_factor == pytest.approx(2.0)
    assert found.work_factor == pytest.approx(0.5)
    as_geometric = fit(PRIOR, [replace(w, out_cv2=1.0) for w in fixed_lengths], FitLimits())
    # read as geometric (cv^2 1), every step's context is 768 tokens a request instead of 640: the
    # work factor comes out 15 % low (x0.426)
    assert as_geometric.work_factor < 0.5 * 0.9


def aged_window(truth: PerfParams, running: float, end_s: float, context_per_request: float) -> Window:
    """A window whose running requests each attend ``context_per_request`` tokens (older than the
    steady state's 512 + 256 = 768 while the load falls, younger while it rises), its gap the
    truth's step at that context, and the KV cache's reading of it."""
    steady = window(truth, running, end_s)
    measured = replace(steady, context_tokens=running * context_per_request)
    fixed, work = parts_ms(truth, measured)
    return replace(measured, itl_ms=fixed + work)


def test_the_measured_context_keeps_a_transient_from_biasing_the_factors() -> None:
    # Load falling, then rising: the requests attend 20 % more, then 15 % less than the lengths say.
    ages = (1.2, 1.2, 0.85, 0.85, 1.2, 0.85)
    windows = [aged_window(TRUTH, LEVELS[k], 1000.0 + 240.0 * k, 768.0 * ages[k]) for k in range(len(LEVELS))]
    found = fit(PRIOR, windows, FitLimits())
    assert found.identified == "split"
    assert (found.fixed_factor, found.work_factor) == (
        pytest.approx(2.0, rel=1e-3),
        pytest.approx(0.5, rel=1e-3),
    )
    unmeasured = fit(PRIOR, [replace(w, context_tokens=0.0) for w in windows], FitLimits())
    assert abs(unmeasured.work_factor / 0.5 - 1.0) > 0.05  # the lengths' steady context misleads


def test_a_kv_cache_holding_less_than_the_prompts_is_shared_and_the_lengths_stand() -> None:
    # Prefix caching: 20 requests whose 512-token prompts share blocks hold 6,000 tokens, 300 each,
    # while each attends its whole prompt; the lengths' context (768 each) is taken instead.
    w = window(TRUTH, 20.0, 1000.0)
    shared = replace(w, context_tokens=6_000.0)
    assert parts_ms(PRIOR, shared) == parts_ms(PRIOR, w)
    held = replace(w, context_tokens=20 * 900.0)
    assert parts_ms(PRIOR, held)[1] > parts_ms(PRIOR, w)[1]  # older requests: more work per step
