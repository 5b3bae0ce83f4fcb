"""Prometheus, emulated: scrapes of the engine's exact vLLM counters and the collector's PromQL answered.

Used by :mod:`load_emulator.whatif.driver`: it calls :meth:`EmulatedPrometheus.scrape` every
``scrape_interval_s`` of virtual time (after ``engine.advance_to``), and the collector's
``MetricsPort.query`` is answered from the stored samples, the way Prometheus would:

- each Deployment's counters are summed over its pods; a pod's increase since the previous scrape
  is added to a per-Deployment running total, so removed pods do not make the counter go back
  (what ``rate()`` does with counter resets, per series, before ``sum by``);
- each query's window is its own (:func:`collector.promql.window_of`: the token means' is longer);
- ``rate(x[w])`` = (last - first) / (t_last - t_first) over the samples in ``(now - w, now]``
  (no extrapolation to the window's edges; the ratios the collector forms are unaffected);
- ``deriv(g[w])`` = least-squares slope of the samples; gauges and ``timestamp()`` use the newest
  sample; the per-pod queries answer one series per pod (label ``pod``) over its own samples in
  the window: ``avg_over_time`` / ``stddev_over_time`` of its running gauge, ``avg_over_time`` of
  its KV-cache usage, and its completions' and inter-token gaps' rates;
  ``vllm:cache_config_info``'s label queries answer one series per distinct value in the newest
  sample; ``resets()`` is 0 (a pod's counters only grow);
  ``window_pods`` counts the pods of every sample in the window.
  A Deployment with fewer than two samples in the window has no rate series at all;
- the length histograms' bucket queries (``prompt_buckets``, ``generation_buckets``) answer one
  series per ``le`` edge, each that bucket's cumulative counter rated as above;
- ``reporting_pods`` = the pods in the newest scrape that were in the scrape a rate window before
  too (every replica the engine runs is scraped); each pod is one series here, so the collector's
  deduplication by pod and its per-pod choice of the new or old ITL name give the same sums as a
  real Prometheus with duplicated or renamed series would.

Only the collector's own queries with ``metrics_grouping=deployment``
(:func:`collector.promql.build_queries`) are understood; any other PromQL
raises ``ValueError`` (the collector then marks that query failed).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collector.promql import QUERY_BY_NAME, build_queries, window_of
from load_emulator.engine import FleetEngine

COUNTERS = (
    "completions",
    "prompt_tokens",
    "generation_tokens",
    "ttft_sum",
    "ttft_count",
    "itl_sum",
    "itl_count",
    "preemptions",
    "finished_prompt_tokens",
    "finished_output_tokens",
    "finished_requests",
)
ALIASES = {"token_completions": "completions"}
GAUGES = ("running", "waiting")
POD_COUNTERS = {"pod_completions": "completions", "pod_itl_sum": "itl_sum", "pod_itl_count": "itl_count"}
"""Per-pod counter query -> the pod's cumulative counter it rates."""
PER_POD = {"running_avg": "running", "running_var": "running", "kv_usage_avg": "kv_usage"} | {
    query: query for query in POD_COUNTERS
}
"""Per-pod query -> the pod's own value it reads (a gauge, or the counter stored under its name)."""
CACHE_CONFIG_LABELS = {"kv_blocks": ("num_gpu_blocks", 1), "kv_block_size": ("block_size", 0)}
"""Label query -> (its label, the index in a sample's ``cache_configs`` pair)."""
HISTOGRAMS = {"prompt_buckets": "request_prompt_tokens", "generation_buckets": "request_generation_tokens"}
"""Bucket query -> the replica's histogram; each edge's cumulative count is a counter ``query@le``."""


@dataclass(frozen=True)
class Sample:
    t_s: float
    values: dict[str, float]
    pods: frozenset[str] = frozenset()
    by_pod: dict[str, dict[str, float]] = field(default_factory=dict)
    """Each pod's own values: its gauges (``running``, ``kv_usage``) and cumulative counters."""
    cache_configs: frozenset[tuple[int, int]] = frozenset()
    """The ``(block_size, num_gpu_blocks)`` of the pods' KV caches (``vllm:cache_config_info``)."""


