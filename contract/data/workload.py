"""Service classes (targets) and servers (load and current allocation) in inferno's JSON shapes.

Service classes come in two forms and both load into :class:`ServiceClassData`:

- flat (inferno v0.1): ``{"serviceClasses": [{name, model, priority, slo-itl, slo-ttw, slo-tps}]}``,
  one entry per (class, model); entries of one class are merged.
- nested (v0.6+): ``{"serviceClasses": [{name, priority, modelTargets: [{model, slo-itl, slo-ttft,
  slo-tps}]}]}``.

Priority is 1..100 with 1 the highest; a missing or out-of-range priority means 100. A target of
0 means "not considered". ``slo-ttft-percentile`` (this project's extension) makes ``slo-ttft`` a
percentile target (e.g. 95 for p95) instead of a mean; ``slo-ttft-minute-percentile`` (also ours)
makes it a target on minutes (e.g. 99.5: the mean TTFT of 99.5% of minutes).

Servers: ``{"servers": [{name, class, model, keepAccelerator, minNumReplicas, maxBatchSize,
currentAlloc: {accelerator, numReplicas, maxBatch, cost, load: {arrivalRate, avgLength |
avgInTokens, avgOutTokens}}, acceleratorAgeS, floorReplicas, rollingOut}]}`` (the last three extend
the inferno format: type-change hold-down, stabilisation floor and rollout budget, filled by the
collector and controller).
``arrivalRate`` is requests per minute. A server with no class is in class ``Free``.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator, model_validator

from contract.data.base import MAX_BATCH_SIZE, InfernoModel

DEFAULT_CLASS = "Free"
LOWEST_PRIORITY = 100


def _normalise_priority(value: object) -> int:
    """1..100, 1 highest; anything missing, non-integral or out of range becomes 100."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return LOWEST_PRIORITY
    if math.isnan(value) or not 1 <= value <= LOWEST_PRIORITY or int(value) != value:  # NaN, range
        return LOWEST_PRIORITY
    return int(value)


class ModelTarget(InfernoModel):
    """Targets of one model within a class. Times in ms, throughput in tokens/s; 0 = not set."""

    model: str = Field(min_length=1)
    slo_itl_ms: float = Field(default=0, ge=0, alias="slo-itl", allow_inf_nan=False)
    slo_ttft_ms: float = Field(default=0, ge=0, alias="slo-ttft", allow_inf_nan=False)
    slo_ttw_ms: float = Field(default=0, ge=0, alias="slo-ttw", allow_inf_nan=False)
    slo_tps: float = Field(default=0, ge=0, alias="slo-tps", allow_inf_nan=False)
    ttft_percentile: float = Field(
        default=0,
        ge=0,
        lt=100,
        alias="slo-ttft-percentile",
        allow_inf_nan=False,
        description="0: slo-ttft bounds the mean TTFT; e.g. 95: it bounds the 95th percentile",
    )
    ttft_minute_percentile: float = Field(
        default=0,
        ge=0,
        lt=100,
        alias="slo-ttft-minute-percentile",
        allow_inf_nan=False,
        exclude_if=lambda v: v == 0,
        description="0: slo-ttft bounds the mean TTFT; e.g. 99.5: it bounds the mean TTFT of 99.5% of "
        "minutes (the server is sized for that percentile of its per-minute arrival rate, "
        "optimizer.model.minute)",
    )

    @model_validator(mode="after")
    def _one_percentile(self) -> ModelTarget:
        if self.ttft_minute_percentile > 0 and self.ttft_percentile > 0:
            raise ValueError(
                f"model {self.model!r}: slo-ttft-percentile {self.ttft_percentile:g} and "
                f"slo-ttft-minute-percentile {self.ttft_minute_percentile:g} both read slo-ttft; set one"
            )
        if self.ttft_minute_percentile > 0 and self.slo_ttft_ms <= 0:
            raise ValueError(
                f"model {self.model!r}: slo-ttft-minute-percentile {self.ttft_minute_percentile:g} "
                "needs an slo-ttft to bound"
            )
        return self


class ForecastSpec(InfernoModel):
    """A forecast of a server's demand over its horizon (the controller's, :mod:`controller.forecast`)."""

    arrival_rate_rpm: float = Field(ge=0, alias="arrivalRate", allow_inf_nan=False)
    """The forecast's upper quantile of the per-minute mean rate over the horizon, requests/min."""
    quantile: float = Field(gt=0, lt=1, allow_inf_nan=False)
    horizon_s: float = Field(ge=0, alias="horizonS", allow_inf_nan=False)
    """How far ahead it looks: the start-up time + one control period."""


