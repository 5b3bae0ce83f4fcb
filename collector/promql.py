"""The PromQL of one cycle: a fixed set of named templates, aggregated per Deployment.

Called by :mod:`collector.core`, which sends every query of :func:`build_queries` once per cycle,
whatever the number of Deployments (30 queries for 1 or 1,000 servers; 15 when the controller's
online calibration is off, which alone reads the other 15). Each query aggregates
``by (namespace, deployment)`` (or ``by (namespace, pod)`` with ``metrics_grouping=pod``) and
returns only additive quantities (rates, sums, counts, gauges), so pods of one Deployment can be
added up in Python and means are formed there (``sum / count``). Calibration's per-pod queries
(``per_pod``) group by the pod too: their answer has one series per pod, which the collector both
adds up and keeps apart, so online calibration can take a sick pod out of its Deployment's window.

Each pod counts once. Before the sum, the copies of each series are merged ``by`` the grouping
labels and :data:`SERIES_IDENTITY` (the pod, its scrape address, and the labels vLLM itself splits
a metric by): an HA pair of Prometheus servers behind one query endpoint, a federated copy or two
jobs scraping the same pods differ only in labels outside that list (``job``, ``replica``,
``prometheus``, ``cluster``...), so their copies collapse, while two pods, two engines of one pod
or two ``finished_reason`` series stay apart. E.g. pod ``a`` scraped by jobs ``x`` and ``y`` at 2
req/s and pod ``b`` by job ``x`` at 1 req/s: ``sum by (...) (rate(...))`` says 5 req/s, the
deduplicated query 3 req/s. Counter rates merge by ``max``: a copy that missed part of the window
(a replica that restarted) reads low, never high, and the copies of a counter agree to within a
request or two at the window's edges. Gauges and their derivative merge by ``avg``: each copy
samples a fluctuating queue at its own instants, and the larger of two such samples reads high.
``reporting_pods`` counts the pods with a sample now and a sample a rate window ago, the pods whose
rates cover the whole window, so the collector can compare it with the pods that are Ready
(:mod:`collector.coverage`): a pod dropped from the scrape leaves the count at its next scrape, and
one back from an outage (a restart) rejoins it once its rates cover a window again.

The token-length means (``prompt_tokens`` and ``generation_tokens`` over ``token_completions``)
use a window of their own, ``token_window_s`` (10 minutes by default), longer than the rates'
``rate_window_s`` (4 minutes): request sizes are a property of the workload and drift slowly,
while a few minutes' mean of a few hundred requests is noisy, and the batch size is sized on it
(a batch change is a rollout, so hysteresis keeps a batch chosen on a noisy mean).

The spread of those lengths comes from vLLM's per-request histograms ``vllm:request_prompt_tokens``
and ``vllm:request_generation_tokens`` (buckets 1, 2, 5, 10, 20, 50, ... tokens): ``prompt_buckets``
and ``generation_buckets`` return each bucket's rate ``by`` the grouping labels and ``le``, with
the same per-pod merge, so the buckets of a Deployment's pods add up (vLLM's bucket edges depend
only on ``max_model_len``, the same in every pod of a Deployment). Still one query each, whatever
the fleet; the answer has one series per bucket. :func:`collector.load.length_cv2` turns a
Deployment's buckets and its mean length into the squared coefficient of variation.

A metric renamed between vLLM versions is read per pod: ``rate(new[w]) or rate(old[w])`` takes
the new name's series of a pod that has it and the old name's otherwise (``or`` keeps a right-hand
series only when no left-hand one has the same labels, and ``rate`` drops the name), so during a
rolling upgrade each pod counts once, whichever version it runs, and a vLLM exposing both names
counts once too. ITL is the case today: ``vllm:inter_token_latency_seconds`` (new) and
``vllm:time_per_output_token_seconds`` (old).

Label values are escaped (:func:`escape_label_value`, :func:`regex_alternatives`) although the
settings already restrict namespaces to DNS labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Combine = Literal["sum", "max"]
Window = Literal["rate", "tokens"]


@dataclass(frozen=True)
class QuerySpec:
    """A named template. ``{sel}``: the series selector, ``{by}``: grouping labels, ``{one}``: the
    grouping labels and :data:`SERIES_IDENTITY`, ``{pod}``: the grouping labels and
    :data:`POD_IDENTITY`, ``{w}``: window.

    ``combine`` says how two series of one Deployment (pods) merge; ``signed`` allows negative
    values (a derivative), everything else below zero is garbage. ``window``: ``rate`` (the
    collector's ``rate_window_s``) or ``tokens`` (``token_window_s``, for the token-length means).
    """

    name: str
    template: str
    unit: str
    combine: Combine = "sum"
    signed: bool = False
    window: Window = "rate"
    label: str = ""
    """A label whose values per Deployment the answer carries (kept beside the reading)."""
    per_bucket: bool = False
    """The answer has one series per histogram bucket (its ``le`` label), kept apart per Deployment."""
    per_pod: bool = False
    """The answer has one series per pod (grouped ``by`` :data:`POD_IDENTITY` too), kept apart per
    Deployment besides their sum (online calibration leaves a sick pod out)."""
    calibration: bool = False
    """Read only by online calibration (:mod:`collector.measured`): not sent when it is off."""


SERIES_IDENTITY = ("pod", "instance", "engine", "model_name", "finished_reason")
"""Labels that tell one pod's series from another's: the pod (or, without a pod label, its scrape
address), and the labels vLLM splits a metric by within a pod. Any other label tells copies of
one series apart and is deduplicated away."""

POD_IDENTITY = ("pod", "instance")
"""Labels that tell one pod from another, for counting the pods that report."""


def _dedup(inner: str, combine: Combine = "sum", copies: Literal["max", "avg"] = "max") -> str:
    """``combine by ({by}) (copies by ({one}) (inner))``: the copies of each series merged into
    one, then per Deployment."""
    return f"{combine} by ({{by}}) ({copies} by ({{one}}) ({inner}))"


def _per_pod(inner: str, copies: Literal["max", "avg"] = "max") -> str:
    """:func:`_dedup` kept per pod: ``sum by ({pod}) (copies by ({one}) (inner))``."""
    return f"sum by ({{pod}}) ({copies} by ({{one}}) ({inner}))"


def _bucket_rates(metric: str) -> str:
    """Each bucket's rate per Deployment: :func:`_dedup` with ``le`` kept in both groupings."""
    return f"sum by ({{by}}, le) (max by ({{one}}, le) (rate({metric}_bucket{{sel}}[{{w}}])))"


def _rate(metric: str, old_name: str = "") -> str:
    inner = f"rate({metric}{{sel}}[{{w}}])"
    if old_name:
        inner = f"{inner} or rate({old_name}{{sel}}[{{w}}])"
    return _dedup(inner)


QUERIES: tuple[QuerySpec, ...] = (
    QuerySpec("completions", _rate("vllm:request_success_total"), "requests/s"),
    QuerySpec(
        "queue_growth",
        _dedup("deriv(vllm:num_requests_waiting{sel}[{w}])", copies="avg"),
        "requests/s",
        signed=True,
    ),
    QuerySpec("prompt_tokens", _rate("vllm:prompt_tokens_total"), "tokens/s", window="tokens"),
    QuerySpec("generation_tokens", _rate("vllm:generation_tokens_total"), "tokens/s", window="tokens"),
    QuerySpec("token_completions", _rate("vllm:request_success_total"), "requests/s", window="tokens"),
    QuerySpec(
        "prompt_buckets",
        _bucket_rates("vllm:request_prompt_tokens"),
        "requests/s at or below le",
        window="tokens",
        per_bucket=True,
    ),
    QuerySpec(
        "generation_buckets",
        _bucket_rates("vllm:request_generation_tokens"),
        "requests/s at or below le",
        window="tokens",
        per_bucket=True,
    ),
    QuerySpec("ttft_sum", _rate("vllm:time_to_first_token_seconds_sum"), "seconds/s"),
    QuerySpec("ttft_count", _rate("vllm:time_to_first_token_seconds_count"), "observations/s"),
    QuerySpec(
        "itl_sum",
        _rate("vllm:inter_token_latency_seconds_sum", "vllm:time_per_output_token_seconds_sum"),
        "seconds/s",
    ),
    QuerySpec(
        "itl_count",
        _rate("vllm:inter_token_latency_seconds_count", "vllm:time_per_output_token_seconds_count"),
        "observations/s",
    ),
    QuerySpec("running", _dedup("vllm:num_requests_running{sel}", copies="avg"), "requests"),
    QuerySpec("waiting", _dedup("vllm:num_requests_waiting{sel}", copies="avg"), "requests"),
    QuerySpec(
        "last_sample",
        _dedup("timestamp(vllm:num_requests_running{sel})", "max"),
        "unix seconds",
        combine="max",
    ),
    # online calibration (contract.calibration.MeasuredWindow): the running gauge over the window
    # per pod (its mean and variance), the KV cache's usage over the window per pod and its size
    # (the labels of vllm:cache_config_info: the tokens the running requests hold, their context),
    # each pod's completions and inter-token gaps, preemptions and counter resets
    QuerySpec(
        "running_avg",
        _per_pod("avg_over_time(vllm:num_requests_running{sel}[{w}])", copies="avg"),
        "requests",
        per_pod=True,
        calibration=True,
    ),
    QuerySpec(
        "running_var",
        _per_pod("stddev_over_time(vllm:num_requests_running{sel}[{w}]) ^ 2", copies="avg"),
        "requests^2",
        per_pod=True,
        calibration=True,
    ),
    QuerySpec(
        "kv_usage_avg",
        _per_pod(
            "avg_over_time(vllm:kv_cache_usage_perc{sel}[{w}]) "
            "or avg_over_time(vllm:gpu_cache_usage_perc{sel}[{w}])",
            copies="avg",
        ),
        "share of the blocks",
        per_pod=True,
        calibration=True,
    ),
    QuerySpec(
        "pod_completions",
        _per_pod("rate(vllm:request_success_total{sel}[{w}])"),
        "requests/s",
        per_pod=True,
        calibration=True,
    ),
    QuerySpec(
        "pod_itl_sum",
        _per_pod(
            "rate(vllm:inter_token_latency_seconds_sum{sel}[{w}]) "
            "or rate(vllm:time_per_output_token_seconds_sum{sel}[{w}])"
        ),
        "seconds/s",
        per_pod=True,
        calibration=True,
    ),
    QuerySpec(
        "pod_itl_count",
        _per_pod(
            "rate(vllm:inter_token_latency_seconds_count{sel}[{w}]) "
            "or rate(vllm:time_per_output_token_seconds_count{sel}[{w}])"
        ),
        "observations/s",
        per_pod=True,
        calibration=True,
    ),
    QuerySpec(
        "kv_blocks",
        "count by ({by}, num_gpu_blocks) (vllm:cache_config_info{sel})",
        "series",
        label="num_gpu_blocks",
        calibration=True,
    ),
    QuerySpec(
        "kv_block_size",
        "count by ({by}, block_size) (vllm:cache_config_info{sel})",
        "series",
        label="block_size",
        calibration=True,
    ),
    # per finished request (recorded at the finish, so they match the completions even while the
    # load rises, unlike the token counters, which count prompts at admission)
    QuerySpec(
        "finished_prompt_tokens", _rate("vllm:request_prompt_tokens_sum"), "tokens/s", calibration=True
    ),
    QuerySpec(
        "finished_output_tokens", _rate("vllm:request_generation_tokens_sum"), "tokens/s", calibration=True
    ),
    QuerySpec(
        "finished_requests", _rate("vllm:request_generation_tokens_count"), "requests/s", calibration=True
    ),
    QuerySpec(
        "served_models",
        "count by ({by}, model_name) (vllm:num_requests_running{sel})",
        "series",
        label="model_name",
        calibration=True,
    ),
    QuerySpec(
        "window_pods",
        "count by ({by}) (max by ({pod}) (max_over_time(vllm:num_requests_running{sel}[{w}])))",
        "pods",
        calibration=True,
    ),
    QuerySpec(
        "preemptions", _dedup("increase(vllm:num_preemptions_total{sel}[{w}])"), "requests", calibration=True
    ),
    QuerySpec(
        "counter_resets", _dedup("resets(vllm:request_success_total{sel}[{w}])"), "resets", calibration=True
    ),
    QuerySpec(
        "reporting_pods",
        "count by ({by}) (max by ({pod}) (vllm:num_requests_running{sel}) "
        "and max by ({pod}) (vllm:num_requests_running{sel} offset {w}))",
        "pods",
    ),
)
QUERY_BY_NAME = {q.name: q for q in QUERIES}

_REGEX_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def escape_label_value(value: str) -> str:
    """Escape a value for a double-quoted PromQL string (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def regex_alternatives(values: tuple[str, ...]) -> str:
    """``a|b`` with RE2 metacharacters escaped, ready for :func:`escape_label_value`."""
    return "|".join(_REGEX_META.sub(r"\\\1", v) for v in values)


def series_selector(namespaces: tuple[str, ...]) -> str:
    """``{namespace="a"}``, ``{namespace=~"a|b"}``, or ``""`` for all namespaces."""
    if not namespaces:
        return ""
    if len(namespaces) == 1:
        return f'{{namespace="{escape_label_value(namespaces[0])}"}}'
    return f'{{namespace=~"{escape_label_value(regex_alternatives(namespaces))}"}}'


def grouping_labels(grouping: Literal["deployment", "pod"]) -> tuple[str, str]:
    return ("namespace", grouping)


def _with(grouping: tuple[str, ...], extra: tuple[str, ...]) -> str:
    """The grouping labels then ``extra``, each once (``pod`` is in both with pod grouping)."""
    return ", ".join(dict.fromkeys((*grouping, *extra)))


def window_of(spec: QuerySpec, window_s: int, token_window_s: int | None) -> int:
    """The window of ``spec``'s range selector, seconds (``token_window_s`` None: ``window_s``)."""
    if spec.window == "tokens" and token_window_s is not None:
        return int(token_window_s)
    return int(window_s)


def build_queries(
    namespaces: tuple[str, ...],
    window_s: int,
    grouping: Literal["deployment", "pod"],
    token_window_s: int | None = None,
    *,
    calibration: bool = True,
) -> dict[str, str]:
    """Query name -> PromQL text, for every template in :data:`QUERIES` (without calibration's
    when ``calibration`` is false)."""
    sel = series_selector(namespaces)
    labels = grouping_labels(grouping)
    by, one, pod = ", ".join(labels), _with(labels, SERIES_IDENTITY), _with(labels, POD_IDENTITY)
    return {
        q.name: q.template.format(
            sel=sel, by=by, one=one, pod=pod, w=f"{window_of(q, window_s, token_window_s)}s"
        )
        for q in QUERIES
        if calibration or not q.calibration
    }
