"""The emulated vLLM's OpenAI API on 127.0.0.1: shapes, token counts, streams, errors, metrics."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contract.data.perf import StepPerf
from load_emulator.cli import main as cli_main
from load_emulator.metrics_http import metrics_app, start_metrics_server
from load_emulator.openai_api import ReplicaParams, start_replicas
from load_emulator.openai_api.launch import add_arguments, params_from_args
from load_emulator.openai_api.live import LiveEngine
from load_emulator.openai_api.params import OutputLengths
from load_emulator.openai_api.text import TOKENIZER_DIR, count_tokens, output_text, tokenizer_files
from load_emulator.patterns import Constant
from load_emulator.tokens import TokenSpec
from tests.unit.load_emulator.builders import DEP, NS, iteration, one_server

STEP = StepPerf(fixed_ms=8.0, per_decode_ms=0.5, per_prefill_token_ms=0.1, per_context_token_ms=0.001)
PARAMS = ReplicaParams(model="emu-8b", perf=STEP, max_batch=8, max_model_len=512, mean_output_tokens=4)
TIMEOUT = aiohttp.ClientTimeout(total=20)


@pytest.fixture
async def base() -> AsyncIterator[str]:
    replicas = await start_replicas(PARAMS, 1)
    try:
        yield replicas.urls[0]
    finally:
        await replicas.stop()


async def _post(url: str, body: object) -> tuple[int, Any]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        data = body if isinstance(body, str) else json.dumps(body)
        async with session.post(url, data=data) as response:
            return response.status, await response.json(content_type=None)


async def _events(url: str, body: dict[str, Any]) -> list[Any]:
    """The SSE events of a streamed response, ``[DONE]`` as the string."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.post(url, json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = (await response.read()).decode()
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    return [e[6:] if e[6:] == "[DONE]" else json.loads(e[6:]) for e in events]


async def _metrics(base: str) -> dict[str, float]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(f"{base}/metrics") as response:
        text = await response.text()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + ("{" + s.labels["finished_reason"] + "}" if "finished_reason" in s.labels else "")
            out[key] = s.value
    return out


async def test_completion_counts_tokens_as_the_shipped_tokenizer_does(base: str) -> None:
    prompt = "Hello, world! The queue waits."
    status, body = await _post(f"{base}/v1/completions", {"model": "emu-8b", "prompt": prompt,
                                                          "max_tokens": 7, "ignore_eos": True})  # fmt: skip
    assert status == 200
    assert body["object"] == "text_completion" and body["model"] == "emu-8b"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 8, "completion_tokens": 7, "total_tokens": 15,
                             "prompt_tokens_details": None}  # fmt: skip
    assert count_tokens(prompt) == 8 and count_tokens(choice["text"]) == 7
    metrics = await _metrics(base)
    assert metrics["vllm:prompt_tokens_total"] == 8
    assert metrics["vllm:generation_tokens_total"] == 7
    assert metrics["vllm:request_success_total{length}"] == 1


async def test_first_token_and_step_times_on_metrics_follow_the_step_cost(base: str) -> None:
    # An idle replica: one prefill step of 10 tokens, then 4 decode steps of one request.
    status, _ = await _post(
        f"{base}/v1/completions", {"prompt": [1] * 10, "max_tokens": 5, "ignore_eos": True}
    )
    assert status == 200
    metrics = await _metrics(base)
    prefill_ms = STEP.fixed_ms + 10 * STEP.per_prefill_token_ms + 10 * STEP.per_context_token_ms
    assert metrics["vllm:time_to_first_token_seconds_sum"] == pytest.approx(prefill_ms / 1000, rel=1e-9)
    decodes_ms = sum(
        STEP.fixed_ms + STEP.per_decode_ms + (11 + i) * STEP.per_context_token_ms for i in range(4)
    )
    assert metrics["vllm:inter_token_latency_seconds_count"] == 4
    assert metrics["vllm:inter_token_latency_seconds_sum"] == pytest.approx(decodes_ms / 1000, rel=1e-9)


