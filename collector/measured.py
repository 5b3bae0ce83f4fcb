"""A Deployment's vLLM metrics over the rate window, as online calibration reads them.

Called by :mod:`collector.assemble` once per Deployment; the result is ``ManagedServer.measured``
(:class:`contract.calibration.MeasuredWindow`), which the controller's calibration screens and
learns from (:mod:`controller.calibrate`). Pure: readings in, a window or None out.

From the queries of :mod:`collector.promql`: completions per second (``completions``); the mean
prompt and output lengths of the requests finished in the window (the sums of vLLM's
``request_prompt_tokens`` and ``request_generation_tokens`` histograms over their count: recorded
at the finish, they match the completions, while the token counters count a prompt at its
admission and read high while the load rises: 601 instead of ~512 tokens in one window of the
calibration benchmark's loop); the mean ITL and TTFT (histogram sums over counts); the running
gauge's mean and variance over the window per pod (``running_avg``, ``running_var``, summed over
the pods, divided by ``reporting_pods``); the pods with a sample anywhere in the window
(``window_pods``: more than ``reporting_pods`` when pods came or went); preemptions and counter
resets in the window; the newest sample's time; the ``model_name`` labels of the running
gauge's series (``served_models``: two names, or another name than before, reject the window);
and the tokens the running requests of a pod hold in the KV cache (``context_tokens_per_pod``,
:func:`context_from_kv`), from the usage gauge's mean over the window (``kv_usage_avg``, summed
over the pods) and the cache's size, the ``num_gpu_blocks`` and ``block_size`` labels of
``vllm:cache_config_info`` (``kv_blocks``, ``kv_block_size``). That one is optional: without a
usable usage reading, or with no single size for the Deployment's pods (a vLLM that does not
export it, pods of two configurations), it reads 0, not measured, and the lengths stand in.

Each pod's part (``pods``, :class:`contract.calibration.MeasuredPod`) comes from the per-pod
series of the same queries (``running_avg``, ``running_var``, ``kv_usage_avg``) and of three of
calibration's own (``pod_completions``, ``pod_itl_sum``, ``pod_itl_count``): its completions, mean
gap and the weight of that mean (its gaps per second), its batch and its KV cache's tokens. They
are all or nothing: when a reporting pod lacks a sound completion, gap or batch reading, or the
pods read are not the reporting ones, ``pods`` is empty (the sums cannot be split), and a sick pod
can only be left out with its whole Deployment.

A window is None when a quantity it needs has no usable reading (a query failed, no series, or
NaN/Inf/negative, which :mod:`collector.metrics` already rejected): no window is no evidence,
which never moves a learned value. A missing ``preemptions`` or ``counter_resets`` series (the
query answered, the counter has not been created yet) reads 0.

Example: 2 pods reporting, ``itl_sum`` 0.062 s/s over ``itl_count`` 2.0 gaps/s -> ``itl_ms`` 31.0;
``running_avg`` 28.4 (the two pods' means summed) -> ``running_per_pod`` 14.2.
"""

from __future__ import annotations

import math

from collector.metrics import Key, MetricsSnapshot
from contract.calibration import MeasuredPod, MeasuredWindow

MS_PER_S = 1000.0
_REQUIRED = (
    "completions",
    "finished_prompt_tokens",
    "finished_output_tokens",
    "finished_requests",
    "ttft_sum",
    "ttft_count",
    "itl_sum",
    "itl_count",
    "running_avg",
    "last_sample",
    "reporting_pods",
    "window_pods",
)
_ZERO_WHEN_ABSENT = ("running_var", "preemptions", "counter_resets")


def context_from_kv(usage: float, num_gpu_blocks: float, block_tokens: float, running: float) -> float:
    """Tokens ``running`` requests hold in a KV cache of ``num_gpu_blocks`` blocks of
    ``block_tokens`` tokens whose usage (vLLM's ``kv_cache_usage_perc``, 0..1) is ``usage``.

    vLLM's usage is the blocks in use over ``num_gpu_blocks - 1`` (its block pool keeps one null
    block), and each request's last block is on average half filled, so the tokens are
    ``usage * (num_gpu_blocks - 1) * block_tokens - running * (block_tokens - 1) / 2``, at least 0.
    Example: usage 0.25 of 4,097 blocks of 16 tokens with 20 running -> 16,384 - 150 = 16,234.
    """
    held = usage * (num_gpu_blocks - 1.0) * block_tokens - running * (block_tokens - 1.0) / 2.0
    return max(held, 0.0)


