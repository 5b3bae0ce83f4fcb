"""vLLM-format Prometheus metrics of the emulated fleet, through prometheus-client.

A :class:`FleetCollector` reads the engine at scrape time and yields metric families; each
emulator gets its own ``CollectorRegistry`` (never the global one). Names, types and buckets are
vLLM's; every sample has vLLM's own labels ``model_name`` (the inferno model name) and
``engine="0"``. Exported per pod:

- counters ``vllm:request_success_total{finished_reason=stop|length|abort}``,
  ``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total``, ``vllm:num_preemptions_total``
  (V1's name; V0 exported the same series as ``vllm:num_preemptions_total`` too);
- gauges ``vllm:num_requests_running``, ``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc``
  (and the older ``vllm:gpu_cache_usage_perc``): the replica's own requests and KV blocks in use
  over the blocks that can hold requests, as vLLM's ``BlockPool.get_usage``;
  ``vllm:cache_config_info`` (value 1; labels ``block_size`` and ``num_gpu_blocks``, the cache's
  size, as vLLM's ``log_metrics_info("cache_config", ...)``: ``engine`` but no ``model_name``);
- histograms ``vllm:time_to_first_token_seconds``, ``vllm:inter_token_latency_seconds`` (and the
  older name ``vllm:time_per_output_token_seconds``, same observations),
  ``vllm:e2e_request_latency_seconds``, ``vllm:request_queue_time_seconds``,
  ``vllm:request_prompt_tokens``, ``vllm:request_generation_tokens``.

Scrape layout (served by :mod:`load_emulator.http`): a single pod's endpoint has only vLLM's labels,
as a real pod; Prometheus adds ``namespace``, ``pod`` and ``deployment`` as target labels (the
``/targets`` service-discovery document carries them). Fleet and Deployment endpoints put those
three labels in the text themselves (scrape them with ``honor_labels: true``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from load_emulator.cluster import DeploymentState
from load_emulator.engine import FleetEngine
from load_emulator.histograms import BucketCounts
from load_emulator.replica import ReplicaSim

TARGET_LABELS = ("namespace", "deployment", "pod")
HISTOGRAMS = (
    ("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", "ttft"),
    ("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", "itl"),
    ("vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds.", "itl"),
    ("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", "e2e"),
    (
        "vllm:request_queue_time_seconds",
        "Histogram of time spent in WAITING phase for request.",
        "queue_time",
    ),
    ("vllm:request_prompt_tokens", "Number of prefill tokens processed.", "request_prompt_tokens"),
    ("vllm:request_generation_tokens", "Number of generation tokens processed.", "request_generation_tokens"),
)


@dataclass(frozen=True)
class Selector:
    """Which pods an endpoint shows; ``None`` matches all."""

    namespace: str | None = None
    deployment: str | None = None
    pod: str | None = None

    def matches(self, state: DeploymentState, replica: ReplicaSim) -> bool:
        return (
            self.namespace in (None, state.namespace)
            and self.deployment in (None, state.name)
            and self.pod in (None, replica.pod)
        )


class FleetCollector:
    def __init__(
        self, engine: FleetEngine, selector: Selector | None = None, *, target_labels: bool = True
    ) -> None:
        self.engine = engine
        self.selector = selector or Selector()
        self.target_labels = target_labels

    def collect(self) -> Iterator[Metric]:
        self.engine.flush()
        names = ["model_name", "engine", *(TARGET_LABELS if self.target_labels else ())]
        success = CounterMetricFamily(
            "vllm:request_success",
            "Count of successfully processed requests.",
            labels=[*names, "finished_reason"],
        )
        prompt = CounterMetricFamily(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", labels=names
        )
        generation = CounterMetricFamily(
            "vllm:generation_tokens", "Number of generation tokens processed.", labels=names
        )
        preemptions = CounterMetricFamily(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine.", labels=names
        )
        running = GaugeMetricFamily(
            "vllm:num_requests_running", "Number of requests in model execution batches.", labels=names
        )
        waiting = GaugeMetricFamily(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels=names
        )
        kv = GaugeMetricFamily(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels=names
        )
        kv_old = GaugeMetricFamily(
            "vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", labels=names
        )
        cache_config = GaugeMetricFamily(
            "vllm:cache_config_info",
            "Information of the LLMEngine CacheConfig",
            labels=["engine", *(TARGET_LABELS if self.target_labels else ()), "block_size", "num_gpu_blocks"],
        )
        histograms = [
            (HistogramMetricFamily(name, doc, labels=names), attribute) for name, doc, attribute in HISTOGRAMS
        ]
        for state, replica in self.engine.replicas():
            if not self.selector.matches(state, replica):
                continue
            values = [
                state.model,
                "0",
                *((state.namespace, state.name, replica.pod) if self.target_labels else ()),
            ]
            m = replica.metrics
            for reason, count in m.success_by_reason.items():
                success.add_metric([*values, reason], count)
            prompt.add_metric(values, m.prompt_tokens)
            generation.add_metric(values, m.generation_tokens)
            preemptions.add_metric(values, m.preemptions)
            running.add_metric(values, replica.running)
            waiting.add_metric(values, len(replica.waiting))
            usage = replica.kv_usage()
            kv.add_metric(values, usage)
            kv_old.add_metric(values, usage)
            cache_config.add_metric(
                [*values[1:], str(replica.block_tokens), str(replica.num_gpu_blocks)], 1.0
            )
            for family, attribute in histograms:
                counts: BucketCounts = getattr(m, attribute)
                family.add_metric(values, buckets=counts.cumulative(), sum_value=counts.sum)
        yield from (success, prompt, generation, preemptions, running, waiting, kv, kv_old, cache_config)
        yield from (family for family, _ in histograms)


GATEWAY_REQUESTS = "inferno_gateway_requests"
"""Counter (``_total`` on the wire) of the requests that reached a server's front door, whether a
replica took them or none was ready: an ingress/gateway counter, the demand signal of a server at
zero replicas (collector/wake.py), e.g. ``sum(rate(inferno_gateway_requests_total{...}[1m]))``."""


class GatewayCollector:
    """The gateway counter of one server (its Deployment): present at zero replicas too."""

    def __init__(self, engine: FleetEngine, namespace: str, deployment: str) -> None:
        self.engine, self.namespace, self.deployment = engine, namespace, deployment

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            GATEWAY_REQUESTS, "Requests that reached the server's front door.", labels=["model_name"]
        )
        for state, arrivals in self.engine.gateways():
            if (state.namespace, state.name) == (self.namespace, self.deployment):
                family.add_metric([state.model], arrivals)
        yield family


def make_registry(
    engine: FleetEngine, selector: Selector | None = None, *, target_labels: bool = True
) -> CollectorRegistry:
    """A fresh registry holding one collector over the selected pods."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(engine, selector, target_labels=target_labels))
    return registry
