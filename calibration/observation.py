"""One window of what vLLM measured on a source (a pod or a Deployment), and the screen it passes.

Role: the input edge of online calibration. Callers: :mod:`calibration.learner` (every
observation is screened before it becomes evidence) and whoever builds observations from
Prometheus (one per source and cycle, over the collector's rate window).

What an observation holds is what vLLM exports per pod, summed or averaged over the window:
completions (``vllm:request_success_total``), prompt and generation tokens
(``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total``), the inter-token latency
histogram (``vllm:inter_token_latency_seconds``, before vLLM 0.11 ``vllm:time_per_output_token_seconds``),
the TTFT histogram (``vllm:time_to_first_token_seconds``), preemptions
(``vllm:num_preemptions_total``), counter resets in the window (a pod restart), the running
requests' gauge and the tokens they hold in the KV cache (``vllm:kv_cache_usage_perc`` and
``vllm:cache_config_info``), and the ``model_name`` label of the series. A window is *evidence*
only when it passes every check of :func:`screen`; a rejected window never moves a parameter, and
its code says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from enum import StrEnum


class Rejection(StrEnum):
    """Why a window is not evidence."""

    NOT_FINITE = "not_finite"
    """A value is NaN or infinite."""
    NEGATIVE = "negative"
    """A rate, count, length or latency below zero (a counter that went back reads so)."""
    RESTART = "restart"
    """A counter reset in the window (the pod restarted): its rates mix two processes."""
    STALE = "stale"
    """The newest sample is older than the staleness limit: the window describes the past."""
    OTHER_MODEL = "other_model"
    """The source is another (model, accelerator), or its series name another served model."""
    TOO_FEW_REQUESTS = "too_few_requests"
    """Fewer completions than the minimum: the means are noise."""
    PREEMPTIONS = "preemptions"
    """The engine preempted requests: recomputed prompts inflate the inter-token gaps."""
    UNREPORTED = "unreported"
    """Fewer pods report than are Ready, or none: the per-replica rate is unknown."""
    FLEET_CHANGED = "fleet_changed"
    """Pods came or went within the window: its sums mix fleets of different sizes."""
    OUTLIER = "outlier"
    """Its latency per unit of predicted work is far from its peers' (a sick GPU): left out."""


@dataclass(frozen=True, slots=True)
class Observation:
    """One source's window. Rates per second, times in ms, lengths in tokens.

    Example: a Deployment of 2 pods serving llama_13b on A100 over 240 s, 1.5 req/s in all,
    prompts 512 and outputs 256 tokens on average, ITL 31.0 ms, TTFT 120 ms, no preemption.
    """

    source: str
    """Pod or Deployment (``namespace/name``)."""
    model: str
    accelerator: str
    served_models: tuple[str, ...]
    """The distinct ``model_name`` labels of the source's series (one, for a sound source)."""
    end_s: float
    """Evaluation time of the window (unix seconds)."""
    window_s: float
    last_sample_s: float
    """Time of the newest sample of the source (unix seconds)."""
    reporting_pods: int
    ready_pods: int
    completion_rps: float
    """Completions per second of the whole source (all its pods)."""
    in_tokens: float
    out_tokens: float
    itl_ms: float
    ttft_ms: float
    preemptions: float
    """Preemptions in the window (``increase(vllm:num_preemptions_total[w])``)."""
    counter_resets: float
    """Counter resets in the window (``resets(vllm:request_success_total[w])``); > 0: a restart."""
    window_pods: int = 0
    """Pods with a sample anywhere in the window; more than ``reporting_pods``: the fleet changed
    (a pod left or joined within it); 0: not measured."""
    running_per_pod: float = 0.0
    """Mean running requests of one pod over the window (``avg_over_time(vllm:num_requests_running[w])``,
    averaged over the pods); 0: not measured, Little's law stands in (:mod:`.fit`)."""
    running_var_per_pod: float = 0.0
    """Variance of that gauge over the window (``stddev_over_time(...)^2``, averaged over the pods)."""
    out_cv2: float = 1.0
    """Squared coefficient of variation of the output lengths (from the second moment of
    ``vllm:request_generation_tokens``' buckets); 1: geometric, the model's default."""
    context_tokens_per_pod: float = 0.0
    """Mean tokens the running requests of one pod hold in the KV cache over the window
    (:func:`collector.measured.context_from_kv` of ``avg_over_time(vllm:kv_cache_usage_perc[w])`` and
    ``vllm:cache_config_info``'s ``num_gpu_blocks`` and ``block_size``); 0: not measured."""

    @property
    def requests(self) -> float:
        """Completions in the window."""
        return self.completion_rps * self.window_s

    @property
    def replica_rps(self) -> float:
        """Completions per second of one pod (the pods share the load evenly on average)."""
        return self.completion_rps / self.reporting_pods


