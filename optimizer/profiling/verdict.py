"""Accept or refuse a fit, with typed reasons, and the model-data entry of an accepted one.

Role: the last step of a profile; the profiler writes nothing when :func:`judge` refuses.
A fit is refused when

- ``no-saturation``: no request shape of the sweep saturated (the batch and the saturation rate
  are then unknown, and the fit was never checked where sizing needs it most);
- ``poor-fit``: R^2 of the per-request ITL below :data:`MIN_R2`, or the 90th percentile of the
  relative residuals above :data:`MAX_P90_RESIDUAL` (the schema does not describe the engine);
- ``saturation-mismatch``: at the saturated level of a shape, the request times the fitted
  parameters predict put its throughput more than :data:`MAX_SATURATION_ERROR` off the measured
  one (``measured x mean measured ITL / mean predicted ITL``): the fit may explain the sweep on
  average and still miss the regime sizing needs most.

:func:`model_saturation_rps` is the optimizer's own reading of the parameters (its queueing
model's saturation with Poisson arrivals); the report gives it beside the measurement, but it
does not judge with it: a closed loop of fixed lengths completes requests in step, which on a
prefill-first engine batches the prefills that random arrivals would pay one by one.

Example: a prefill-first endpoint fitted with the decode-only schema explains its ITL with R^2
0.6: refused, ``poor-fit: R^2 of the ITL 0.60 < 0.90``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from contract.data.catalog import ModelPerfEntry
from contract.data.perf import PerfParams
from optimizer.model.service_time import LengthSpread, service_model
from optimizer.profiling.fit import Fit
from optimizer.profiling.levels import Saturation

MIN_R2 = 0.90
MAX_P90_RESIDUAL = 0.10
MAX_SATURATION_ERROR = 0.10
FIXED_LENGTHS = LengthSpread(in_cv2=0.0, out_cv2=0.0)
_DATA_KEYS = {"decode-only": None, "prefill-decode": None, "iteration": "perfParms", "step": "stepParms"}


class Refusal(StrEnum):
    NO_SATURATION = "no-saturation"
    POOR_FIT = "poor-fit"
    SATURATION_MISMATCH = "saturation-mismatch"


@dataclass(frozen=True, slots=True)
class SaturationCheck:
    in_tokens: int
    out_tokens: int
    measured_rps: float
    predicted_rps: float

    @property
    def error(self) -> float:
        return self.predicted_rps / self.measured_rps - 1.0 if self.measured_rps > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class Verdict:
    refusals: tuple[tuple[Refusal, str], ...]
    checks: tuple[SaturationCheck, ...]
    batch: int

    @property
    def accepted(self) -> bool:
        return not self.refusals

    def explain(self) -> str:
        if self.accepted:
            return "accepted"
        return "refused: " + "; ".join(f"{code.value}: {text}" for code, text in self.refusals)


def model_saturation_rps(
    perf: PerfParams, batch: int, in_tokens: float, out_tokens: float, budget: float
) -> float:
    """Completions/s of a replica of batch ``batch`` kept full with fixed lengths, as the
    optimizer's model reads the parameters: ``1000*N'/S_sat(N')``, N' the batch the token
    budget sustains (``service_model(...).chain_batch``)."""
    model = service_model(perf, in_tokens, out_tokens, spread=FIXED_LENGTHS, budget_tokens=budget)
    n = model.chain_batch(batch)
    return 1000.0 * n / model.saturated_service_ms(n)


def judge(fitted: Fit, saturations: Sequence[Saturation]) -> Verdict:
    """The verdict on ``fitted`` given the sweep's shapes."""
    refusals: list[tuple[Refusal, str]] = []
    saturated = [s for s in saturations if s.saturated]
    if not saturated:
        detail = "; ".join(f"in {s.in_tokens}/out {s.out_tokens}: {s.reason}" for s in saturations)
        refusals.append(
            (
                Refusal.NO_SATURATION,
                f"the sweep never saturated the endpoint ({detail}); add higher --concurrency levels",
            )
        )
    if not fitted.r2_itl >= MIN_R2:
        refusals.append((Refusal.POOR_FIT, f"R^2 of the ITL {fitted.r2_itl:.2f} < {MIN_R2}"))
    if fitted.p90_abs_residual > MAX_P90_RESIDUAL:
        refusals.append(
            (
                Refusal.POOR_FIT,
                f"90th percentile residual {fitted.p90_abs_residual:.1%} > {MAX_P90_RESIDUAL:.0%}",
            )
        )
    batch = max((s.batch for s in saturated), default=0)
    checks = []
    for s in saturated:
        check = SaturationCheck(
            s.in_tokens, s.out_tokens, s.rate_rps, s.rate_rps * fitted.level_ratio(s.top_level)
        )
        checks.append(check)
        if not abs(check.error) <= MAX_SATURATION_ERROR:
            refusals.append(
                (
                    Refusal.SATURATION_MISMATCH,
                    f"in {s.in_tokens}/out {s.out_tokens}: the fit predicts {check.predicted_rps:.3g} "
                    f"req/s at batch {s.batch}, measured {check.measured_rps:.3g} ({check.error:+.0%})",
                )
            )
    return Verdict(tuple(refusals), tuple(checks), batch)


def model_entry(
    fitted: Fit,
    *,
    model: str,
    accelerator: str,
    acc_count: int,
    batch: int,
    at_tokens: int,
    kv_cache_tokens: int | None,
) -> ModelPerfEntry:
    """The model-data.json entry of an accepted fit (validated like any data file)."""
    p = fitted.params
    doc: dict[str, Any] = {
        "name": model,
        "acc": accelerator,
        "accCount": acc_count,
        "maxBatchSize": batch,
        "atTokens": at_tokens,
    }
    if fitted.schema == "decode-only":
        doc["decodeParms"] = {"alpha": p["alpha"], "beta": p["beta"]}
    elif fitted.schema == "prefill-decode":
        doc["decodeParms"] = {"alpha": p["alpha"], "beta": p["beta"]}
        doc["prefillParms"] = {"gamma": p["gamma"], "delta": p["delta"]}
    else:
        doc[str(_DATA_KEYS[fitted.schema])] = dict(p)
    if kv_cache_tokens:
        doc["kvCacheTokens"] = kv_cache_tokens
    return ModelPerfEntry.model_validate(doc)
