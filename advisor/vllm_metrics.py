"""The server's own vLLM metrics, when the endpoint has them (``GET {url}/metrics``).

Role: what the profiler reads beside its client timings. From one scrape (summed over the
series of every engine the endpoint exports):

- ``vllm:num_requests_running`` and ``vllm:num_requests_waiting``: the batch the engine runs and
  whether requests wait (the batch size of the model-data entry, when a level saturates);
- ``vllm:cache_config_info`` (labels ``num_gpu_blocks``, ``block_size``): the KV cache in tokens,
  the entry's ``kvCacheTokens``;
- the sums and counts of ``vllm:time_to_first_token_seconds`` and
  ``vllm:inter_token_latency_seconds`` (or the older ``vllm:time_per_output_token_seconds``):
  the server's mean TTFT and ITL over the sweep, for the report beside the client's.

An endpoint without ``/metrics``, or whose ``/metrics`` has no ``vllm:`` series, gives None: the
profile then rests on the client timings alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True, slots=True)
class MetricsSample:
    running: float
    waiting: float
    kv_cache_tokens: int | None
    ttft_sum_s: float
    ttft_count: float
    itl_sum_s: float
    itl_count: float


def parse(text: str) -> MetricsSample | None:
    """One scrape's numbers (None when it has no vLLM series)."""
    values: dict[str, float] = {}
    kv_tokens: int | None = None
    seen = False
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("vllm:"):
            continue
        seen = True
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
            if sample.name.startswith("vllm:cache_config_info"):
                blocks, size = sample.labels.get("num_gpu_blocks"), sample.labels.get("block_size")
                if blocks and size and blocks.isdigit() and size.isdigit():
                    kv_tokens = int(blocks) * int(size)
    if not seen:
        return None
    itl = "vllm:inter_token_latency_seconds"
    if f"{itl}_count" not in values:
        itl = "vllm:time_per_output_token_seconds"
    return MetricsSample(
        running=values.get("vllm:num_requests_running", 0.0),
        waiting=values.get("vllm:num_requests_waiting", 0.0),
        kv_cache_tokens=kv_tokens,
        ttft_sum_s=values.get("vllm:time_to_first_token_seconds_sum", 0.0),
        ttft_count=values.get("vllm:time_to_first_token_seconds_count", 0.0),
        itl_sum_s=values.get(f"{itl}_sum", 0.0),
        itl_count=values.get(f"{itl}_count", 0.0),
    )


async def scrape(session: aiohttp.ClientSession, url: str) -> MetricsSample | None:
    """``GET {url}/metrics``, None when it is absent, fails or has no vLLM series."""
    try:
        async with session.get(f"{url}/metrics") as resp:
            if resp.status != 200:
                return None
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    try:
        return parse(text)
    except ValueError:
        return None


def server_means_ms(before: MetricsSample, after: MetricsSample) -> tuple[float, float]:
    """Mean TTFT and ITL (ms) of what the server observed between two scrapes (NaN when none)."""
    ttft_n = after.ttft_count - before.ttft_count
    itl_n = after.itl_count - before.itl_count
    nan = float("nan")
    ttft = (after.ttft_sum_s - before.ttft_sum_s) * 1000.0 / ttft_n if ttft_n > 0 else nan
    itl = (after.itl_sum_s - before.itl_sum_s) * 1000.0 / itl_n if itl_n > 0 else nan
    return ttft, itl