class ServiceClassSpec(InfernoModel):
    name: str = Field(min_length=1)
    priority: int = LOWEST_PRIORITY
    model_targets: list[ModelTarget] = Field(default_factory=list, alias="modelTargets")
    forecast_quantile: float = Field(
        default=0,
        ge=0,
        lt=1,
        alias="forecastQuantile",
        allow_inf_nan=False,
        exclude_if=lambda v: v == 0,
        description="0: size on the measured load (reactive); e.g. 0.9: size every server of the "
        "class for max(measured, the forecast's 0.9 quantile over start-up + one period)",
    )

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: object) -> int:
        return _normalise_priority(value)

    def target_for(self, model: str) -> ModelTarget | None:
        return next((t for t in self.model_targets if t.model == model), None)


class ServiceClassData(InfernoModel):
    service_classes: list[ServiceClassSpec] = Field(alias="serviceClasses")

    @model_validator(mode="before")
    @classmethod
    def _merge_flat_form(cls, data: Any) -> Any:
        """Turn flat v0.1 entries (one per class+model) into the nested form, merged by name."""
        if not isinstance(data, dict):
            return data
        key = next((k for k in data if isinstance(k, str) and k.lower() == "serviceclasses"), None)
        entries = data.get(key) if key else None
        if not isinstance(entries, list):
            return data
        merged: dict[str, dict[str, Any]] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                return data  # let field validation report the bad entry
            lower = {str(k).lower(): k for k in entry}
            name = entry.get(lower.get("name", "name"))
            if not isinstance(name, str):
                return data
            target_key = lower.get("modeltargets")
            targets = entry.get(target_key, []) if target_key else []
            if not isinstance(targets, list):
                return data  # let field validation name the bad modelTargets
            targets = list(targets)
            slot = merged.setdefault(name, {"name": name, "modelTargets": []})
            if "model" in lower:
                target = {k: v for k, v in entry.items() if str(k).lower() not in ("name", "priority")}
                targets.append(target)
            else:  # nested: class-level settings (forecastQuantile) go with the class
                skip = ("name", "priority", "modeltargets")
                slot.update({k: v for k, v in entry.items() if str(k).lower() not in skip})
            if "priority" in lower:
                slot.setdefault("priority", entry[lower["priority"]])
            slot["modelTargets"].extend(targets)
        return {"serviceClasses": list(merged.values())}

    @model_validator(mode="after")
    def _unique_targets(self) -> ServiceClassData:
        for spec in self.service_classes:
            models = [t.model for t in spec.model_targets]
            duplicated = {m for m in models if models.count(m) > 1}
            if duplicated:
                raise ValueError(f"class {spec.name!r} lists model {sorted(duplicated)[0]!r} twice")
        return self

    def by_name(self) -> dict[str, ServiceClassSpec]:
        return {c.name: c for c in self.service_classes}


class LoadSpec(InfernoModel):
    """Offered load: requests per minute and mean tokens per request; optionally the spread of
    the lengths (left out of dumps when not given)."""

    arrival_rate_rpm: float = Field(default=0, ge=0, alias="arrivalRate", allow_inf_nan=False)
    avg_length_tokens: float = Field(default=0, ge=0, alias="avgLength", allow_inf_nan=False)
    avg_in_tokens: float = Field(default=0, ge=0, alias="avgInTokens", allow_inf_nan=False)
    avg_out_tokens: float = Field(default=0, ge=0, alias="avgOutTokens", allow_inf_nan=False)
    in_tokens_cv2: float | None = Field(
        default=None, ge=0, alias="inTokensCv2", allow_inf_nan=False, exclude_if=lambda v: v is None
    )
    """Squared coefficient of variation (variance / mean^2) of the input lengths, from vLLM's
    ``vllm:request_prompt_tokens`` histogram (its buckets give the second moment); None: unknown,
    the model assumes 1 (an exponential-like spread)."""
    out_tokens_cv2: float | None = Field(
        default=None, ge=0, alias="outTokensCv2", allow_inf_nan=False, exclude_if=lambda v: v is None
    )
    """The same for the output lengths (``vllm:request_generation_tokens``); None: 1."""
    in_out_correlation: float | None = Field(
        default=None,
        ge=-1,
        le=1,
        alias="inOutCorrelation",
        allow_inf_nan=False,
        exclude_if=lambda v: v is None,
    )
    """Correlation of a request's input and output lengths; None: 0 (independent). The length
    histograms cannot give it; the KV usage gauge can (the mean KV per running request is
    ``(E[in*out] + E[out^2]/2) / E[out]``)."""

    @property
    def in_tokens(self) -> float:
        return self.avg_in_tokens

    @property
    def out_tokens(self) -> float:
        """Output tokens per request; the oldest files give only ``avgLength`` (all decode)."""
        return self.avg_out_tokens if self.avg_out_tokens > 0 else self.avg_length_tokens