async def test_completion_stream_one_token_per_event_then_usage_and_done(base: str) -> None:
    body = {"prompt": "a b c", "max_tokens": 5, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    events = await _events(f"{base}/v1/completions", body)
    assert events[-1] == "[DONE]"
    tokens, usage = events[:-2], events[-2]
    assert [count_tokens(e["choices"][0]["text"]) for e in tokens] == [1] * 5
    assert "".join(e["choices"][0]["text"] for e in tokens) == output_text(0, 5)
    assert [e["choices"][0]["finish_reason"] for e in tokens] == [None] * 4 + ["length"]
    assert all(e["usage"] is None and e["object"] == "text_completion" for e in tokens)
    assert len({e["id"] for e in events[:-1]}) == 1
    assert usage["choices"] == [] and usage["usage"]["prompt_tokens"] == 3
    assert usage["usage"]["completion_tokens"] == 5 and usage["usage"]["total_tokens"] == 8


async def test_chat_stream_opens_with_the_role_and_counts_the_templated_prompt(base: str) -> None:
    body = {"messages": [{"role": "user", "content": "how long is the queue"}], "max_tokens": 3,
            "ignore_eos": True, "stream": True}  # fmt: skip
    events = await _events(f"{base}/v1/chat/completions", body)
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    tokens = events[1:-1]
    assert all(e["object"] == "chat.completion.chunk" and "usage" not in e for e in tokens)
    assert [count_tokens(e["choices"][0]["delta"]["content"]) for e in tokens] == [1, 1, 1]
    assert tokens[-1]["choices"][0]["finish_reason"] == "length"
    status, full = await _post(f"{base}/v1/chat/completions", {**body, "stream": False})
    assert status == 200 and full["object"] == "chat.completion"
    assert full["choices"][0]["message"]["role"] == "assistant"
    # "user: how long is the queue\nassistant:" -> user : how long is the queue assistant :
    assert full["usage"]["prompt_tokens"] == 9


async def test_without_ignore_eos_lengths_are_drawn_and_stop_is_counted(base: str) -> None:
    reasons = []
    for _ in range(12):
        status, body = await _post(f"{base}/v1/completions", {"prompt": "x", "max_tokens": 6})
        assert status == 200
        choice, usage = body["choices"][0], body["usage"]
        assert 1 <= usage["completion_tokens"] <= 6
        assert (choice["finish_reason"] == "length") == (usage["completion_tokens"] == 6)
        reasons.append(choice["finish_reason"])
    assert "stop" in reasons  # mean 4 of a geometric: P(>= 6 twelve times) is negligible
    metrics = await _metrics(base)
    assert metrics["vllm:request_success_total{stop}"] == reasons.count("stop")
    assert metrics["vllm:request_success_total{length}"] == reasons.count("length")


def test_output_lengths_honour_ignore_eos_and_min_tokens() -> None:
    lengths = OutputLengths(PARAMS, seed=1)
    assert lengths.decide(50, ignore_eos=True) == (50, "length")
    drawn = [lengths.decide(1000, ignore_eos=False, min_tokens=3) for _ in range(300)]
    assert min(n for n, _ in drawn) >= 3 and {r for _, r in drawn} == {"stop"}
    assert 3 < sum(n for n, _ in drawn) / len(drawn) < 7  # geometric mean 4, floored at 3


async def test_models_health_and_replicas_on_their_own_ports() -> None:
    async with await start_replicas(PARAMS, 2) as replicas:
        assert len(set(replicas.urls)) == 2 and all(u.startswith("http://127.0.0.1:") for u in replicas.urls)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.get(f"{replicas.urls[0]}/v1/models") as response:
                models = await response.json()
            assert [m["id"] for m in models["data"]] == ["emu-8b"]
            assert models["data"][0]["max_model_len"] == 512
            async with session.get(f"{replicas.urls[1]}/health") as response:
                assert response.status == 200
        status, _ = await _post(f"{replicas.urls[1]}/v1/completions", {"prompt": "a", "max_tokens": 2})
        assert status == 200
        first, second = await _metrics(replicas.urls[0]), await _metrics(replicas.urls[1])
        assert first["vllm:time_to_first_token_seconds_count"] == 0
        assert second["vllm:time_to_first_token_seconds_count"] == 1


BAD_REQUESTS = [
    ("not-json", "/v1/completions", "{nope", 400),
    ("not-an-object", "/v1/completions", "[1, 2]", 400),
    ("no-prompt", "/v1/completions", {"max_tokens": 3}, 400),
    ("max-tokens-zero", "/v1/completions", {"prompt": "a", "max_tokens": 0}, 400),
    ("max-tokens-text", "/v1/completions", {"prompt": "a", "max_tokens": "many"}, 400),
    ("empty-prompt", "/v1/completions", {"prompt": "", "max_tokens": 3}, 400),
    ("batch-of-prompts", "/v1/completions", {"prompt": ["a", "b"], "max_tokens": 3}, 400),
    ("beyond-context", "/v1/completions", {"prompt": "a " * 500, "max_tokens": 100}, 400),
    ("prompt-fills-context", "/v1/completions", {"prompt": "a " * 512}, 400),
    ("stream-options-without-stream", "/v1/completions", {"prompt": "a", "stream_options": {}}, 400),
    ("n-two", "/v1/completions", {"prompt": "a", "n": 2}, 400),
    ("min-above-max", "/v1/completions", {"prompt": "a", "max_tokens": 2, "min_tokens": 3}, 400),
    ("other-model", "/v1/completions", {"model": "gpt-4", "prompt": "a"}, 404),
    ("no-messages", "/v1/chat/completions", {"messages": []}, 400),
    ("message-without-role", "/v1/chat/completions", {"messages": [{"content": "a"}]}, 400),
    ("unknown-path", "/v1/embeddings", {"input": "a"}, 404),
]


@pytest.mark.parametrize(
    ("path", "body", "status"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS]
)
async def test_bad_requests_get_the_openai_error_shape(
    base: str, path: str, body: object, status: int
) -> None:
    got, error = await _post(base + path, body)
    assert got == status
    assert set(error) == {"error"} and error["error"]["code"] == status
    assert error["error"]["type"] in {"BadRequestError", "NotFoundError"} and error["error"]["message"]
    metrics = await _metrics(base)
    assert metrics["vllm:time_to_first_token_seconds_count"] == 0  # nothing reached the engine


async def test_wrong_method_is_a_405_in_the_error_shape(base: str) -> None:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(f"{base}/v1/completions") as response,
    ):
        assert response.status == 405
        assert (await response.json())["error"]["code"] == 405


