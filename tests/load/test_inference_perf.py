"""inference-perf, a real benchmark client, drives an emulated vLLM replica on 127.0.0.1.

A stage list of Poisson rates (2 then 5 requests/s, 6 s each), streaming, fixed 64-token prompts
(made by the client's own generator with the emulator's shipped tokenizer) and 16 output tokens
with ``ignore_eos``. The replica runs in this test's event loop (``start_replicas``); the client is
a subprocess from ``.venv-client`` (``scripts/setup-client.sh``). Asserted: every request succeeds;
the server's usage, the client's own count of the streamed text and the replica's /metrics agree
token for token; the replica's /metrics count every request and inter-token gap; and the tokens
really stream (the client's mean gap between chunks is close to the engine's own ITL, where a
server that sent everything at the end would give near 0). The timing targets (5% against
/metrics, 10% against the offline emulator) are measured by ``benchmarks.bench_openai_client``.
"""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from benchmarks.inference_perf_client import (
    Stage,
    client_available,
    config_yaml,
    read_stage,
    read_token_counts,
    run_client,
    server_means,
)
from contract.data.perf import StepPerf
from load_emulator.openai_api import ReplicaParams, start_replicas
from tests.load.conftest import RESULTS

PARAMS = ReplicaParams(
    model="emu-small",
    perf=StepPerf(fixed_ms=10.0, per_decode_ms=0.2, per_prefill_token_ms=0.05, per_context_token_ms=0.0002),
    max_batch=32,
)
STAGES = (Stage(2.0, 6), Stage(5.0, 6))
IN_TOKENS, OUT_TOKENS = 64, 16


@pytest.fixture
def client() -> None:
    if not client_available():
        message = "inference-perf is not installed: run scripts/setup-client.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.usefixtures("client")
async def test_inference_perf_stages_against_an_emulated_replica(tmp_path: Path) -> None:
    async with await start_replicas(PARAMS, 1) as replicas:
        url = replicas.urls[0]
        config = tmp_path / "config.yml"
        out_dir = tmp_path / "report"
        config.write_text(config_yaml(url, PARAMS.model, STAGES, in_tokens=IN_TOKENS, out_tokens=OUT_TOKENS,
                                      out_dir=out_dir))  # fmt: skip
        code = await run_client(config, timeout_s=300, log_path=tmp_path / "client.log")
        assert code == 0, (tmp_path / "client.log").read_text()[-3000:]
        async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
            server = server_means(await response.text())
        lag = replicas.live.lag.summary()
    stages = [read_stage(out_dir, i) for i in range(len(STAGES))]
    sent = [round(s.rate_rps * s.duration_s) for s in STAGES]
    assert [s.successes for s in stages] == sent and all(s.failures == 0 for s in stages)
    requests = sum(sent)
    counts = read_token_counts(out_dir)
    assert counts == [(IN_TOKENS, OUT_TOKENS, OUT_TOKENS)] * requests
    assert server.requests == requests and server.ttft_count == requests
    assert server.prompt_tokens == IN_TOKENS * requests
    assert server.generation_tokens == OUT_TOKENS * requests
    assert server.itl_count == (OUT_TOKENS - 1) * requests
    client_itl_s = sum(s.mean_itl_s * s.successes for s in stages) / requests
    assert 0.5 * server.mean_itl_s < client_itl_s < 2.0 * server.mean_itl_s
    RESULTS["inference_perf_vs_metrics"] = {
        "client_mean_ttft_ms": [round(1000 * s.mean_ttft_s, 2) for s in stages],
        "client_mean_itl_ms": [round(1000 * s.mean_itl_s, 2) for s in stages],
        "server_mean_ttft_ms": round(1000 * server.mean_ttft_s, 2),
        "server_mean_itl_ms": round(1000 * server.mean_itl_s, 2),
        "lag_ms": {k: round(v, 2) for k, v in lag.items()},
    }