class AllocationSpec(InfernoModel):
    """A server's allocation as inferno writes it (current, or chosen by the optimizer)."""

    accelerator: str = ""
    num_replicas: int = Field(default=0, ge=0, alias="numReplicas")
    max_batch: int = Field(default=0, ge=0, le=MAX_BATCH_SIZE, alias="maxBatch")
    cost: float = Field(default=0, ge=0, allow_inf_nan=False)
    itl_average_ms: float = Field(default=0, ge=0, alias="itlAverage", allow_inf_nan=False)
    ttft_average_ms: float = Field(default=0, ge=0, alias="ttftAverage", allow_inf_nan=False)
    load: LoadSpec = LoadSpec()


class ServerSpec(InfernoModel):
    """One (class, model) inference server. ``maxNumReplicas`` extends the inferno format."""

    name: str = Field(min_length=1)
    service_class: str = Field(default=DEFAULT_CLASS, alias="class")
    model: str = Field(min_length=1)
    keep_accelerator: bool = Field(default=False, alias="keepAccelerator")
    min_num_replicas: int = Field(default=0, ge=0, alias="minNumReplicas")
    max_num_replicas: int = Field(default=0, ge=0, alias="maxNumReplicas", description="0: no limit")
    max_batch_size: int = Field(
        default=0, ge=0, le=MAX_BATCH_SIZE, alias="maxBatchSize", description="0: from model data"
    )
    current_alloc: AllocationSpec = Field(default_factory=AllocationSpec, alias="currentAlloc")
    accelerator_age_s: float | None = Field(
        default=None,
        ge=0,
        alias="acceleratorAgeS",
        allow_inf_nan=False,
        description="seconds since the Deployment last changed accelerator (the actuator's "
        "annotation); None: unknown, no type-change hold-down",
    )
    floor_replicas: int | None = Field(
        default=None,
        ge=0,
        alias="floorReplicas",
        description="replicas the scale-down stabilisation window would hold this cycle on the "
        "current accelerator; kept on cards no other server needs; None: not given",
    )
    rolling_out: bool = Field(
        default=False,
        alias="rollingOut",
        description="the Deployment's rollout has not finished, as kubectl rollout status reads "
        "it (pods of an older template left, or new ones not available yet): counted against the "
        "optimizer's rollout budget",
    )

    starting_replicas: int = Field(
        default=0,
        ge=0,
        alias="startingReplicas",
        exclude_if=lambda v: v == 0,
        description="replicas created but not Ready yet (loading the model): coming capacity, "
        "counted in numReplicas",
    )
    startup_s: float | None = Field(
        default=None,
        ge=0,
        alias="startupS",
        allow_inf_nan=False,
        exclude_if=lambda v: v is None,
        description="measured start-up time of this server's pods (creation to Ready), seconds; "
        "used when model-data has no startupS for the accelerator; None: unknown",
    )
    forecast: ForecastSpec | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="the controller's demand forecast, for a class with forecastQuantile > 0; "
        "None: sized on the measured load",
    )

    @field_validator("service_class", mode="before")
    @classmethod
    def _default_class(cls, value: object) -> object:
        return DEFAULT_CLASS if value in (None, "") else value

    @model_validator(mode="after")
    def _bounds(self) -> ServerSpec:
        if self.max_num_replicas and self.max_num_replicas < self.min_num_replicas:
            raise ValueError(
                f"server {self.name!r}: maxNumReplicas {self.max_num_replicas} "
                f"< minNumReplicas {self.min_num_replicas}"
            )
        return self

    @property
    def load(self) -> LoadSpec:
        return self.current_alloc.load


class ServerData(InfernoModel):
    servers: list[ServerSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ServerData:
        seen: set[str] = set()
        for server in self.servers:
            if server.name in seen:
                raise ValueError(f"duplicate server {server.name!r}")
            seen.add(server.name)
        return self
