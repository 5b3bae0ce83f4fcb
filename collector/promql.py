"""The PromQL of one cycle: a fixed set of named templates, aggregated per Deployment.

Called by :mod:`collector.core`, which sends every query of :func:`build_queries` once per cycle,
whatever the number of Deployments (14 queries for 1 or 1,000 servers). Each query aggregates
``by (namespace, deployment)`` (or ``by (namespace, pod)`` with ``metrics_grouping=pod``) and
returns only additive quantities (rates, sums, counts, gauges), so pods of one Deployment can be
added up in Python and means are formed there (``sum / count``).

The token-length means (``prompt_tokens`` and ``generation_tokens`` over ``token_completions``)
use a window of their own, ``token_window_s`` (10 minutes by default), longer than the rates'
``rate_window_s`` (4 minutes): request sizes are a property of the workload and drift slowly,
while a few minutes' mean of a few hundred requests is noisy, and the batch size is sized on it
(a batch change is a rollout, so hysteresis keeps a batch chosen on a noisy mean).

Alternatives for renamed metrics are separate queries (``itl_*`` and the older ``tpot_*``): the
parser takes the new name per Deployment when it has it, the old one otherwise; a vLLM exposing
both is never counted twice.

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
    """A named template. ``{sel}``: the series selector, ``{by}``: grouping labels, ``{w}``: window.

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


def _rate(metric: str) -> str:
    return f"sum by ({{by}}) (rate({metric}{{sel}}[{{w}}]))"


QUERIES: tuple[QuerySpec, ...] = (
    QuerySpec("completions", _rate("vllm:request_success_total"), "requests/s"),
    QuerySpec(
        "queue_growth",
        "sum by ({by}) (deriv(vllm:num_requests_waiting{sel}[{w}]))",
        "requests/s",
        signed=True,
    ),
    QuerySpec("prompt_tokens", _rate("vllm:prompt_tokens_total"), "tokens/s", window="tokens"),
    QuerySpec("generation_tokens", _rate("vllm:generation_tokens_total"), "tokens/s", window="tokens"),
    QuerySpec("token_completions", _rate("vllm:request_success_total"), "requests/s", window="tokens"),
    QuerySpec("ttft_sum", _rate("vllm:time_to_first_token_seconds_sum"), "seconds/s"),
    QuerySpec("ttft_count", _rate("vllm:time_to_first_token_seconds_count"), "observations/s"),
    QuerySpec("itl_sum", _rate("vllm:inter_token_latency_seconds_sum"), "seconds/s"),
    QuerySpec("itl_count", _rate("vllm:inter_token_latency_seconds_count"), "observations/s"),
    QuerySpec("tpot_sum", _rate("vllm:time_per_output_token_seconds_sum"), "seconds/s"),
    QuerySpec("tpot_count", _rate("vllm:time_per_output_token_seconds_count"), "observations/s"),
    QuerySpec("running", "sum by ({by}) (vllm:num_requests_running{sel})", "requests"),
    QuerySpec("waiting", "sum by ({by}) (vllm:num_requests_waiting{sel})", "requests"),
    QuerySpec(
        "last_sample",
        "max by ({by}) (timestamp(vllm:num_requests_running{sel}))",
        "unix seconds",
        combine="max",
    ),
)
QUERY_BY_NAME = {q.name: q for q in QUERIES}

# New name first: the parser prefers it per Deployment.
ITL_ALTERNATIVES = (("itl_sum", "itl_count"), ("tpot_sum", "tpot_count"))

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
) -> dict[str, str]:
    """Query name -> PromQL text, for every template in :data:`QUERIES`."""
    sel = series_selector(namespaces)
    by = ", ".join(grouping_labels(grouping))
    return {
        q.name: q.template.format(sel=sel, by=by, w=f"{window_of(q, window_s, token_window_s)}s")
        for q in QUERIES
    }
