"""Online calibration of one (model, accelerator): evidence in, bounded factors and their reasons out.

Role: the guarded update of :mod:`calibration.fit`. Pure: ``update(state, prior,
observations, now_s, limits) -> (state, CalibrationReport)``; time is an argument, the state is
a value (kept by the caller between cycles and stored in the dynamic ConfigMap as
``calibration-data.json``: :mod:`contract.data.calibration`).

One update:

1. an operator's ``pinned`` state changes nothing; a ``reset`` one goes back to the prior and
   forgets its evidence;
2. each observation is screened (:func:`calibration.observation.screen`); one whose
   measured step over the step the learned values predict is more than ``outlier_ratio`` times
   off the median of this cycle's sources (three or more of the pair: two cannot say which one is
   sick) is left out, not averaged in (a sick GPU). The same rule runs first among the pods of an
   observation that carries its per-pod windows (three or more sound ones): a sick pod is taken
   out of its observation, which keeps its other pods (rates, mean gap, batch and context
   recomputed from them), and the pod is listed as left out. A lone source is never judged
   against the learned values themselves: a wrong value would then lock out the evidence that
   corrects it;
3. the accepted windows join the evidence, which keeps the last ``evidence_max_age_s`` and at most
   ``evidence_max_windows`` windows;
4. the fit's factors are bounded in total (within ``[1/max_total_ratio, max_total_ratio]`` of the
   prior) and per cycle (each moves at most ``max_step_ratio`` times from the current value), and
   the reasons say which bound acted.

Example: prior fixed 20 ms; an engine twice as slow; each cycle brings 2 windows at one load:
after 2 cycles (4 windows) the scale fit says x2.0, the step bound lets it move to x1.5, the
next cycle to x2.0.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from calibration.fit import Fit, FitLimits, Identified, Window, fit, parts_ms, scaled
from calibration.observation import Observation, PodWindow, Rejection, ScreenLimits, screen
from contract.data.perf import PerfParams


class Bound(StrEnum):
    """Which guard changed the fit's factors before they were taken."""

    STEP = "step"
    TOTAL = "total"


@dataclass(frozen=True, slots=True)
class Limits:
    """The guardrails; units in the names. ``max_*_ratio`` 0 turns that bound off."""

    screen: ScreenLimits = field(default_factory=ScreenLimits)
    fit: FitLimits = field(default_factory=FitLimits)
    outlier_ratio: float = 1.5
    """A source whose measured step over the learned prediction is this many times above or below
    its peers' is left out; 0: none is."""
    max_step_ratio: float = 1.5
    """Each factor moves at most this many times up or down per update."""
    max_total_ratio: float = 4.0
    """Each factor stays within this many times of the prior."""
    evidence_max_age_s: float = 1800.0
    evidence_max_windows: int = 120


