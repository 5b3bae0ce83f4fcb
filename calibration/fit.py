"""The fit: two factors on the prior's parameters, from the inter-token gaps vLLM measured.

Role: the pure estimator of online calibration. Caller: :mod:`calibration.learner`.

Every schema's step (the gap between two tokens of a running request) splits into a *fixed* part,
paid once per step whatever the batch (``fixed`` of the step schema, ``alpha`` and the prefill's
``gamma`` of the older ones), and a *work* part that grows with the batch and its tokens
(``perDecode``, ``perPrefillToken``, ``perContextToken``; ``beta``, ``delta``). Calibration keeps
the prior's shape within each part and learns one factor per part: ``fixed_factor`` and
``work_factor``. Under the prior, a window of per-replica completion rate ``lam`` (req/s),
mean lengths ``in``/``out`` and measured mean gap ``y`` (ms) has

- running requests ``n``: the mean of vLLM's running-requests gauge over the window, or when it
  is not measured ``n = lam * out * y / 1000`` (Little's law over a request's ``out`` steps; it
  reads low in a window where the load rose, as completions lag the arrivals). The ITL histogram
  counts every token, and a step of n running requests yields n of them, so its mean is
  ``E_t[n] / E_t[n/d(n)]`` over time for a step ``d(n) = a + b*n``; to second order in the
  gauge's variance over the window that is the step at ``n + Var(n)/n * a/d(n)``, the fixed
  part's share ``a/d(n)`` taken from the prior, and once the split is fitted from the factors
  found, fitting again (0 variance: no correction). E.g. n = 49, Var 167,
  a share of 0.28: the step at n = 49.95, where ``n + Var/n`` (the token-weighted batch alone)
  says 52.4 and over-predicts the step by 4 %,
- prompt tokens per step ``P = lam * in * y / 1000`` (the prompts arriving during one step),
- context tokens per step ``C = n * c + P``, with ``c`` the context of one running request:
  measured, the tokens the running requests hold in the KV cache over the window
  (``vllm:kv_cache_usage_perc`` times the cache's size from ``vllm:cache_config_info``) over ``n``;
  otherwise from the lengths, ``c = in + (1 + cv^2) * out/2`` (each decode attends its prompt and
  the part of its output made so far, on average half of it for a request, weighted by how many
  steps each request runs: ``E[out^2]/(2 E[out])``, with ``cv^2`` the output lengths' squared
  coefficient of variation; each prompt chunk its prompt so far). The lengths' ``c`` holds in a
  steady state only: while the load falls the running requests are older than that and attend
  more (9 % more step than predicted in one window of benchmark 8's loop), while it rises less.
  A measured ``c`` below the mean prompt means blocks are shared (prefix caching: a shared
  prefix is held once but attended by every request), and the lengths' ``c`` stands,

and the step schema predicts ``y = a * F + b * W`` with ``F = fixed`` and
``W = perDecode*n + perPrefillToken*P + perContextToken*C`` (prior values; ``a``, ``b`` the
factors). The prefill-first schemas (``alpha, beta`` and ``gamma, delta``) stall each gap by
the prefills arriving in it: ``F = alpha + lam*y/1000*gamma``, ``W = beta*n + lam*y/1000*delta*in``.

*What the data identifies.* At one operating point every window has the same share ``F/(F+W)``,
so only the common scale ``s = a = b`` is determined: ``s`` is the weighted mean of ``y/(F+W)``.
The two factors come apart only when that share has varied across the windows by at least
``min_share_spread``; then ``(a, b)`` minimise ``sum w_i ((y_i - a F_i - b W_i) / y_i)^2`` and are
taken only if both are positive with relative standard errors below ``max_rel_se``.

Worked example (step schema fixed 20, work per decode 1 ms, nothing else; true engine fixed 10,
per decode 2): a window at n = 5 measures 20 ms (prior 25), one at n = 20 measures 50 ms (prior
40). Shares 0.8 and 0.5 differ by 0.3: the fit gives a = 0.5, b = 2.0 exactly. With the n = 5
window alone: s = 20/25 = 0.8 and the reason says only the scale is identifiable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from contract.data.perf import (
    DecodeOnlyPerf,
    IterationPerf,
    PerfParams,
    PrefillDecodePerf,
    StepPerf,
    as_step_perf,
)

Identified = Literal["none", "scale", "split"]


@dataclass(frozen=True, slots=True)
class Window:
    """One accepted window reduced to what the fit needs (per replica). Times in ms."""

    end_s: float
    replica_rps: float
    in_tokens: float
    out_tokens: float
    itl_ms: float
    ttft_ms: float
    weight: float
    """Completions in the window (the means' precision grows with them)."""
    out_cv2: float = 1.0
    """Squared coefficient of variation of the output lengths (1: geometric)."""
    running: float = 0.0
    """Mean running requests per replica measured by the gauge; 0: unknown (Little's law)."""
    running_var: float = 0.0
    """Variance of the gauge over the window (0: unknown or steady)."""
    window_s: float = 0.0
    """Length of the window (s); 0: unknown, the windows are taken as independent."""
    context_tokens: float = 0.0
    """Mean tokens one replica's running requests hold in the KV cache over the window
    (:func:`collector.measured.context_from_kv`); 0: not measured, the lengths stand in (see the module)."""


@dataclass(frozen=True, slots=True)
class FitLimits:
    min_windows: int = 3
    """Fewest windows before anything is learned."""
    min_share_spread: float = 0.15
    """Range of the fixed part's share ``F/(F+W)`` over the windows needed to split the factors."""
    max_rel_se: float = 0.1
    """Largest relative standard error a split factor may have to be taken."""


@dataclass(frozen=True, slots=True)
class Fit:
    fixed_factor: float
    work_factor: float
    identified: Identified
    confidence: float
    """In [0, 1]: 1 - relative standard error / ``max_rel_se`` of the factors taken (0: none)."""
    share_spread: float
    rel_error: float
    """Root-mean-square relative error of the fitted gaps over the windows."""
    reason: str
    rel_se: float = math.nan
    """Relative standard error of the factors taken (the worse of the two when split; NaN: none)."""


def parts_ms(perf: PerfParams, w: Window, factors: tuple[float, float] = (1.0, 1.0)) -> tuple[float, float]:
    """``(F, W)``: the prior's fixed and work parts of one step at window ``w`` (see the module);
    ``factors`` (fixed, work) give the fixed share of the token-weighting correction."""
    mean = w.running if w.running > 0 else w.replica_rps * w.out_tokens * w.itl_ms / 1000.0
    fixed, work = _parts_at(perf, w, mean)
    a, b = factors
    if mean <= 0 or w.running_var <= 0 or a * fixed + b * work <= 0:
        return fixed, work
    return _parts_at(perf, w, mean + w.running_var / mean * a * fixed / (a * fixed + b * work))


def _parts_at(perf: PerfParams, w: Window, running: float) -> tuple[float, float]:
    """``(F, W)`` with ``running`` requests in every step."""
    step_s = w.itl_ms / 1000.0
    if isinstance(perf, DecodeOnlyPerf):
        return perf.alpha_ms, perf.beta_ms * running
    if isinstance(perf, PrefillDecodePerf):
        prefills = w.replica_rps * step_s
        return (
            perf.alpha_ms + prefills * perf.gamma_ms,
            perf.beta_ms * running + prefills * perf.delta_ms * w.in_tokens,
        )
    step = as_step_perf(perf)
    prompt = w.replica_rps * w.in_tokens * step_s
    context = running * context_per_request(w) + prompt
    work = (
        step.per_decode_ms * running
        + step.per_prefill_token_ms * prompt
        + step.per_context_token_ms * context
    )
    return step.fixed_ms, work


def context_per_request(w: Window) -> float:
    """Context tokens one running request attends to on average in window ``w``: measured from the
    KV cache when ``w`` has it and it holds at least the mean prompt per running request, else
    ``in + (1 + cv^2) * out / 2`` (see the module)."""
    steady = w.in_tokens + (1.0 + w.out_cv2) * w.out_tokens / 2.0
    if w.context_tokens <= 0 or w.running <= 0:
        return steady
    measured = w.context_tokens / w.running
    return measured if measured >= w.in_tokens else steady


def scaled(perf: PerfParams, fixed_factor: float, work_factor: float) -> PerfParams:
    """``perf`` with its fixed part times ``fixed_factor`` and its work part times ``work_factor``."""
    a, b = fixed_factor, work_factor
    if isinstance(perf, DecodeOnlyPerf):
        return DecodeOnlyPerf(perf.alpha_ms * a, perf.beta_ms * b)
    if isinstance(perf, PrefillDecodePerf):
        return PrefillDecodePerf(perf.alpha_ms * a, perf.beta_ms * b, perf.gamma_ms * a, perf.delta_ms * b)
    if isinstance(perf, IterationPerf):
        return IterationPerf(perf.alpha_ms * a, perf.beta_ms * b, perf.gamma_ms * b)
    return StepPerf(
        perf.fixed_ms * a,
        perf.per_decode_ms * b,
        perf.per_prefill_token_ms * b,
        perf.per_context_token_ms * b,
    )


def fit(perf: PerfParams, windows: Sequence[Window], limits: FitLimits) -> Fit:
    """The factors that ``windows`` identify on the prior ``perf`` (1, 1 when they identify none)."""
    if len(windows) < limits.min_windows:
        return Fit(
            1.0,
            1.0,
            "none",
            0.0,
            0.0,
            math.nan,
            f"{len(windows)} window(s) of evidence (< {limits.min_windows})",
        )
    independent = independent_windows(windows)
    parts = np.array([parts_ms(perf, w) for w in windows])
    y = np.array([w.itl_ms for w in windows])
    weight = np.array([w.weight for w in windows])
    total = parts.sum(axis=1)
    if np.any(total <= 0):
        return Fit(1.0, 1.0, "none", 0.0, 0.0, math.nan, "the prior predicts a step of 0 ms")
    share = parts[:, 0] / total
    spread = float(share.max() - share.min())
    ratio = y / total
    scale = float(np.sum(weight * ratio) / np.sum(weight))
    split = _split(parts, y, weight, independent, limits) if spread >= limits.min_share_spread else None
    if split is not None:  # once more, with the fixed share of the factors found
        parts = np.array([parts_ms(perf, w, split[:2]) for w in windows])
        split = _split(parts, y, weight, independent, limits) or split
    if split is not None:
        a, b, rel_se = split
        err = _rms_rel(parts, y, a, b)
        return Fit(
            a,
            b,
            "split",
            _confidence(rel_se, limits),
            spread,
            err,
            (
                f"fixed part's share varied by {spread:.2f} over {_count(windows, independent)}: "
                f"fixed x{a:.3f}, work x{b:.3f} (relative standard error {rel_se:.1%})"
            ),
            rel_se,
        )
    dev = ratio / scale - 1.0
    rel_se = float(np.sqrt(np.sum(weight * dev**2) / np.sum(weight)) / math.sqrt(independent))
    why = (
        f"only {spread:.2f} (< {limits.min_share_spread:g})"
        if spread < limits.min_share_spread
        else f"{spread:.2f}, but the split is not determined to {limits.max_rel_se:.0%}"
    )
    return Fit(
        scale,
        scale,
        "scale",
        _confidence(rel_se, limits),
        spread,
        _rms_rel(parts, y, scale, scale),
        (
            f"fixed part's share varied {why} over {_count(windows, independent)}: only the common scale is "
            f"identifiable, x{scale:.3f} on every parameter; the prior's split is kept"
        ),
        rel_se,
    )


def independent_windows(windows: Sequence[Window]) -> float:
    """How many independent windows ``windows`` are worth: the time they cover (their union) over
    their mean length, at most their count; their count when a length is unknown.

    Windows that overlap share their requests, and so their noise: four 240-s windows one minute
    apart cover 420 s, 1.75 windows' worth, not 4. The standard errors count these, not the windows.
    """
    if not windows or any(w.window_s <= 0 for w in windows):
        return float(len(windows))
    spans = sorted((w.end_s - w.window_s, w.end_s) for w in windows)
    covered, reach = 0.0, -math.inf
    for start, end in spans:
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    mean_s = sum(w.window_s for w in windows) / len(windows)
    return min(max(covered / mean_s, 1.0), float(len(windows)))


def _count(windows: Sequence[Window], independent: float) -> str:
    if independent >= len(windows):
        return f"{len(windows)} windows"
    return f"{len(windows)} windows ({independent:.1f} independent)"


def _split(
    parts: np.ndarray, y: np.ndarray, weight: np.ndarray, independent: float, limits: FitLimits
) -> tuple[float, float, float] | None:
    """``(a, b, worst relative standard error)`` of the weighted relative least squares, or None.
    The covariance counts ``independent`` windows (overlapping windows share their noise)."""
    x = parts / y[:, None]
    target = np.ones_like(y)
    xtw = x.T * weight
    normal = xtw @ x
    if np.linalg.cond(normal) > 1e12:
        return None
    a, b = np.linalg.solve(normal, xtw @ target)
    resid = target - x @ np.array([a, b])
    dof = max(independent - 2.0, 1.0)
    sigma2 = float(np.sum(weight * resid**2) / np.sum(weight)) * independent / dof
    cov = sigma2 * np.linalg.inv(normal / np.mean(weight)) * len(y) / independent
    if a <= 0 or b <= 0:
        return None
    rel_se = max(math.sqrt(max(cov[0, 0], 0.0)) / a, math.sqrt(max(cov[1, 1], 0.0)) / b)
    if rel_se > limits.max_rel_se:
        return None
    return float(a), float(b), rel_se


def _rms_rel(parts: np.ndarray, y: np.ndarray, a: float, b: float) -> float:
    return float(np.sqrt(np.mean(((parts @ np.array([a, b])) / y - 1.0) ** 2)))


def _confidence(rel_se: float, limits: FitLimits) -> float:
    return round(max(0.0, 1.0 - rel_se / limits.max_rel_se), 3)