@dataclass(frozen=True, slots=True)
class ScreenLimits:
    """The screen's thresholds; each 0 turns its check off where that makes sense."""

    min_requests: float = 50.0
    """Fewest completions a window needs (a 4-minute window at 0.2 req/s holds ~50)."""
    staleness_s: float = 120.0
    """A source whose newest sample is older than this is stale (the collector's own limit)."""
    max_preemptions: float = 0.0
    """Most preemptions a window may hold (0: any preemption rejects it)."""


def screen(
    obs: Observation, model: str, accelerator: str, served_model: str, limits: ScreenLimits
) -> tuple[Rejection, str] | None:
    """None when ``obs`` is evidence for ``(model, accelerator)``, else the rejection and why.
    ``served_model`` is the ``model_name`` the key's sources reported before ("" when none yet).

    Example: a window of 30 completions with ``min_requests`` 50 -> ``(TOO_FEW_REQUESTS, "30
    completions in 240 s (< 50)")``.
    """
    numbers = {f.name: getattr(obs, f.name) for f in fields(obs) if isinstance(getattr(obs, f.name), float)}
    bad = sorted(name for name, value in numbers.items() if not math.isfinite(value))
    if bad:
        return Rejection.NOT_FINITE, f"not finite: {', '.join(bad)}"
    negative = sorted(name for name, value in numbers.items() if value < 0)
    if negative:
        return Rejection.NEGATIVE, f"negative: {', '.join(negative)}"
    if obs.counter_resets > 0:
        return Rejection.RESTART, f"{obs.counter_resets:g} counter reset(s) in the window: a pod restarted"
    age_s = obs.end_s - obs.last_sample_s
    if limits.staleness_s > 0 and age_s > limits.staleness_s:
        return Rejection.STALE, f"newest sample {age_s:.0f} s old (> {limits.staleness_s:g} s)"
    if (obs.model, obs.accelerator) != (model, accelerator):
        return (
            Rejection.OTHER_MODEL,
            f"source serves {obs.model} on {obs.accelerator}, not {model} on {accelerator}",
        )
    names = set(obs.served_models)
    if len(names) > 1 or (served_model and names and names != {served_model}):
        expected = f" (expected {served_model!r})" if served_model else ""
        return Rejection.OTHER_MODEL, f"series name served model(s) {sorted(names)}{expected}"
    if obs.reporting_pods < 1 or obs.reporting_pods < obs.ready_pods:
        return Rejection.UNREPORTED, f"{obs.reporting_pods} of {obs.ready_pods} Ready pod(s) report"
    if obs.window_pods > obs.reporting_pods:
        return Rejection.FLEET_CHANGED, (
            f"{obs.window_pods} pod(s) in the window, {obs.reporting_pods} through all of it: "
            "pods came or went"
        )
    if obs.requests < limits.min_requests or obs.out_tokens < 2 or obs.itl_ms <= 0:
        return Rejection.TOO_FEW_REQUESTS, (
            f"{obs.requests:.0f} completions in {obs.window_s:g} s (< {limits.min_requests:g}), "
            f"or no inter-token gap measured"
        )
    if obs.preemptions > limits.max_preemptions:
        return Rejection.PREEMPTIONS, f"{obs.preemptions:g} preemption(s) in the window"
    return None
