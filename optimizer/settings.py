"""Optimizer settings: how candidates are sized and how the solver runs.

Pure data, no environment access: :mod:`optimizer.service` inherits this model and serves every
field as ``INFERNO_OPTIMIZER_<FIELD>``. Every field has a default, says its unit, and how to turn
its feature off where it can be.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OptimizerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    solver: str | None = Field(
        default=None, description="greedy or milp; empty (None): as optimizer-data's milpSolver says"
    )
    time_limit_s: float = Field(default=10.0, gt=0, le=3600, description="MILP wall-clock limit, seconds")
    seed: int = Field(default=0, description="solver random seed, so the same input gives the same plan")
    batch_policy: Literal["default", "optimal"] = Field(
        default="default",
        description="default: floor(maxBatchSize*atTokens/out); optimal: smallest batch reaching "
        "99% of the best SLO-bound throughput",
    )
    batch_tolerance: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="on its current accelerator a server keeps its running batch size when it is "
        "within this share (0-1) of the computed one, since a batch change rolls every pod; 0: off",
    )
    max_queue_factor: int = Field(
        default=10,
        ge=0,
        description="queue room per replica as a multiple of the batch size (K = N + f*N), applied at "
        "or above saturation only; below it the model's queue is unbounded, as vLLM's is; 0: no "
        "queue room at saturation",
    )
    max_num_batched_tokens: int = Field(
        default=2048,
        ge=0,
        description="tokens per engine step (vLLM --max-num-batched-tokens) the model assumes for "
        "the step and iteration schemas (chunked prefill): decodes take one each, prompts are cut "
        "into chunks within the rest; 2048 is vLLM's default below 70 GB and on A100s (8192 on "
        "H100-class cards); 0: no budget",
    )
    throughput_rate_cap: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="share (0-1] of the saturation rate a throughput (slo-tps) target may use; 1: all of it",
    )
    max_batch_cap: int = Field(
        default=256,
        ge=0,
        description="largest batch (vLLM --max-num-seqs), requests, the optimizer chooses from model "
        "data: vLLM's default is 256, and short outputs give batches in the thousands without it; "
        "a server's own maxBatchSize is not capped; 0: no cap",
    )
    load_headroom: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="replicas are sized for the measured demand x (1 + this), a share (0-1): room for "
        "the bursts of a Poisson load within a period and for growth before the next cycle; 0: "
        "sized for the measured demand",
    )
    type_change_hold_s: float = Field(
        default=1800.0,
        ge=0,
        description="after a server changes accelerator, seconds during which it is offered only "
        "that accelerator (each change is a rollout), unless it cannot serve the load there at all "
        "within its max replicas and the cards left to it (then types that serve it all, or, when "
        "none does, serve more than 1 + type_change_margin times as much, are offered too); 0: no "
        "hold-down",
    )
    type_change_margin: float = Field(
        default=0.25,
        ge=0,
        lt=1,
        description="type-change hysteresis, a share (0-1): another accelerator is offered only when "
        "it is no dearer than the current one at the measured demand x (1 - this) and x (1 + this) "
        "as well (moves that pay off only at the measured point flip with the load's noise); 0: off",
    )
    rollout_budget_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="rollout budget: at most this share (0-1) of the running servers (or "
        "rollout_budget_min, whichever is larger) roll their pods at a time, counting those whose "
        "rollout has not finished; other GPU-type and batch changes wait for a later cycle; 1: no "
        "budget",
    )
    rollout_budget_min: int = Field(
        default=10,
        ge=0,
        description="rollout budget: servers that may always roll their pods at a time, however few "
        "run; with rollout_budget_share 1 the budget is off",
    )
