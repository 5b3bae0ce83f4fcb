"""Online calibration on the wire: a server's measured window, the learned values, their report.

- :class:`MeasuredWindow`: what the collector read from vLLM's metrics for one Deployment over its
  rate window (``ManagedServer.measured``), with each pod's part (:class:`MeasuredPod`); the
  controller turns it into evidence (:mod:`calibration.observation`).
- :class:`LearnedEntry` / :class:`CalibrationData`: what one (model, accelerator) has learned, as
  kept in the dynamic ConfigMap's ``calibration-data.json`` (read back after a restart or a leader
  change). An operator pins an entry (``"pinned": true``: nothing is learned, its factors stay) or
  resets it (``"reset": true``: back to the prior at the next cycle, its evidence forgotten).
- :class:`CalibrationSummary`: one (model, accelerator) in the cycle report (``GET /invoke``):
  prior, learned values, confidence, why, and the effect on sizing.

Example ``calibration-data.json``::

    {"entries": [{"model": "granite_13b", "acc": "A100", "fixedFactor": 1.98, "workFactor": 0.51,
      "identified": "split", "confidence": 0.74, "updatedAt": "2026-12-07T18:01:00Z",
      "servedModel": "ibm/granite-13b", "pinned": false, "reset": false, "evidence": [...]}]}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Identified = Literal["none", "scale", "split"]


class MeasuredPod(BaseModel):
    """One pod's part of a :class:`MeasuredWindow` (the per-pod series of the same metrics)."""

    model_config = ConfigDict(frozen=True)

    pod: str
    completion_rps: float
    itl_count_rps: float = Field(description="inter-token gaps measured per second")
    itl_ms: float
    running: float = Field(description="mean of vllm:num_requests_running over the window")
    running_var: float = 0.0
    context_tokens: float = Field(default=0.0, description="tokens in its KV cache (0: unmeasured)")


class MeasuredWindow(BaseModel):
    """One Deployment's vLLM metrics over the rate window. Rates per second, times in ms. Values
    are as measured (NaN or negative included): the calibration screen rejects bad windows."""

    model_config = ConfigDict(frozen=True)

    window_s: float
    last_sample_s: float = Field(description="unix time of the newest sample")
    served_models: list[str] = Field(default_factory=list, description="model_name labels of the series")
    reporting_pods: int
    window_pods: int = Field(default=0, description="pods with a sample anywhere in the window; 0: unknown")
    completion_rps: float
    in_tokens: float
    out_tokens: float
    itl_ms: float
    ttft_ms: float
    running_per_pod: float = Field(default=0.0, description="mean of vllm:num_requests_running per pod")
    running_var_per_pod: float = Field(default=0.0, description="its variance over the window")
    context_tokens_per_pod: float = Field(
        default=0.0, description="mean tokens one pod's running requests hold in the KV cache (0: unmeasured)"
    )
    preemptions: float = 0.0
    counter_resets: float = 0.0
    pods: list[MeasuredPod] = Field(
        default_factory=list, description="the same window per pod, every reporting pod (empty: unmeasured)"
    )


class EvidenceWindow(BaseModel):
    """One accepted window, per replica (:class:`calibration.fit.Window`)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    end_s: float = Field(alias="endS")
    replica_rps: float = Field(alias="replicaRps")
    in_tokens: float = Field(alias="inTokens")
    out_tokens: float = Field(alias="outTokens")
    itl_ms: float = Field(alias="itlMs")
    ttft_ms: float = Field(alias="ttftMs")
    weight: float
    running: float = 0.0
    running_var: float = Field(default=0.0, alias="runningVar")
    out_cv2: float = Field(default=1.0, alias="outCv2")
    window_s: float = Field(default=0.0, alias="windowS", description="its length; 0: unknown")
    context_tokens: float = Field(
        default=0.0, alias="contextTokens", description="tokens in the KV cache per replica; 0: not measured"
    )


class LearnedEntry(BaseModel):
    """What one (model, accelerator) has learned: the factors on the prior's fixed and work parts."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    model: str = Field(min_length=1)
    acc: str = Field(min_length=1)
    fixed_factor: float = Field(default=1.0, gt=0, allow_inf_nan=False, alias="fixedFactor")
    work_factor: float = Field(default=1.0, gt=0, allow_inf_nan=False, alias="workFactor")
    identified: Identified = "none"
    confidence: float = Field(default=0.0, ge=0, le=1)
    updated_at: str = Field(default="", alias="updatedAt", description="UTC time, RFC 3339")
    served_model: str = Field(default="", alias="servedModel")
    pinned: bool = False
    reset: bool = False
    evidence: list[EvidenceWindow] = Field(default_factory=list)


class CalibrationData(BaseModel):
    """``calibration-data.json`` of the dynamic ConfigMap."""

    model_config = ConfigDict(frozen=True)

    entries: list[LearnedEntry] = Field(default_factory=list)


class LeftOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    code: str = Field(description="why the window is not evidence (calibration.observation.Rejection)")
    text: str


class CalibrationSummary(BaseModel):
    """One (model, accelerator) in the cycle report."""

    model_config = ConfigDict(frozen=True)

    model: str
    acc: str
    prior: dict[str, float] = Field(description="the static data's parameters (ms)")
    learned: dict[str, float] = Field(description="the parameters the optimizer sized with (ms)")
    fixed_factor: float
    work_factor: float
    identified: Identified
    confidence: float
    applied: bool = Field(description="the learned values replaced the prior in this cycle's sizing")
    evidence_windows: int
    accepted: int = Field(description="windows of this cycle taken as evidence")
    left_out: list[LeftOut] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    effect: str = Field(default="", description="what the learned values change in sizing")
