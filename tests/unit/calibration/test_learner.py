"""Online calibration (calibration): what the fit identifies, the guardrails, hostile input.

Windows are made from a known truth with the fit's own step formula (no noise unless a case adds
it), so a factor the learner finds can be compared with the truth's exactly.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

import pytest

from calibration import (
    CalibrationReport,
    Limits,
    Observation,
    Rejection,
    State,
    learned,
    scaled,
    update,
)
from calibration.fit import FitLimits, Window, fit, parts_ms
from calibration.observation import PodWindow
from contract.data.perf import DecodeOnlyPerf, PerfParams, PrefillDecodePerf, StepPerf

PRIOR = StepPerf(20.58, 0.041, 0.041, 0.00128125)
MODEL, ACC = "granite_13b", "A100"


def observation(truth: PerfParams, running: float, end_s: float = 1000.0, **changes: Any) -> Observation:
    """A window of a Deployment of 2 pods whose engine runs ``truth`` at ``running`` requests per pod."""
    in_tokens, out_tokens = 512.0, 256.0
    itl = 30.0
    for _ in range(50):  # the gap at which the step formula is consistent with the rate it implies
        rps = running / (out_tokens * itl / 1000.0)
        w = Window(end_s, rps, in_tokens, out_tokens, itl, 0.0, 1.0, running=running)
        fixed, work = parts_ms(truth, w)
        itl = fixed + work
    obs = Observation(
        source="ns/granite", model=MODEL, accelerator=ACC, served_models=("ibm/granite-13b",),
        end_s=end_s, window_s=240.0, last_sample_s=end_s - 5.0, reporting_pods=2, ready_pods=2,
        completion_rps=2 * running / (out_tokens * itl / 1000.0), in_tokens=in_tokens,
        out_tokens=out_tokens, itl_ms=itl, ttft_ms=2 * itl, preemptions=0.0, counter_resets=0.0,
        running_per_pod=running,
    )  # fmt: skip
    return replace(obs, **changes)


def run(
    truth: PerfParams, loads: list[float], cycles: int, limits: Limits | None = None
) -> tuple[State, list[CalibrationReport]]:
    state, reports = State(MODEL, ACC), []
    for k in range(cycles):
        obs = observation(truth, loads[k % len(loads)], end_s=1000.0 + 60.0 * k)
        state, report = update(state, PRIOR, [obs], obs.end_s, limits or Limits())
        reports.append(report)
    return state, reports


def test_varied_load_separates_the_fixed_and_work_parts() -> None:
    truth = scaled(PRIOR, 2.0, 0.5)
    assert isinstance(truth, StepPerf)
    state, reports = run(truth, [4, 30, 12, 48, 20], cycles=15)
    assert state.identified == "split"
    assert state.fixed_factor == pytest.approx(2.0, rel=1e-6)
    assert state.work_factor == pytest.approx(0.5, rel=1e-6)
    assert "fixed x2.000, work x0.500" in reports[-1].reasons[0]
    got = learned(PRIOR, state)
    assert isinstance(got, StepPerf)
    assert got.fixed_ms == pytest.approx(truth.fixed_ms)
    assert got.per_context_token_ms == pytest.approx(truth.per_context_token_ms)


def test_one_steady_operating_point_moves_only_the_common_scale_and_says_so() -> None:
    truth = scaled(PRIOR, 2.0, 0.5)
    assert isinstance(truth, StepPerf)
    state, reports = run(truth, [20], cycles=15)
    assert state.identified == "scale"
    assert state.fixed_factor == state.work_factor
    obs = observation(truth, 20)
    w = Window(obs.end_s, obs.replica_rps, 512, 256, obs.itl_ms, 0.0, 1.0, running=20)
    assert state.fixed_factor == pytest.approx(obs.itl_ms / sum(parts_ms(PRIOR, w)), rel=1e-9)
    assert state.fixed_factor != pytest.approx(2.0, rel=0.1)
    assert state.fixed_factor != pytest.approx(0.5, rel=0.1)
    assert "only the common scale is identifiable" in reports[-1].reasons[0]


def test_nothing_is_learned_before_enough_windows() -> None:
    state, reports = run(scaled(PRIOR, 2.0, 2.0), [4, 30], cycles=2)
    assert (state.fixed_factor, state.work_factor, state.identified) == (1.0, 1.0, "none")
    assert "2 window(s) of evidence (< 3)" in reports[-1].reasons[0]


def test_each_update_moves_a_factor_at_most_the_step_bound_and_says_so() -> None:
    _state, reports = run(scaled(PRIOR, 3.0, 3.0), [4, 30, 12], cycles=6)
    factors = [1.0] + [r.fixed_factor for r in reports]
    assert all(b / a <= 1.5 + 1e-9 for a, b in itertools.pairwise(factors))
    assert factors[-1] == pytest.approx(3.0)
    assert any("moved at most x1.5" in " ".join(r.reasons) for r in reports)


def test_the_total_change_stays_within_its_bound_of_the_prior() -> None:
    state, reports = run(scaled(PRIOR, 10.0, 10.0), [4, 30, 12], cycles=12)
    assert state.fixed_factor == pytest.approx(4.0)
    assert state.work_factor == pytest.approx(4.0)
    assert "held within x4 of the prior" in reports[-1].reasons


def test_pinned_state_learns_nothing() -> None:
    pinned = State(MODEL, ACC, fixed_factor=1.2, work_factor=0.9, pinned=True)
    state, report = update(pinned, PRIOR, [observation(scaled(PRIOR, 2, 2), 20)], 1000.0, Limits())
    assert state == pinned
    assert report.reasons == ("pinned by the operator: nothing learned",)
    assert report.learned == scaled(PRIOR, 1.2, 0.9)


def test_reset_goes_back_to_the_prior_and_forgets_the_evidence() -> None:
    state, _ = run(scaled(PRIOR, 2.0, 2.0), [4, 30, 12], cycles=6)
    assert state.fixed_factor != 1.0
    state, report = update(replace(state, reset=True), PRIOR, [], 5000.0, Limits())
    assert (state.fixed_factor, state.work_factor, state.evidence, state.reset) == (1.0, 1.0, (), False)
    assert report.reasons[0].startswith("reset by the operator")


def test_old_evidence_leaves_the_window() -> None:
    state, _ = run(scaled(PRIOR, 2.0, 2.0), [4, 30, 12], cycles=6)
    later, _ = update(state, PRIOR, [], state.updated_at_s + 1801.0, Limits())
    assert later.evidence == ()
    assert later.fixed_factor == state.fixed_factor  # no evidence: the learned values stay


def test_a_sick_replica_is_left_out_not_averaged_in() -> None:
    truth = scaled(PRIOR, 1.0, 1.0)
    assert isinstance(truth, StepPerf)
    healthy = [observation(truth, 20, source=f"ns/pod-{k}") for k in range(3)]
    sick = replace(observation(truth, 20, source="ns/pod-sick"), itl_ms=healthy[0].itl_ms * 3)
    state, report = update(State(MODEL, ACC), PRIOR, [*healthy, sick], 1000.0, Limits())
    assert [(x.source, x.code) for x in report.left_out] == [("ns/pod-sick", Rejection.OUTLIER)]
    assert report.accepted == 3
    assert state.fixed_factor == pytest.approx(1.0, rel=1e-6)


def with_pods(obs: Observation, itl_ms: list[float], gaps_rps: float = 20.0) -> Observation:
    """``obs`` of ``len(itl_ms)`` pods at its batch and rate each, pod k's mean gap ``itl_ms[k]``;
    the Deployment's sums are the pods' (its mean gap weighted by each pod's gaps)."""
    pods = tuple(
        PodWindow(f"pod-{k}", obs.replica_rps, gaps_rps, itl, obs.running_per_pod, 2.0, 9_000.0)
        for k, itl in enumerate(itl_ms)
    )
    return replace(
        obs,
        pods=pods,
        reporting_pods=len(pods),
        ready_pods=len(pods),
        completion_rps=obs.replica_rps * len(pods),
        itl_ms=sum(itl_ms) / len(itl_ms),
        running_var_per_pod=2.0,
        context_tokens_per_pod=9_000.0,
    )


def test_a_sick_pod_is_taken_out_of_its_deployments_window_not_averaged_in() -> None:
    base = observation(PRIOR, 20)
    sick = with_pods(base, [base.itl_ms] * 3 + [base.itl_ms * 2.5])
    state, report = update(State(MODEL, ACC), PRIOR, [sick], 1000.0, Limits())
    [left] = report.left_out
    assert (left.source, left.code) == ("ns/granite/pod-3", Rejection.OUTLIER)
    assert left.text.startswith("pod measured/predicted step")
    [window] = state.evidence
    healthy = with_pods(base, [base.itl_ms] * 3)
    assert (window.itl_ms, window.replica_rps, window.weight) == (
        pytest.approx(base.itl_ms),
        pytest.approx(base.replica_rps),
        pytest.approx(healthy.requests),
    )
    # The same Deployment without per-pod series: the sick pod is averaged into the mean gap.
    blind, _ = update(State(MODEL, ACC), PRIOR, [replace(sick, pods=())], 1000.0, Limits())
    assert blind.evidence[0].itl_ms == pytest.approx(base.itl_ms * 5.5 / 4)


@pytest.mark.parametrize(
    "itl_factors",
    [
        pytest.param([1.0, 2.5], id="two-pods-cannot-say-which"),
        pytest.param([1.0, 1.1, 0.95, 1.3], id="all-within-the-ratio"),
    ],
)
def test_pods_are_kept_when_none_is_an_outlier_among_three_or_more(itl_factors: list[float]) -> None:
    base = observation(PRIOR, 20)
    obs = with_pods(base, [base.itl_ms * f for f in itl_factors])
    _, report = update(State(MODEL, ACC), PRIOR, [obs], 1000.0, Limits())
    assert report.left_out == () and report.accepted == 1


def test_a_pod_with_an_unsound_reading_leaves_the_deployments_sums_whole() -> None:
    base = observation(PRIOR, 20)
    obs = with_pods(base, [base.itl_ms] * 3 + [base.itl_ms * 2.5])
    broken = replace(obs, pods=(*obs.pods[:3], replace(obs.pods[3], itl_ms=math.nan)))
    state, report = update(State(MODEL, ACC), PRIOR, [broken], 1000.0, Limits())
    assert report.left_out == ()  # the pods' sums cannot be split: the Deployment's window stands
    assert state.evidence[0].itl_ms == pytest.approx(obs.itl_ms)


def _learned_state() -> State:
    state, _ = run(scaled(PRIOR, 2.0, 0.5), [4, 30, 12, 48, 20], cycles=10)
    return state


HOSTILE = [
    pytest.param({"itl_ms": math.nan}, Rejection.NOT_FINITE, id="nan-itl"),
    pytest.param({"completion_rps": math.inf}, Rejection.NOT_FINITE, id="inf-rate"),
    pytest.param({"running_per_pod": math.nan}, Rejection.NOT_FINITE, id="nan-gauge"),
    pytest.param({"context_tokens_per_pod": math.nan}, Rejection.NOT_FINITE, id="nan-kv-context"),
    pytest.param({"context_tokens_per_pod": -5.0}, Rejection.NEGATIVE, id="negative-kv-context"),
    pytest.param({"itl_ms": -30.0}, Rejection.NEGATIVE, id="negative-itl"),
    pytest.param({"completion_rps": -2.0}, Rejection.NEGATIVE, id="negative-rate-counter-went-back"),
    pytest.param({"counter_resets": 1.0}, Rejection.RESTART, id="reset-pod-restart"),
    pytest.param({"last_sample_s": 0.0}, Rejection.STALE, id="stale"),
    pytest.param({"model": "llama_70b"}, Rejection.OTHER_MODEL, id="other-model-deployment"),
    pytest.param(
        {"served_models": ("ibm/granite-13b", "meta/llama-70b")}, Rejection.OTHER_MODEL, id="mixed-replicas"
    ),
    pytest.param({"served_models": ("meta/llama-70b",)}, Rejection.OTHER_MODEL, id="another-models-replica"),
    pytest.param({"completion_rps": 0.1}, Rejection.TOO_FEW_REQUESTS, id="too-few-requests"),
    pytest.param({"preemptions": 3.0}, Rejection.PREEMPTIONS, id="preemptions"),
    pytest.param({"reporting_pods": 1}, Rejection.UNREPORTED, id="pod-not-reporting"),
    pytest.param({"window_pods": 3}, Rejection.FLEET_CHANGED, id="pod-left-in-the-window"),
]


@pytest.mark.parametrize(("change", "code"), HOSTILE)
def test_hostile_input_never_moves_the_parameters(change: dict[str, Any], code: Rejection) -> None:
    state = _learned_state()
    wild = replace(observation(scaled(PRIOR, 8.0, 8.0), 20, end_s=state.updated_at_s + 60), **change)
    stale = "last_sample_s" in change
    for k in range(5):  # hostile windows every cycle: still nothing moves
        now = state.updated_at_s + 60
        new, report = update(
            state,
            PRIOR,
            [replace(wild, end_s=now, last_sample_s=wild.last_sample_s if stale else now)],
            now,
            Limits(),
        )
        assert [x.code for x in report.left_out] == [code], report.left_out
        assert (new.fixed_factor, new.work_factor, new.evidence) == (
            state.fixed_factor,
            state.work_factor,
            state.evidence,
        ), k
        state = new


def test_the_same_wild_window_without_the_defect_does_move_them() -> None:
    """The hostile cases' window is otherwise valid: the screen, not the window, holds them back."""
    state = _learned_state()
    now = state.updated_at_s + 60
    new, report = update(
        state, PRIOR, [observation(scaled(PRIOR, 8.0, 8.0), 20, end_s=now)], now, Limits(outlier_ratio=0)
    )
    assert report.left_out == ()
    assert new.fixed_factor != state.fixed_factor


@pytest.mark.parametrize(
    "prior",
    [
        pytest.param(DecodeOnlyPerf(20.0, 0.5), id="decode-only"),
        pytest.param(PrefillDecodePerf(20.58, 0.41, 164.64, 0.0128125), id="prefill-decode"),
    ],
)
def test_older_schemas_scale_their_fixed_and_work_parts(prior: DecodeOnlyPerf | PrefillDecodePerf) -> None:
    truth = scaled(prior, 1.5, 0.8)
    windows = []
    for running in (3.0, 10.0, 30.0, 60.0, 15.0):
        rps, itl = 0.5, 30.0
        for _ in range(60):
            w = Window(0.0, rps, 512, 256, itl, 0.0, 1.0, running=running)
            itl = sum(parts_ms(truth, w))
        windows.append(Window(0.0, rps, 512, 256, itl, 0.0, 1.0, running=running))
    result = fit(prior, windows, FitLimits())
    assert result.identified == "split"
    assert result.fixed_factor == pytest.approx(1.5)
    assert result.work_factor == pytest.approx(0.8)
