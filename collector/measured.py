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
resets in the window; the newest sample's time; and the ``model_name`` labels of the running
gauge's series (``served_models``: two names, or another name than before, reject the window).

A window is None when a quantity it needs has no usable reading (a query failed, no series, or
NaN/Inf/negative, which :mod:`collector.metrics` already rejected): no window is no evidence,
which never moves a learned value. A missing ``preemptions`` or ``counter_resets`` series (the
query answered, the counter has not been created yet) reads 0.

Example: 2 pods reporting, ``itl_sum`` 0.062 s/s over ``itl_count`` 2.0 gaps/s -> ``itl_ms`` 31.0;
``running_avg`` 28.4 (the two pods' means summed) -> ``running_per_pod`` 14.2.
"""

from __future__ import annotations

from collector.metrics import Key, MetricsSnapshot
from contract.calibration import MeasuredWindow

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
        running_per_pod=values["running_avg"] / pods,
        running_var_per_pod=values["running_var"] / pods,
        preemptions=values["preemptions"],
        counter_resets=values["counter_resets"],
    )
