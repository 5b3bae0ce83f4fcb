"""Static catalog data: accelerators, capacity, per-(model, accelerator) performance, optimizer spec.

JSON shapes (inferno lineage, all generations):

- accelerator-data: ``{"accelerators": [{name, type, multiplicity, memSize, memBW, power, cost}]}``;
  ``name`` is the unit one replica slot uses (``4xA100``), ``type`` the card type capacity is counted
  in (``A100``), ``multiplicity`` cards of that type per unit, ``cost`` per unit per hour.
- capacity-data: ``{"count": [{type, count}]}``, cards available per type.
- model-data: ``{"models": [{name, acc, accCount, maxBatchSize, atTokens, kvCacheTokens,
  kvBlockTokens, <perf>}]}`` where perf is ``alpha, beta`` | ``decodeParms{alpha, beta},
  prefillParms{gamma, delta}`` | ``perfParms{alpha, beta, gamma}`` | ``stepParms{fixed, perDecode,
  perPrefillToken, perContextToken}`` (this project's step-cost schema, :class:`StepPerf`).
  ``kvCacheTokens`` (this project's) is the KV cache of one replica in tokens, as vLLM reports it
  at start-up ("GPU KV cache size: N tokens"); without it no KV limit is modelled (the profile's
  ``maxBatchSize`` requests of ``atTokens`` tokens say only that the cache holds at least that).
  ``kvBlockTokens`` is vLLM's ``--block-size`` (16 by default on GPUs).
- optimizer-data: ``{"optimizer": {unlimited, heterogeneous, milpSolver, useCplex,
  delayedBestEffort, saturationPolicy}}``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from contract.data.base import MAX_BATCH_SIZE, InfernoModel
from contract.data.perf import DecodeOnlyPerf, IterationPerf, PerfParams, PrefillDecodePerf, StepPerf

FiniteNonNeg = Field(ge=0, allow_inf_nan=False)
DEFAULT_KV_BLOCK_TOKENS = 16
"""vLLM's default ``--block-size`` on CUDA and ROCm GPUs (``CacheConfig.block_size``)."""


class PowerSpec(InfernoModel):
    idle: float = Field(default=0, ge=0, allow_inf_nan=False)
    full: float = Field(default=0, ge=0, allow_inf_nan=False)
    mid_power: float = Field(default=0, ge=0, alias="midPower", allow_inf_nan=False)
    mid_util: float = Field(default=0, ge=0, le=1, alias="midUtil", allow_inf_nan=False)


class AcceleratorSpec(InfernoModel):
    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    multiplicity: int = Field(default=1, ge=1)
    mem_size_gb: float = Field(default=0, ge=0, alias="memSize", allow_inf_nan=False)
    mem_bw_gbps: float = Field(default=0, ge=0, alias="memBW", allow_inf_nan=False)
    power: PowerSpec = PowerSpec()
    cost: float = Field(ge=0, allow_inf_nan=False, description="cost per unit per hour")


class AcceleratorData(InfernoModel):
    accelerators: list[AcceleratorSpec]

    @model_validator(mode="after")
    def _unique_names(self) -> AcceleratorData:
        _reject_duplicates([a.name for a in self.accelerators], "accelerator")
        return self


class CapacityEntry(InfernoModel):
    type: str = Field(min_length=1)
    count: int = Field(ge=0)


class CapacityData(InfernoModel):
    count: list[CapacityEntry] = Field(default_factory=list)

    def cards_by_type(self) -> dict[str, int]:
        """Cards per type; duplicate entries of one type add up."""
        out: dict[str, int] = {}
        for entry in self.count:
            out[entry.type] = out.get(entry.type, 0) + entry.count
        return out


class DecodeParms(InfernoModel):
    alpha: float = Field(ge=0, allow_inf_nan=False)
    beta: float = Field(ge=0, allow_inf_nan=False)


class PrefillParms(InfernoModel):
    gamma: float = Field(ge=0, allow_inf_nan=False)
    delta: float = Field(ge=0, allow_inf_nan=False)


class PerfParms(InfernoModel):
    alpha: float = Field(ge=0, allow_inf_nan=False)
    beta: float = Field(ge=0, allow_inf_nan=False)
    gamma: float = Field(ge=0, allow_inf_nan=False)


class StepParms(InfernoModel):
    """:class:`contract.data.perf.StepPerf` in the data file (ms)."""

    fixed: float = Field(ge=0, allow_inf_nan=False)
    per_decode: float = Field(ge=0, alias="perDecode", allow_inf_nan=False)
    per_prefill_token: float = Field(ge=0, alias="perPrefillToken", allow_inf_nan=False)
    per_context_token: float = Field(ge=0, alias="perContextToken", allow_inf_nan=False)


