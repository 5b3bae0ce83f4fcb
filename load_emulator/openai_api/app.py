"""The HTTP endpoints of one emulated vLLM (aiohttp), as vLLM's OpenAI server serves them.

=============================  ==============================================================
``POST /v1/completions``       text completion, streaming (SSE) or not
``POST /v1/chat/completions``  chat completion (prompt = :data:`text.CHAT_TEMPLATE` rendered)
``GET /v1/models``             the one served model
``GET /health``                200, empty body
``GET /metrics``               the pod's vLLM metrics (:mod:`load_emulator.exporter`), fed by
                               these requests
``GET /emulator/lag``          the wall-clock pacing's lag (:class:`live.LagStats`), JSON
=============================  ==============================================================

An :class:`Endpoint` is one pod of a server (``pod`` set: what a client of that pod reaches) or
the whole server (``pod=None``: routed as a Kubernetes Service would). :func:`openai_app` serves
one endpoint on its own port; :func:`add_openai_routes` adds the API under a path prefix of any
app, with a resolver that finds the endpoint from the request (the demo's metrics server serves
every pod that way: :mod:`load_emulator.openai_api.pods`). Prompts are counted with
:func:`text.count_tokens`. A request beyond the context length, with bad fields, for another
model, or (standalone) for an unknown path gets vLLM's error body with a 4xx (:mod:`wire`), so a
bad request never gets a 500.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from load_emulator.exporter import Selector, make_registry
from load_emulator.openai_api import text, wire
from load_emulator.openai_api.live import LiveEngine, TokenStream
from load_emulator.openai_api.params import OutputLengths, ReplicaParams


@dataclass
class Endpoint:
    live: LiveEngine
    params: ReplicaParams
    server: str
    namespace: str
    deployment: str
    pod: str | None
    lengths: OutputLengths
    created: int


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Resolver = Callable[[web.Request], Endpoint]
"""Finds the endpoint a request is for; raises :class:`wire.ApiError` (404) when there is none."""
EndpointHandler = Callable[[web.Request, Endpoint], Awaitable[web.StreamResponse]]


def openai_app(endpoint: Endpoint) -> web.Application:
    """One endpoint on its own port, with its /metrics and /emulator/lag."""
    app = web.Application(middlewares=[_errors])
    add_openai_routes(app, lambda _: endpoint)
    app.router.add_get("/metrics", _guard(_metrics, lambda _: endpoint))
    app.router.add_get("/emulator/lag", _guard(_lag, lambda _: endpoint))
    return app


def add_openai_routes(app: web.Application, resolve: Resolver, prefix: str = "") -> None:
    """``{prefix}/v1/completions``, ``/v1/chat/completions``, ``/v1/models`` and ``/health``."""
    app.router.add_post(f"{prefix}/v1/completions", _guard(_completions, resolve))
    app.router.add_post(f"{prefix}/v1/chat/completions", _guard(_chat, resolve))
    app.router.add_get(f"{prefix}/v1/models", _guard(_models, resolve))
    app.router.add_get(f"{prefix}/health", _guard(_health, resolve))


def _guard(handler: EndpointHandler, resolve: Resolver) -> Handler:
    async def serve(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request, resolve(request))
        except wire.ApiError as exc:
            return web.json_response(exc.body(), status=exc.status)

    return serve


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error_type = {404: "NotFoundError", 405: "MethodNotAllowed"}.get(exc.status, "BadRequestError")
        body = {"error": {"message": f"{exc.reason}: {request.method} {request.path}", "type": error_type,
                          "param": None, "code": exc.status}}  # fmt: skip
        return web.json_response(body, status=exc.status)


async def _json_body(request: web.Request) -> object:
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise wire.ApiError(400, f"the request body is not valid JSON: {exc}") from exc


def _check_model(endpoint: Endpoint, model: str | None) -> None:
    if model is not None and model != endpoint.params.model:
        raise wire.ApiError(404, f"The model `{model}` does not exist.", "NotFoundError", "model")


def _limits(endpoint: Endpoint, prompt_tokens: int, max_tokens: int | None) -> int:
    """The request's ``max_tokens`` within the context length (vLLM's default: what is left)."""
    model_len = endpoint.params.model_len_tokens
    if prompt_tokens < 1:
        raise wire.ApiError(400, "the prompt is empty (0 tokens)", param="prompt")
    wanted = max_tokens if max_tokens is not None else model_len - prompt_tokens
    if wanted < 1 or prompt_tokens + wanted > model_len:
        raise wire.ApiError(
            400,
            f"This model's maximum context length is {model_len} tokens. However, you requested "
            f"{prompt_tokens + max(wanted, 0)} tokens ({prompt_tokens} in the messages, {max(wanted, 0)} in "
            "the completion). Please reduce the length of the messages or completion.",
            param="max_tokens" if max_tokens is not None else "prompt",
        )
    return wanted


async def _completions(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
    body = wire.parse_request(wire.CompletionRequest, await _json_body(request))
    _check_model(endpoint, body.model)
    prompt = body.prompt
    if isinstance(prompt, str):
        prompt_tokens = text.count_tokens(prompt)
    elif isinstance(prompt[0], str):
        prompt_tokens = text.count_tokens(str(prompt[0]))
    else:
        prompt_tokens = len(prompt)
    max_tokens = _limits(endpoint, prompt_tokens, body.max_tokens)
    return await _generate(request, endpoint, body, "completion", prompt_tokens, max_tokens=max_tokens)


async def _chat(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
    body = wire.parse_request(wire.ChatRequest, await _json_body(request))
    _check_model(endpoint, body.model)
    rendered = text.render_chat([(m.role, m.text()) for m in body.messages])
    prompt_tokens = text.count_tokens(rendered)
    max_tokens = _limits(endpoint, prompt_tokens, body.output_limit)
    return await _generate(request, endpoint, body, "chat", prompt_tokens, max_tokens=max_tokens)


@dataclass(frozen=True)
class Job:
    """One accepted request: what it asked and what the emulator decided for it."""

    body: wire.CompletionRequest | wire.ChatRequest
    shapes: wire.Shapes
    prompt_tokens: int
    out_tokens: int
    finish_reason: str


async def _generate(
    request: web.Request, endpoint: Endpoint, body: wire.CompletionRequest | wire.ChatRequest,
    kind: wire.Kind, prompt_tokens: int, *, max_tokens: int,
) -> web.StreamResponse:  # fmt: skip
    out_tokens, finish_reason = endpoint.lengths.decide(
        max_tokens, ignore_eos=body.ignore_eos, min_tokens=min(body.min_tokens, max_tokens)
    )
    stream = endpoint.live.submit(endpoint.server, prompt_tokens, out_tokens, endpoint.pod, finish_reason)
    if stream is None:
        raise wire.ApiError(
            400,
            f"the request ({prompt_tokens} prompt + {out_tokens} output tokens) does not fit the "
            "replica's KV cache, or no replica is serving",
        )
    job = Job(body, wire.Shapes(kind, endpoint.params.model), prompt_tokens, out_tokens, finish_reason)
    try:
        if body.stream:
            return await _stream(request, stream, job)
        while not stream.done:
            await stream.ready.wait()
            stream.ready.clear()
    except (asyncio.CancelledError, ConnectionResetError):
        endpoint.live.abort(endpoint.server, stream)  # the client went away: vLLM aborts the request
        raise
    if stream.aborted:
        raise wire.ApiError(400, "the request was aborted: its replica went away")
    text_out = text.output_text(0, out_tokens)
    return web.json_response(job.shapes.full(text_out, finish_reason, prompt_tokens, out_tokens))


async def _stream(request: web.Request, stream: TokenStream, job: Job) -> web.StreamResponse:
    """SSE: one event per token as the engine books it (see :mod:`wire`)."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    with_usage = job.body.include_usage
    shapes = job.shapes

    async def send(event: dict[str, Any] | str) -> None:
        payload = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
        await response.write(f"data: {payload}\n\n".encode())

    if shapes.kind == "chat":
        await send(shapes.chunk(None, None, with_usage=with_usage, role=True))
    sent = 0
    while True:
        await stream.ready.wait()
        stream.ready.clear()
        produced = stream.produced
        while sent < produced:
            reason = job.finish_reason if sent + 1 == job.out_tokens else None
            await send(shapes.chunk(text.output_token(sent), reason, with_usage=with_usage))
            sent += 1
        if stream.done:
            break
    if stream.aborted:
        await send(wire.ApiError(400, "the request was aborted: its replica went away").body())
    elif with_usage:
        await send(shapes.usage_chunk(job.prompt_tokens, job.out_tokens))
    await send("[DONE]")
    await response.write_eof()
    return response


async def _models(request: web.Request, endpoint: Endpoint) -> web.Response:
    params = endpoint.params
    return web.json_response(wire.models_list(params.model, params.model_len_tokens, endpoint.created))


async def _health(request: web.Request, endpoint: Endpoint) -> web.Response:
    return web.Response(status=200)


async def _metrics(request: web.Request, endpoint: Endpoint) -> web.Response:
    endpoint.live.catch_up()
    selector = Selector(endpoint.namespace, endpoint.deployment, endpoint.pod)
    registry = make_registry(endpoint.live.engine, selector, target_labels=endpoint.pod is None)
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _lag(request: web.Request, endpoint: Endpoint) -> web.Response:
    return web.json_response(endpoint.live.lag.summary())
