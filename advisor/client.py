"""A streaming OpenAI-compatible client: probe an endpoint, stream one completion with its token times.

Role: the profiler's only HTTP to the model server (:mod:`advisor.sweep` drives it). Every
request is ``POST {url}/v1/completions`` with ``stream: true``, ``ignore_eos: true`` (vLLM's
extension: the output has exactly ``max_tokens`` tokens) and ``stream_options.include_usage``
(the prompt's token count as the server's tokenizer counts it). A token's time is when its SSE
event reached the client (``time.perf_counter``); an event that carries several tokens (the
usage count says so) marks the timeline incomplete: it still counts in the others' features.

Errors are :class:`EndpointError` with a message that says what to fix: unreachable, not
OpenAI-compatible (a 404, or a body that is not SSE of completion chunks), the model not served.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

_WORDS = [
    "time",
    "person",
    "year",
    "way",
    "day",
    "thing",
    "man",
    "world",
    "life",
    "hand",
    "part",
    "child",
    "eye",
    "woman",
    "place",
    "work",
    "week",
    "case",
    "point",
    "government",
    "company",
    "number",
    "group",
    "problem",
    "fact",
    "river",
    "stone",
    "cloud",
    "paper",
    "music",
    "garden",
]


class EndpointError(RuntimeError):
    """The endpoint cannot be profiled; the message says why."""


@dataclass(slots=True)
class Streamed:
    sent_s: float
    in_tokens: int
    token_s: list[float] = field(default_factory=list)
    complete: bool = False
    error: str = ""


def prompt_text(tokens: int, seed: int) -> str:
    """About ``tokens`` words, starting with a word unique to ``seed`` so that no two prompts share
    a prefix (vLLM's prefix cache would otherwise make their prefill nearly free)."""
    words = [f"r{seed}x"]
    words += [_WORDS[(seed * 7 + i * 13) % len(_WORDS)] for i in range(max(tokens - 1, 0))]
    return " ".join(words)


def completion_body(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "min_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def served_models(session: aiohttp.ClientSession, url: str) -> list[str]:
    """``GET /v1/models`` ids (EndpointError when unreachable or not OpenAI-compatible)."""
    try:
        async with session.get(f"{url}/v1/models") as resp:
            if resp.status != 200:
                raise EndpointError(
                    f"{url} is not OpenAI-compatible: GET /v1/models answered {resp.status} {resp.reason}"
                )
            body = await resp.json(content_type=None)
    except aiohttp.ClientConnectionError as exc:
        raise EndpointError(f"cannot reach {url}: {exc}") from None
    except (json.JSONDecodeError, aiohttp.ContentTypeError):
        raise EndpointError(f"{url} is not OpenAI-compatible: GET /v1/models did not return JSON") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise EndpointError(f"{url} is not OpenAI-compatible: GET /v1/models has no 'data' list")
    return [str(m.get("id")) for m in data if isinstance(m, dict)]


async def stream_completion(
    session: aiohttp.ClientSession, url: str, model: str, *, in_tokens: int, out_tokens: int, seed: int
) -> Streamed:
    """One streamed completion; a transport or protocol failure is returned in ``error``."""
    body = completion_body(model, prompt_text(in_tokens, seed), out_tokens)
    record = Streamed(time.perf_counter(), in_tokens)
    events = 0
    try:
        async with session.post(f"{url}/v1/completions", json=body) as resp:
            if resp.status != 200:
                text = (await resp.text())[:200]
                record.error = f"POST /v1/completions answered {resp.status}: {text}"
                return record
            if not resp.headers.get("Content-Type", "").startswith("text/event-stream"):
                record.error = "POST /v1/completions with stream=true did not answer text/event-stream"
                return record
            usage: dict[str, Any] | None = None
            async for raw in resp.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    break
                chunk = json.loads(payload)
                if chunk.get("usage"):
                    usage = chunk["usage"]
                choices = chunk.get("choices") or []
                if choices and (choices[0].get("text") or choices[0].get("finish_reason") is None):
                    record.token_s.append(time.perf_counter())
                    events += 1
    except aiohttp.ClientConnectionError as exc:
        record.error = f"connection failed: {exc}"
        return record
    except (json.JSONDecodeError, AttributeError, TypeError) as exc:
        record.error = f"a stream event is not an OpenAI completion chunk: {exc}"
        return record
    if usage is None:
        record.complete = events == out_tokens
        return record
    record.in_tokens = int(usage.get("prompt_tokens", in_tokens))
    record.complete = events == int(usage.get("completion_tokens", -1)) == out_tokens
    return record


async def probe(session: aiohttp.ClientSession, url: str, model: str) -> str:
    """Check the endpoint serves ``model`` and streams completions; the served ids for the report.
    EndpointError otherwise."""
    models = await served_models(session, url)
    if model not in models:
        raise EndpointError(f"{url} does not serve model {model!r}; it serves {models}")
    trial = await stream_completion(session, url, model, in_tokens=8, out_tokens=4, seed=0)
    if trial.error:
        raise EndpointError(f"{url} is not OpenAI-compatible: {trial.error}")
    if not trial.token_s:
        raise EndpointError(f"{url} is not OpenAI-compatible: a streamed completion carried no tokens")
    return ", ".join(models)