class EmulatedPrometheus:
    """The collector's ``MetricsPort``; ``clock`` is the evaluation time of a query (virtual seconds)."""

    def __init__(
        self,
        engine: FleetEngine,
        clock: Callable[[], float],
        rate_window_s: float,
        keep_s: float = 3600.0,
        token_window_s: float | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.rate_window_s = rate_window_s
        self.token_window_s = rate_window_s if token_window_s is None else token_window_s
        self.keep_s = max(keep_s, rate_window_s, self.token_window_s)
        self.series: dict[tuple[str, str], deque[Sample]] = defaultdict(deque)
        self._totals: dict[tuple[str, str], dict[str, float]] = defaultdict(
            lambda: dict.fromkeys(COUNTERS, 0.0)
        )
        self._last_pod: dict[str, dict[str, float]] = {}
        self._queries: dict[str, str] = {}
        self._models: dict[tuple[str, str], str] = {}

    def scrape(self, t_s: float) -> None:
        """Take one sample of every Deployment's pods as of ``t_s`` (the engine is already there)."""
        self.engine.flush()
        gauges: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: dict.fromkeys(GAUGES, 0.0))
        seen: set[str] = set()
        keys: set[tuple[str, str]] = set()
        pods: dict[tuple[str, str], set[str]] = defaultdict(set)
        by_pod: dict[tuple[str, str], dict[str, dict[str, float]]] = defaultdict(dict)
        cache_configs: dict[tuple[str, str], set[tuple[int, int]]] = defaultdict(set)
        for state, replica in self.engine.replicas():
            key = (state.namespace, state.name)
            keys.add(key)
            self._models[key] = state.model
            m = replica.metrics
            now = {
                "completions": sum(m.success_by_reason.values()),
                "prompt_tokens": m.prompt_tokens,
                "generation_tokens": m.generation_tokens,
                "ttft_sum": m.ttft.sum,
                "ttft_count": m.ttft.count,
                "itl_sum": m.itl.sum,
                "itl_count": m.itl.count,
                "preemptions": m.preemptions,
                "finished_prompt_tokens": m.request_prompt_tokens.sum,
                "finished_output_tokens": m.request_generation_tokens.sum,
                "finished_requests": m.request_generation_tokens.count,
            }
            for query, attribute in HISTOGRAMS.items():
                for le, cumulative in getattr(m, attribute).cumulative():
                    now[f"{query}@{le}"] = cumulative
            before = self._last_pod.get(replica.pod, {})
            totals = self._totals[key]
            for name, value in now.items():
                delta = value - before.get(name, 0.0)
                totals[name] = totals.get(name, 0.0) + (delta if delta >= 0 else value)
            self._last_pod[replica.pod] = now
            seen.add(replica.pod)
            gauges[key]["running"] += replica.running
            gauges[key]["waiting"] += len(replica.waiting)
            pods[key].add(replica.pod)
            own = {"running": float(replica.running), "kv_usage": replica.kv_usage()}
            by_pod[key][replica.pod] = own | {query: now[counter] for query, counter in POD_COUNTERS.items()}
            cache_configs[key].add((replica.block_tokens, replica.num_gpu_blocks))
        self._last_pod = {pod: v for pod, v in self._last_pod.items() if pod in seen}
        for key in keys:
            samples = self.series[key]
            samples.append(
                Sample(
                    t_s,
                    {**self._totals[key], **gauges[key]},
                    frozenset(pods[key]),
                    by_pod[key],
                    frozenset(cache_configs[key]),
                )
            )
            while samples and samples[0].t_s < t_s - self.keep_s:
                samples.popleft()

    # --- MetricsPort -----------------------------------------------------------------------------
    async def query(self, promql: str) -> list[dict[str, Any]]:
        name = self._name_of(promql)
        window_s = window_of(QUERY_BY_NAME[name], int(self.rate_window_s), int(self.token_window_s))
        now_s = self.clock()
        out: list[dict[str, Any]] = []
        for (namespace, deployment), samples in self.series.items():
            window = [s for s in samples if now_s - window_s < s.t_s <= now_s]
            labels = {"namespace": namespace, "deployment": deployment}
            if name in HISTOGRAMS:
                for le, rate in _bucket_rates(name, window):
                    out.append({"metric": labels | {"le": le}, "value": [now_s, repr(rate)]})
                continue
            if name in CACHE_CONFIG_LABELS:
                label, at = CACHE_CONFIG_LABELS[name]
                for size in sorted({c[at] for c in window[-1].cache_configs} if window else ()):
                    out.append({"metric": labels | {label: str(size)}, "value": [now_s, "1"]})
                continue
            if name in PER_POD:
                for pod, pod_value in _per_pod(name, window):
                    out.append({"metric": labels | {"pod": pod}, "value": [now_s, repr(pod_value)]})
                continue
            if name == "reporting_pods":
                before = [s for s in samples if s.t_s <= now_s - window_s]
                value = _reporting(window, before[-1] if before else None)
            else:
                value = self._evaluate(name, window)
            if value is not None:
                if name == "served_models":
                    labels["model_name"] = self._models.get((namespace, deployment), "")
                out.append({"metric": labels, "value": [now_s, repr(value)]})
        return out

    def _name_of(self, promql: str) -> str:
        if not self._queries:
            texts = build_queries((), int(self.rate_window_s), "deployment", int(self.token_window_s))
            for name, text in texts.items():
                self._queries[text] = name
        found = self._queries.get(_strip_selector(promql))
        if found is None:
            raise ValueError(f"emulated Prometheus does not understand {promql!r}")
        return found

    @staticmethod
    def _evaluate(name: str, window: list[Sample]) -> float | None:
        if not window:
            return None
        field = ALIASES.get(name, name)
        if name == "last_sample":
            return window[-1].t_s
        if name == "served_models":
            return 1.0  # one series per Deployment here, labelled with its model
        if name == "window_pods":
            return float(len(frozenset().union(*(s.pods for s in window))))
        if name == "counter_resets":
            return 0.0  # each pod's counters only grow; a replaced pod is a new series
        if field in GAUGES and name != "queue_growth":
            return window[-1].values[field]
        if len(window) < 2:
            return None
        ts = [s.t_s for s in window]
        if name == "queue_growth":
            ys = [s.values["waiting"] for s in window]
            mean_t, mean_y = sum(ts) / len(ts), sum(ys) / len(ys)
            den = sum((t - mean_t) ** 2 for t in ts)
            return sum((t - mean_t) * (y - mean_y) for t, y in zip(ts, ys, strict=True)) / den
        grown = window[-1].values[field] - window[0].values[field]
        return grown if name == "preemptions" else grown / (ts[-1] - ts[0])  # increase() or rate()


