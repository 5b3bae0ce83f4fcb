"""Robust least squares of one schema's parameters on a :class:`~.timeline.Design`.

Role: the numbers behind a profile. Caller: the profiler (``python -m advisor profile``) and
:mod:`.verdict`.

The residual of a request is relative, ``(x @ theta - y) / y``: a long request and a short one
weigh alike, and the fit's quality reads as a share. Parameters are bounded below by 0 (a cost
is never negative). The loss is ``soft_l1`` with a scale of 2 %: a request whose interval a
stray event skewed (a client pause, a token miscounted at an end of the interval) pulls the fit
linearly, not quadratically (``scipy.optimize.least_squares``). The start is the non-negative
least-squares solution of the same relative system.

Quality: the median and 90th percentile of ``|residual|``, R^2 of the per-request mean ITL
(``y/(out-1)``; its spread across the sweep is what the parameters must explain), and each
parameter's standard error from the Jacobian, ``sqrt(diag(s^2 (J'J)^-1))`` with ``s^2`` the
residuals' mean square. Example: a sweep of 600 requests on an emulated replica with
``fixed`` 20 ms recovers 20.1 +/- 0.05 ms; a 4-parameter fit of 1,000 rows takes ~20 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, nnls

from contract.data.perf import DecodeOnlyPerf, IterationPerf, PerfParams, PrefillDecodePerf, StepPerf
from optimizer.profiling.timeline import PARAMETERS, Design, FloatArray, Schema

LOSS_SCALE = 0.02
"""Relative residual at which the soft-l1 loss turns from quadratic to linear."""


@dataclass(frozen=True, slots=True)
class Fit:
    """A schema's parameters (ms, named as in model-data.json) and how well they explain the data."""

    schema: Schema
    params: dict[str, float]
    std_err: dict[str, float]
    rows: int
    r2_itl: float
    median_abs_residual: float
    p90_abs_residual: float
    measured_itl_ms: tuple[float, ...]
    predicted_itl_ms: tuple[float, ...]
    levels: tuple[int, ...]
    """The sweep level of each row."""

    def level_ratio(self, level: int) -> float:
        """Measured over predicted mean ITL of the level's requests (NaN without any)."""
        rows = [i for i, lv in enumerate(self.levels) if lv == level]
        if not rows:
            return math.nan
        measured = sum(self.measured_itl_ms[i] for i in rows)
        return measured / sum(self.predicted_itl_ms[i] for i in rows)

    @property
    def perf(self) -> PerfParams:
        return perf_of(self.schema, self.params)


def perf_of(schema: Schema, p: dict[str, float]) -> PerfParams:
    """The typed parameters of ``schema`` from data-file names."""
    if schema == "decode-only":
        return DecodeOnlyPerf(p["alpha"], p["beta"])
    if schema == "prefill-decode":
        return PrefillDecodePerf(p["alpha"], p["beta"], p["gamma"], p["delta"])
    if schema == "iteration":
        return IterationPerf(p["alpha"], p["beta"], p["gamma"])
    return StepPerf(p["fixed"], p["perDecode"], p["perPrefillToken"], p["perContextToken"])


def params_of(perf: PerfParams) -> tuple[Schema, dict[str, float]]:
    """Inverse of :func:`perf_of`."""
    if isinstance(perf, DecodeOnlyPerf):
        return "decode-only", {"alpha": perf.alpha_ms, "beta": perf.beta_ms}
    if isinstance(perf, PrefillDecodePerf):
        values = (perf.alpha_ms, perf.beta_ms, perf.gamma_ms, perf.delta_ms)
        return "prefill-decode", dict(zip(PARAMETERS["prefill-decode"], values, strict=True))
    if isinstance(perf, IterationPerf):
        return "iteration", {"alpha": perf.alpha_ms, "beta": perf.beta_ms, "gamma": perf.gamma_ms}
    values = (perf.fixed_ms, perf.per_decode_ms, perf.per_prefill_token_ms, perf.per_context_token_ms)
    return "step", dict(zip(PARAMETERS["step"], values, strict=True))


def fit(design: Design) -> Fit:
    """Fit ``design`` (ValueError when it has fewer rows than twice its parameters)."""
    names = PARAMETERS[design.schema]
    n, p = design.x.shape
    if n < 2 * p:
        raise ValueError(f"{n} usable requests cannot fit {p} parameters of the {design.schema} schema")
    a = design.x / design.y_ms[:, None]
    ones = np.ones(n)
    scale = np.maximum(np.abs(a).max(axis=0), 1e-300)
    start, _ = nnls(a / scale, ones)
    start = start / scale

    def residual(theta: FloatArray) -> FloatArray:
        return np.asarray(a @ theta - ones, dtype=np.float64)

    result = least_squares(
        residual,
        np.maximum(start, 1e-12),
        bounds=(0.0, np.inf),
        loss="soft_l1",
        f_scale=LOSS_SCALE,
        x_scale="jac",
        method="trf",
    )
    theta = np.asarray(result.x, dtype=np.float64)
    res = residual(theta)
    dof = max(n - p, 1)
    s2 = float(res @ res) / dof
    cov = s2 * np.linalg.pinv(a.T @ a)
    err = np.sqrt(np.maximum(np.diag(cov), 0.0))
    measured = design.y_ms / design.steps
    predicted = (design.x @ theta) / design.steps
    return Fit(
        schema=design.schema,
        params=dict(zip(names, theta.tolist(), strict=True)),
        std_err=dict(zip(names, err.tolist(), strict=True)),
        rows=n,
        r2_itl=r_squared(measured, predicted),
        median_abs_residual=float(np.median(np.abs(res))),
        p90_abs_residual=float(np.quantile(np.abs(res), 0.9)),
        measured_itl_ms=tuple(measured.tolist()),
        predicted_itl_ms=tuple(predicted.tolist()),
        levels=design.levels,
    )


def r_squared(measured: FloatArray, predicted: FloatArray) -> float:
    """``1 - SS_res/SS_tot``; NaN when the measurements do not vary."""
    total = float(np.sum((measured - measured.mean()) ** 2))
    if not total > 0:
        return math.nan
    return 1.0 - float(np.sum((measured - predicted) ** 2)) / total
