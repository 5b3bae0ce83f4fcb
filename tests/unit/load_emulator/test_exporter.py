"""Exported metrics parse back (prometheus_client's text parser) to the simulated values."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from load_emulator.engine import FleetEngine
from load_emulator.exporter import Selector, make_registry
from load_emulator.histograms import ITL_BUCKETS_S, TTFT_BUCKETS_S
from load_emulator.patterns import Constant
from load_emulator.stats import DONE_WIDTH
from load_emulator.tokens import TokenSpec
from tests.unit.load_emulator.builders import DEP, NS, iteration, one_server


def _engine() -> FleetEngine:
    pattern = Constant(240.0, TokenSpec(128, 64, "geometric"))
    engine, _ = one_server(iteration(20, 0.05, 0.001, max_batch=8), pattern, replicas=2, seed=7)
    engine.advance_to(300.0)
    return engine


def _samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _value(samples: Iterable[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def test_fleet_exposition_matches_the_engine() -> None:
    engine = _engine()
    samples = _samples(generate_latest(make_registry(engine)).decode())
    stats = engine.stats(DEP)
    done = list(stats.done)
    completed = len(done) // DONE_WIDTH
    assert _value(samples, "vllm:request_success_total", finished_reason="stop") == completed
    assert _value(samples, "vllm:generation_tokens_total") == sum(
        r.metrics.generation_tokens for _, r in engine.replicas()
    )
    assert _value(samples, "vllm:prompt_tokens_total") == sum(
        r.metrics.prompt_tokens for _, r in engine.replicas()
    )
    assert _value(samples, "vllm:e2e_request_latency_seconds_count") == completed
    e2e_sum = sum(done[i + 3] for i in range(0, len(done), DONE_WIDTH))
    assert _value(samples, "vllm:e2e_request_latency_seconds_sum") == pytest.approx(e2e_sum)
    assert _value(samples, "vllm:request_generation_tokens_sum") == sum(
        done[i + 5] for i in range(0, len(done), DONE_WIDTH)
    )
    running = sum(r.running for _, r in engine.replicas())
    assert _value(samples, "vllm:num_requests_running") == running
    assert _value(samples, "vllm:num_requests_waiting") == sum(len(r.waiting) for _, r in engine.replicas())
    # TTFT histogram: one observation per first token, cumulative buckets ending in +Inf = count.
    ttft_count = len(stats.first) // 2
    assert _value(samples, "vllm:time_to_first_token_seconds_count") == ttft_count
    assert _value(samples, "vllm:time_to_first_token_seconds_bucket", le="+Inf") == ttft_count
    ttfts = list(stats.first)[1::2]
    below_100ms = sum(1 for v in ttfts if v <= 0.1)
    assert _value(samples, "vllm:time_to_first_token_seconds_bucket", le="0.1") == below_100ms
    # The older ITL name carries the same observations.
    for le in ("0.025", "0.05", "+Inf"):
        assert _value(samples, "vllm:inter_token_latency_seconds_bucket", le=le) == _value(
            samples, "vllm:time_per_output_token_seconds_bucket", le=le
        )
    usage = _value(samples, "vllm:kv_cache_usage_perc")
    assert 0 <= usage <= 2 and usage == pytest.approx(sum(r.kv_usage() for _, r in engine.replicas()))
    assert _value(samples, "vllm:num_preemptions_total") == sum(
        r.metrics.preemptions for _, r in engine.replicas()
    )


def test_kv_pressure_shows_in_preemptions_and_usage() -> None:
    # 1,600 tokens of KV cache (100 blocks) for a batch of 8 requests of about 128 + 64 tokens.
    perf = iteration(20, 0.05, 0.001, max_batch=8, kvCacheTokens=1600)
    engine, _ = one_server(perf, Constant(600.0, TokenSpec(128, 64, "geometric")), seed=3)
    engine.advance_to(120.0)
    samples = _samples(generate_latest(make_registry(engine)).decode())
    (replica,) = [r for _, r in engine.replicas()]
    assert _value(samples, "vllm:num_preemptions_total") == replica.metrics.preemptions > 0
    assert _value(samples, "vllm:kv_cache_usage_perc") == replica.used_blocks / 99  # null block excluded
    assert _value(samples, "vllm:gpu_cache_usage_perc") == replica.used_blocks / 99
    # the cache's size, as vLLM's cache_config_info labels: 100 blocks of 16 tokens, one of them null
    assert _value(samples, "vllm:cache_config_info", num_gpu_blocks="100", block_size="16") == 1.0


def test_cache_size_of_an_unlimited_cache_matches_its_usage_gauge() -> None:
    # No KV limit in the data: the gauge counts over a nominal pool, and the info says its size, so
    # usage * (num_gpu_blocks - 1) * block_size gives back the tokens in the cache.
    engine, _ = one_server(
        iteration(20, 0.05, 0.001, max_batch=8), Constant(300.0, TokenSpec(128, 64, "deterministic")), seed=1
    )
    engine.advance_to(30.0)
    samples = _samples(generate_latest(make_registry(engine)).decode())
    (replica,) = [r for _, r in engine.replicas()]
    (info,) = [s for s in samples if s.name == "vllm:cache_config_info"]
    blocks, size = int(info.labels["num_gpu_blocks"]), int(info.labels["block_size"])
    usage = _value(samples, "vllm:kv_cache_usage_perc")
    assert replica.running > 0 and 0 < usage < 1
    assert usage * (blocks - 1) * size == pytest.approx(replica.used_blocks * size)


def test_labels_of_fleet_and_pod_endpoints() -> None:
    engine = _engine()
    pods = sorted(r.pod for _, r in engine.replicas())
    fleet = _samples(generate_latest(make_registry(engine)).decode())
    success = [s for s in fleet if s.name == "vllm:request_success_total"]
    assert {s.labels["pod"] for s in success} == set(pods)
    assert all(s.labels["namespace"] == NS and s.labels["deployment"] == DEP for s in success)
    assert {s.labels["finished_reason"] for s in success} == {"stop", "length", "abort"}
    assert {s.labels["model_name"] for s in success} == {"m"} and {s.labels["engine"] for s in success} == {
        "0"
    }
    one = make_registry(engine, Selector(NS, DEP, pods[0]), target_labels=False)
    native = _samples(generate_latest(one).decode())
    config = [s for s in native if s.name == "vllm:cache_config_info"]
    assert [set(s.labels) for s in config] == [{"engine", "block_size", "num_gpu_blocks"}]
    rest = [s for s in native if s.name != "vllm:cache_config_info"]
    assert rest and all(set(s.labels) <= {"model_name", "engine", "finished_reason", "le"} for s in rest)
    ttft_buckets = [s for s in native if s.name == "vllm:time_to_first_token_seconds_bucket"]
    assert [float(s.labels["le"]) for s in ttft_buckets[:-1]] == list(TTFT_BUCKETS_S)
    itl_buckets = [s for s in native if s.name == "vllm:inter_token_latency_seconds_bucket"]
    assert len(itl_buckets) == len(ITL_BUCKETS_S) + 1
    by_pod = _value(native, "vllm:request_success_total", finished_reason="stop")
    assert by_pod == _value(fleet, "vllm:request_success_total", pod=pods[0], finished_reason="stop")


def test_registry_is_not_the_global_one() -> None:
    engine = _engine()
    registry = make_registry(engine)
    assert registry is not REGISTRY
    assert "vllm:" not in generate_latest(REGISTRY).decode()