def _per_pod(name: str, window: list[Sample]) -> list[tuple[str, float]]:
    """``(pod, value)`` of per-pod query ``name`` over each pod's samples in the window: the mean
    (``avg_over_time``) or variance (``stddev_over_time^2``) of a gauge, or a counter's rate (none
    with fewer than two samples of the pod)."""
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    source = PER_POD[name]
    for sample in window:
        for pod, values in sample.by_pod.items():
            series[pod].append((sample.t_s, values[source]))
    out = []
    for pod, points in sorted(series.items()):
        ys = [y for _, y in points]
        if name in POD_COUNTERS:
            if len(points) >= 2:
                out.append((pod, (ys[-1] - ys[0]) / (points[-1][0] - points[0][0])))
            continue
        mean = sum(ys) / len(ys)
        out.append((pod, sum((y - mean) ** 2 for y in ys) / len(ys) if name == "running_var" else mean))
    return out


def _bucket_rates(name: str, window: list[Sample]) -> list[tuple[str, float]]:
    """``(le, rate)`` of every bucket of histogram query ``name`` over the window (none with fewer
    than two samples, or before the Deployment's first observation of it)."""
    if len(window) < 2:
        return []
    first, last = window[0].values, window[-1].values
    span_s = window[-1].t_s - window[0].t_s
    prefix = f"{name}@"
    return [
        (key.removeprefix(prefix), (value - first.get(key, 0.0)) / span_s)
        for key, value in last.items()
        if key.startswith(prefix)
    ]


def _reporting(window: list[Sample], before: Sample | None) -> float | None:
    """Pods in the newest scrape that were scraped a window before too (None: no such scrape)."""
    both = window[-1].pods & before.pods if window and before is not None else frozenset()
    return float(len(both)) if both else None  # count() of nothing is no series


def _strip_selector(promql: str) -> str:
    """The query with its namespace selector removed, so it matches the all-namespaces template."""
    start = promql.find("{namespace=")
    while start >= 0:
        end = promql.index("}", start)
        promql = promql[:start] + promql[end + 1 :]
        start = promql.find("{namespace=")
    return promql