@dataclass(frozen=True, slots=True)
class State:
    """What one (model, accelerator) has learned. ``pinned``: the operator fixed the factors;
    ``reset``: the operator asked to go back to the prior (done at the next update)."""

    model: str
    accelerator: str
    fixed_factor: float = 1.0
    work_factor: float = 1.0
    identified: Identified = "none"
    confidence: float = 0.0
    updated_at_s: float = 0.0
    served_model: str = ""
    pinned: bool = False
    reset: bool = False
    evidence: tuple[Window, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Left:
    """A window that is not evidence, and why."""

    source: str
    code: Rejection
    text: str


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    """What an update did: prior, learned values, confidence and every reason."""

    model: str
    accelerator: str
    prior: PerfParams
    learned: PerfParams
    fixed_factor: float
    work_factor: float
    identified: Identified
    confidence: float
    accepted: int
    left_out: tuple[Left, ...]
    bounds: tuple[Bound, ...]
    reasons: tuple[str, ...]
    fit: Fit | None = None


def update(
    state: State, prior: PerfParams, observations: Sequence[Observation], now_s: float, limits: Limits
) -> tuple[State, CalibrationReport]:
    """The next state of ``state`` given this cycle's ``observations`` (any order, any source)."""
    if state.pinned:
        return state, _report(state, prior, (), (), (), ("pinned by the operator: nothing learned",), None)
    reasons: list[str] = []
    if state.reset:
        state = State(state.model, state.accelerator, updated_at_s=now_s)
        reasons.append("reset by the operator: back to the prior, evidence forgotten")
    accepted, left = _accept(state, prior, observations, limits)
    served = state.served_model or next((o.served_models[0] for o in accepted if o.served_models), "")
    evidence = _trim((*state.evidence, *(_window(o) for o in accepted)), now_s, limits)
    result = fit(prior, evidence, limits.fit)
    reasons.append(result.reason)
    if result.identified == "none":
        new = replace(state, evidence=evidence, served_model=served, updated_at_s=now_s)
        return new, _report(new, prior, accepted, left, (), tuple(reasons), result)
    fixed, work, bounds = _bounded(state, result, limits)
    if Bound.TOTAL in bounds:
        reasons.append(f"held within x{limits.max_total_ratio:g} of the prior")
    if Bound.STEP in bounds:
        reasons.append(f"moved at most x{limits.max_step_ratio:g} this update")
    new = replace(
        state,
        fixed_factor=fixed,
        work_factor=work,
        identified=result.identified,
        confidence=result.confidence,
        updated_at_s=now_s,
        served_model=served,
        evidence=evidence,
    )
    return new, _report(new, prior, accepted, left, bounds, tuple(reasons), result)


def _accept(
    state: State, prior: PerfParams, observations: Sequence[Observation], limits: Limits
) -> tuple[list[Observation], list[Left]]:
    left: list[Left] = []
    passed: list[Observation] = []
    served = state.served_model
    for obs in observations:
        rejected = screen(obs, state.model, state.accelerator, served, limits.screen)
        if rejected is not None:
            left.append(Left(obs.source, *rejected))
            continue
        healthy, sick = _without_sick_pods(prior, state, obs, limits)
        left.extend(sick)
        passed.append(healthy)
        served = served or (healthy.served_models[0] if healthy.served_models else "")
    ratios = [_ratio(prior, state, _window(o)) for o in passed]
    kept = []
    for obs, why in zip(passed, _outliers(ratios, limits), strict=True):
        if why:
            left.append(Left(obs.source, Rejection.OUTLIER, why))
        else:
            kept.append(obs)
    return kept, left


def _outliers(ratios: Sequence[float], limits: Limits) -> list[str]:
    """Per measured/predicted step ratio, why it is an outlier among its peers ("" if it is not).
    Fewer than three say nothing: a median of two cannot say which one is sick."""
    if limits.outlier_ratio <= 0 or len(ratios) < 3:
        return [""] * len(ratios)
    reference = statistics.median(ratios)
    limit = math.log(limits.outlier_ratio)
    return [
        (
            f"measured/predicted step {ratio:.2f} against its peers' {reference:.2f} "
            f"(beyond x{limits.outlier_ratio:g}): left out"
        )
        if abs(math.log(ratio / reference)) > limit
        else ""
        for ratio in ratios
    ]


def _without_sick_pods(
    prior: PerfParams, state: State, obs: Observation, limits: Limits
) -> tuple[Observation, list[Left]]:
    """``obs`` without its outlier pods (its other pods' rates, gap, batch and context), and them."""
    pods = [p for p in obs.pods if p.sound]
    if len(pods) < 3 or len(pods) < len(obs.pods):
        return obs, []  # too few pods to judge, or some not measured: the sums cannot be split
    whys = _outliers([_ratio(prior, state, _window(_as_pod(obs, p))) for p in pods], limits)
    sick = [(p, why) for p, why in zip(pods, whys, strict=True) if why]
    if not sick:
        return obs, []
    kept = [p for p, why in zip(pods, whys, strict=True) if not why]
    gaps = sum(p.itl_count_rps for p in kept)
    measured_context = all(p.context_tokens > 0 for p in kept)
    healthy = replace(
        obs,
        completion_rps=sum(p.completion_rps for p in kept),
        itl_ms=sum(p.itl_ms * p.itl_count_rps for p in kept) / gaps,
        reporting_pods=len(kept),
        ready_pods=max(obs.ready_pods - len(sick), len(kept)),
        window_pods=max(obs.window_pods - len(sick), 0),
        running_per_pod=statistics.fmean(p.running for p in kept),
        running_var_per_pod=statistics.fmean(p.running_var for p in kept),
        context_tokens_per_pod=statistics.fmean(p.context_tokens for p in kept) if measured_context else 0.0,
        pods=tuple(kept),
    )
    return healthy, [Left(f"{obs.source}/{p.pod}", Rejection.OUTLIER, f"pod {why}") for p, why in sick]


def _as_pod(obs: Observation, pod: PodWindow) -> Observation:
    """``obs`` as if ``pod`` were its only pod."""
    return replace(
        obs,
        completion_rps=pod.completion_rps,
        itl_ms=pod.itl_ms,
        reporting_pods=1,
        ready_pods=1,
        running_per_pod=pod.running,
        running_var_per_pod=pod.running_var,
        context_tokens_per_pod=pod.context_tokens,
        pods=(),
    )


def _ratio(prior: PerfParams, state: State, w: Window) -> float:
    """Measured step over the step the current learned values predict."""
    fixed, work = parts_ms(prior, w)
    return w.itl_ms / max(state.fixed_factor * fixed + state.work_factor * work, 1e-9)


def _window(obs: Observation) -> Window:
    return Window(
        end_s=obs.end_s,
        replica_rps=obs.replica_rps,
        in_tokens=obs.in_tokens,
        out_tokens=obs.out_tokens,
        itl_ms=obs.itl_ms,
        ttft_ms=obs.ttft_ms,
        weight=obs.requests,
        out_cv2=obs.out_cv2,
        running=obs.running_per_pod,
        running_var=obs.running_var_per_pod,
        window_s=obs.window_s,
        context_tokens=obs.context_tokens_per_pod,
    )


def _trim(evidence: tuple[Window, ...], now_s: float, limits: Limits) -> tuple[Window, ...]:
    recent = tuple(w for w in evidence if now_s - w.end_s <= limits.evidence_max_age_s)
    return recent[-limits.evidence_max_windows :] if limits.evidence_max_windows > 0 else recent


def _bounded(state: State, result: Fit, limits: Limits) -> tuple[float, float, tuple[Bound, ...]]:
    bounds: set[Bound] = set()

    def one(current: float, target: float) -> float:
        value = target
        total = limits.max_total_ratio
        if total > 0 and not 1.0 / total <= value <= total:
            value = min(max(value, 1.0 / total), total)
            bounds.add(Bound.TOTAL)
        step = limits.max_step_ratio
        if step > 0 and not current / step <= value <= current * step:
            value = min(max(value, current / step), current * step)
            bounds.add(Bound.STEP)
        return value

    fixed = one(state.fixed_factor, result.fixed_factor)
    work = one(state.work_factor, result.work_factor)
    return fixed, work, tuple(sorted(bounds))


def _report(  # noqa: PLR0917 - internal, every argument is a part of the report
    state: State,
    prior: PerfParams,
    accepted: Sequence[Observation],
    left: Sequence[Left],
    bounds: tuple[Bound, ...],
    reasons: tuple[str, ...],
    result: Fit | None,
) -> CalibrationReport:
    return CalibrationReport(
        model=state.model,
        accelerator=state.accelerator,
        prior=prior,
        learned=learned(prior, state),
        fixed_factor=state.fixed_factor,
        work_factor=state.work_factor,
        identified=state.identified,
        confidence=state.confidence,
        accepted=len(accepted),
        left_out=tuple(left),
        bounds=bounds,
        reasons=reasons,
        fit=result,
    )


def learned(prior: PerfParams, state: State) -> PerfParams:
    """The parameters the optimizer sizes with: the prior times the state's factors."""
    return scaled(prior, state.fixed_factor, state.work_factor)
