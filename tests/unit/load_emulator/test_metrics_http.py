"""The metrics server on 127.0.0.1: paths, per-pod exposition, Prometheus HTTP service discovery."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from load_emulator.metrics_http import metrics_app, start_metrics_server
from load_emulator.patterns import Constant
from load_emulator.tokens import TokenSpec
from tests.unit.load_emulator.builders import DEP, NS, decode_only, one_server


async def test_paths_serve_vllm_text_and_targets() -> None:
    engine, _ = one_server(decode_only(10, 1), Constant(120.0, TokenSpec(0, 20, "geometric")), replicas=2)
    engine.advance_to(60.0)
    runner, port = await start_metrics_server(metrics_app(engine), port=0)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with session.get(f"{base}/targets") as response:
                targets = await response.json()
            assert len(targets) == 2
            assert all(t["targets"] == [f"127.0.0.1:{port}"] for t in targets)
            pod = targets[0]["labels"]["pod"]
            assert targets[0]["labels"]["__metrics_path__"] == f"/metrics/{NS}/{DEP}/{pod}"
            texts = {}
            for path in ("/metrics", f"/metrics/{NS}/{DEP}", targets[0]["labels"]["__metrics_path__"]):
                async with session.get(base + path) as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"].startswith("text/plain")
                    texts[path] = await response.text()
            async with session.get(f"{base}/metrics/{NS}/{DEP}/no-such-pod") as response:
                assert response.status == 404
    finally:
        await runner.cleanup()
    fleet = {
        s.labels.get("pod") for f in text_string_to_metric_families(texts["/metrics"]) for s in f.samples
    }
    assert fleet >= {t["labels"]["pod"] for t in targets}
    single = [
        s for f in text_string_to_metric_families(texts[f"/metrics/{NS}/{DEP}/{pod}"]) for s in f.samples
    ]
    assert single and all("pod" not in s.labels for s in single)
    done = [
        s.value
        for s in single
        if s.name == "vllm:request_success_total" and s.labels["finished_reason"] == "stop"
    ]
    replica = next(r for _, r in engine.replicas() if r.pod == pod)
    assert done == [replica.metrics.success_by_reason["stop"]] and done[0] > 0


async def test_the_gateway_counts_requests_at_zero_replicas_too() -> None:
    engine, _ = one_server(decode_only(10, 1), Constant(120.0, TokenSpec(0, 20, "geometric")), replicas=0)
    engine.advance_to(60.0)
    runner, port = await start_metrics_server(metrics_app(engine), port=0)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(f"{base}/targets") as response:
                assert await response.json() == []  # no pod to scrape
            async with session.get(f"{base}/gateway/targets") as response:
                (target,) = await response.json()
            assert target["labels"] == {
                "__metrics_path__": f"/gateway/{NS}/{DEP}",
                "namespace": NS,
                "deployment": DEP,
            }
            async with session.get(base + target["labels"]["__metrics_path__"]) as response:
                text = await response.text()
    finally:
        await runner.cleanup()
    (sample,) = [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "inferno_gateway_requests_total"
    ]
    rejected = engine.stats(DEP).rejected_t
    assert sample.labels == {"model_name": "m"}
    assert sample.value == len(rejected) > 60  # ~120 rpm for a minute, none served