class ModelPerfEntry(InfernoModel):
    """Performance of one model on one accelerator unit (one entry of model-data)."""

    name: str = Field(min_length=1)
    acc: str = Field(min_length=1)
    acc_count: int = Field(default=1, alias="accCount")
    max_batch_size: int = Field(ge=1, le=MAX_BATCH_SIZE, alias="maxBatchSize")
    at_tokens: int = Field(default=0, ge=0, alias="atTokens")
    alpha: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    beta: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    decode_parms: DecodeParms | None = Field(default=None, alias="decodeParms")
    prefill_parms: PrefillParms | None = Field(default=None, alias="prefillParms")
    perf_parms: PerfParms | None = Field(default=None, alias="perfParms")
    step_parms: StepParms | None = Field(default=None, alias="stepParms")
    kv_cache_tokens: int | None = Field(default=None, alias="kvCacheTokens")
    kv_block_tokens: int = Field(default=DEFAULT_KV_BLOCK_TOKENS, alias="kvBlockTokens")
    startup_s: float | None = Field(
        default=None,
        ge=0,
        alias="startupS",
        allow_inf_nan=False,
        exclude_if=lambda v: v is None,
        description="seconds from a pod's creation to serving on this accelerator (image pull, "
        "weights, CUDA graphs); None: unknown, a server's measured start-up time stands in",
    )

    @field_validator("acc_count")
    @classmethod
    def _units_at_least_one(cls, value: int) -> int:
        # inferno: accCount <= 0 means one unit per replica.
        return max(value, 1)

    @model_validator(mode="after")
    def _one_perf_schema(self) -> ModelPerfEntry:
        self.perf  # noqa: B018 - raises with a clear message when no schema is complete
        return self

    @model_validator(mode="after")
    def _kv_cache_holds_a_request(self) -> ModelPerfEntry:
        where = f"model {self.name!r} on {self.acc!r}"
        if self.kv_block_tokens < 1:
            raise ValueError(f"{where}: kvBlockTokens must be >= 1, got {self.kv_block_tokens}")
        kv = self.kv_cache_tokens
        if kv is None:
            return self
        if kv < self.kv_block_tokens:
            raise ValueError(
                f"{where}: kvCacheTokens {kv} is less than one KV block ({self.kv_block_tokens} tokens)"
            )
        if kv < self.at_tokens:
            raise ValueError(
                f"{where}: kvCacheTokens {kv} cannot hold one request of atTokens {self.at_tokens} tokens"
            )
        return self

    @property
    def kv_capacity_tokens(self) -> int | None:
        """KV cache of one replica in tokens: ``kvCacheTokens``, else None (unknown: no limit is
        modelled). ``maxBatchSize * atTokens`` is only a lower bound (the profile held that many)
        and already bounds the default batch (:mod:`optimizer.model.batch`); taken as the cache it
        would make the emulator preempt where the real card has room."""
        return self.kv_cache_tokens

    @property
    def kv_capacity_blocks(self) -> int | None:
        """:attr:`kv_capacity_tokens` in whole KV blocks (vLLM allocates blocks, not tokens)."""
        tokens = self.kv_capacity_tokens
        return None if tokens is None else tokens // self.kv_block_tokens

    @property
    def perf(self) -> PerfParams:
        """The typed perf parameters; newest schema wins when a file carries several."""
        if self.step_parms is not None:
            q = self.step_parms
            return StepPerf(
                fixed_ms=q.fixed,
                per_decode_ms=q.per_decode,
                per_prefill_token_ms=q.per_prefill_token,
                per_context_token_ms=q.per_context_token,
            )
        if self.perf_parms is not None:
            p = self.perf_parms
            return IterationPerf(alpha_ms=p.alpha, beta_ms=p.beta, gamma_ms=p.gamma)
        if self.decode_parms is not None:
            d = self.decode_parms
            if self.prefill_parms is None:
                return DecodeOnlyPerf(alpha_ms=d.alpha, beta_ms=d.beta)
            f = self.prefill_parms
            return PrefillDecodePerf(alpha_ms=d.alpha, beta_ms=d.beta, gamma_ms=f.gamma, delta_ms=f.delta)
        if self.alpha is not None and self.beta is not None:
            return DecodeOnlyPerf(alpha_ms=self.alpha, beta_ms=self.beta)
        raise ValueError(
            f"model {self.name!r} on {self.acc!r} has no complete performance data: give "
            "alpha+beta, decodeParms(+prefillParms), perfParms{alpha,beta,gamma} or "
            "stepParms{fixed,perDecode,perPrefillToken,perContextToken}"
        )


class ModelData(InfernoModel):
    models: list[ModelPerfEntry]

    @model_validator(mode="after")
    def _unique_pairs(self) -> ModelData:
        _reject_duplicates([f"{m.name} on {m.acc}" for m in self.models], "model entry")
        return self


class SaturationPolicy(StrEnum):
    NONE = "None"
    PRIORITY_EXHAUSTIVE = "PriorityExhaustive"
    PRIORITY_ROUND_ROBIN = "PriorityRoundRobin"
    ROUND_ROBIN = "RoundRobin"


class OptimizerSpec(InfernoModel):
    """Optimizer options. ``solver`` and ``switching_threshold`` extend the inferno format."""

    unlimited: bool = False
    heterogeneous: bool = False
    milp_solver: bool = Field(default=False, alias="milpSolver")
    use_cplex: bool = Field(default=False, alias="useCplex")
    delayed_best_effort: bool = Field(default=False, alias="delayedBestEffort")
    saturation_policy: SaturationPolicy = Field(default=SaturationPolicy.NONE, alias="saturationPolicy")
    solver: str | None = Field(
        default=None, description="solver by name ('greedy' or 'milp'); default from milpSolver"
    )
    switching_threshold: float = Field(
        default=0.10,
        ge=0,
        le=1,
        alias="switchingThreshold",
        allow_inf_nan=False,
        description="a server changes GPU type only when that saves more than this share of its cost",
    )

    @field_validator("saturation_policy", mode="before")
    @classmethod
    def _policy_any_case(cls, value: object) -> object:
        if isinstance(value, str):
            for policy in SaturationPolicy:
                if policy.value.lower() == value.strip().lower():
                    return policy
            if value.strip() == "":
                return SaturationPolicy.NONE
        return value

    @property
    def solver_name(self) -> str:
        return self.solver or ("milp" if self.milp_solver else "greedy")


class OptimizerData(InfernoModel):
    optimizer: OptimizerSpec = OptimizerSpec()


def _reject_duplicates(keys: list[str], what: str) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"duplicate {what} {key!r}")
        seen.add(key)