def test_shipped_tokenizer_files_are_what_text_writes() -> None:
    for name, content in tokenizer_files().items():
        assert json.loads((TOKENIZER_DIR / name).read_text()) == content


async def test_a_fleets_pods_and_deployments_serve_the_api_beside_their_metrics() -> None:
    # The demo's layout: one metrics server for the fleet, each pod's OpenAI API under its path,
    # joining the pattern's own load on the same replicas.
    engine, _ = one_server(
        iteration(10.0, 0.1, 0.001), Constant(60.0, TokenSpec(8, 4, "deterministic")), replicas=2
    )
    live = LiveEngine(engine)
    stop = asyncio.Event()
    pacer = asyncio.create_task(live.run(stop))
    runner, port = await start_metrics_server(metrics_app(engine, live), port=0)
    base = f"http://127.0.0.1:{port}"
    try:
        pods = sorted(r.pod for _, r in engine.replicas())
        request = {"model": "m", "prompt": "a b c", "max_tokens": 3, "ignore_eos": True}
        status, body = await _post(f"{base}/pods/{NS}/{DEP}/{pods[1]}/v1/completions", request)
        assert status == 200 and body["usage"]["completion_tokens"] == 3 and body["model"] == "m"
        chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "ignore_eos": True}
        status, body = await _post(f"{base}/deployments/{NS}/{DEP}/v1/chat/completions", chat)
        assert status == 200 and body["object"] == "chat.completion"
        status, error = await _post(f"{base}/pods/{NS}/{DEP}/no-such-pod/v1/completions", {"prompt": "a"})
        assert status == 404 and error["error"]["type"] == "NotFoundError"
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.get(f"{base}/pods/{NS}/{DEP}/{pods[0]}/v1/models") as response:
                assert [m["id"] for m in (await response.json())["data"]] == ["m"]
            texts = []
            for pod in pods:
                async with session.get(f"{base}/metrics/{NS}/{DEP}/{pod}") as response:
                    texts.append(await response.text())
        length = [
            s.value
            for text in texts
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "vllm:request_success_total" and s.labels["finished_reason"] == "length"
        ]
        # The pattern's requests end with "stop"; ours reached max_tokens, one of them on pods[1].
        assert sum(length) == 2 and length[1] >= 1
    finally:
        stop.set()
        await pacer
        await runner.cleanup()