def _cache_size(snapshot: MetricsSnapshot, key: Key) -> tuple[float, float] | None:
    """``(num_gpu_blocks, block_size)`` of the Deployment's pods (None: not one sound size)."""
    sizes = (snapshot.labels.get(name, {}).get(key, frozenset()) for name in ("kv_blocks", "kv_block_size"))
    blocks, block_tokens = (_only_number(values) for values in sizes)
    if blocks is None or block_tokens is None or blocks < 2 or block_tokens < 1:
        return None
    return blocks, block_tokens


def _context_tokens(usage: float | None, size: tuple[float, float] | None, running: float) -> float:
    """The tokens in one pod's KV cache of ``size`` at mean usage ``usage`` with ``running``
    requests (0: not measured; see the module)."""
    if usage is None or size is None:
        return 0.0
    return context_from_kv(usage, *size, running)


def _pods(
    snapshot: MetricsSnapshot, key: Key, reporting: int, size: tuple[float, float] | None
) -> list[MeasuredPod]:
    """Every reporting pod's part of the window, or none (a pod without a sound reading of its
    completions, gaps or batch, or a pod count that is not ``reporting``: its sums cannot be split)."""

    def value(name: str, pod: str) -> float | None:
        reading = snapshot.per_pod(name, key).get(pod)
        return None if reading is None else reading.value

    out: list[MeasuredPod] = []
    for pod in sorted(snapshot.per_pod("pod_itl_count", key)):
        completions, itl_sum, itl_count, running = (
            value(name, pod) for name in ("pod_completions", "pod_itl_sum", "pod_itl_count", "running_avg")
        )
        if completions is None or itl_sum is None or itl_count is None or running is None or itl_count <= 0:
            return []
        out.append(
            MeasuredPod(
                pod=pod,
                completion_rps=completions,
                itl_count_rps=itl_count,
                itl_ms=MS_PER_S * itl_sum / itl_count,
                running=running,
                running_var=value("running_var", pod) or 0.0,
                context_tokens=_context_tokens(value("kv_usage_avg", pod), size, running),
            )
        )
    return out if len(out) == reporting else []


def _mean_usage(snapshot: MetricsSnapshot, key: Key, pods: float) -> float | None:
    """The KV cache's mean usage of one pod (the Deployment's sum over its pods; None: unusable)."""
    usage = snapshot.get("kv_usage_avg", key)
    return None if usage is None or usage.value is None else usage.value / pods


def _only_number(values: frozenset[str]) -> float | None:
    """The one value of a label as a finite number (None: none, several, or not a number)."""
    if len(values) != 1:
        return None
    try:
        number = float(next(iter(values)))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def measured_window(snapshot: MetricsSnapshot | None, key: Key, window_s: float) -> MeasuredWindow | None:
    """The window of Deployment ``key`` (None: Prometheus not configured or a quantity unusable)."""
    if snapshot is None:
        return None
    values: dict[str, float] = {}
    for name in _REQUIRED:
        reading = snapshot.get(name, key)
        if reading is None or reading.value is None:
            return None
        values[name] = reading.value
    for name in _ZERO_WHEN_ABSENT:
        if name in snapshot.failed:
            return None
        absent = snapshot.get(name, key)
        if absent is None:
            values[name] = 0.0
        elif absent.value is None:
            return None
        else:
            values[name] = absent.value
    pods = values["reporting_pods"]
    if pods < 1 or values["finished_requests"] <= 0 or values["itl_count"] <= 0 or values["ttft_count"] <= 0:
        return None
    running_per_pod = values["running_avg"] / pods
    size = _cache_size(snapshot, key)
    return MeasuredWindow(
        window_s=window_s,
        served_models=sorted(snapshot.labels.get("served_models", {}).get(key, ())),
        last_sample_s=values["last_sample"],
        reporting_pods=round(pods),
        window_pods=round(values["window_pods"]),
        completion_rps=values["completions"],
        in_tokens=values["finished_prompt_tokens"] / values["finished_requests"],
        out_tokens=values["finished_output_tokens"] / values["finished_requests"],
        itl_ms=MS_PER_S * values["itl_sum"] / values["itl_count"],
        ttft_ms=MS_PER_S * values["ttft_sum"] / values["ttft_count"],
        running_per_pod=running_per_pod,
        running_var_per_pod=values["running_var"] / pods,
        context_tokens_per_pod=_context_tokens(_mean_usage(snapshot, key, pods), size, running_per_pod),
        pods=_pods(snapshot, key, round(pods), size),
        preemptions=values["preemptions"],
        counter_resets=values["counter_resets"],
    )