CLI_ERRORS = [
    ("no-perf", ["--model", "x"], "exactly one of --step-ms"),
    ("short-perf", ["--model", "x", "--step-ms", "1,2"], "takes 4 finite numbers"),
    ("negative-perf", ["--model", "x", "--decode-only-ms", "1,-2"], "takes 2 finite numbers"),
    (
        "two-sources",
        ["--model", "granite_13b", "--model-data", "samples/small", "--step-ms", "1,1,1,1"],
        "not both",
    ),
    (
        "no-such-model",
        ["--model", "nope", "--model-data", "samples/small"],
        "need one entry for model 'nope'",
    ),
    (
        "model-len-beyond-kv",
        ["--model", "x", "--step-ms", "1,1,1,1", "--kv-cache-tokens", "1024", "--max-model-len", "2048"],
        "exceeds the KV cache",
    ),
]


@pytest.mark.parametrize(("argv", "message"), [c[1:] for c in CLI_ERRORS], ids=[c[0] for c in CLI_ERRORS])
def test_serve_openai_refuses_bad_parameters_before_listening(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["serve-openai", "--port", "0", *argv]) == 2
    assert message in capsys.readouterr().err


def test_serve_openai_reads_a_model_data_entry() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = [
        "--model",
        "granite_13b",
        "--model-data",
        "samples/small",
        "--accelerator",
        "A100",
        "--max-batch",
        "12",
    ]
    params = params_from_args(parser.parse_args(argv))
    assert (params.model, params.accelerator, params.max_batch) == ("granite_13b", "A100", 12)
    assert params.entry().perf == params.perf


async def test_a_client_that_disconnects_mid_stream_aborts_its_request(base: str) -> None:
    # 400 output tokens at ~9 ms a step: the stream lasts ~3.6 s; the client leaves after 5 events.
    body = {"prompt": "a b c", "max_tokens": 400, "ignore_eos": True, "stream": True}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        response = await session.post(f"{base}/v1/completions", json=body)
        seen = 0
        async for line in response.content:
            seen += line.startswith(b"data: ")
            if seen == 5:
                break
        response.close()  # the connection goes away mid-stream
    for _ in range(100):  # bounded: 5 s
        metrics = await _metrics(base)
        if metrics.get("vllm:request_success_total{abort}", 0) >= 1:
            break
        await asyncio.sleep(0.05)
    assert metrics["vllm:request_success_total{abort}"] == 1
    assert metrics["vllm:request_success_total{length}"] == 0  # it never ran to its end
    assert metrics["vllm:num_requests_running"] == 0 and metrics["vllm:kv_cache_usage_perc"] == 0
