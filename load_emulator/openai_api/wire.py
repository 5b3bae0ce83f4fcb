"""The OpenAI API's wire shapes as vLLM's OpenAI server writes them, and request validation.

Requests are pydantic models at the edge (unknown fields are accepted and ignored, as vLLM does:
``temperature``, ``top_p`` ... change nothing in an emulator). Responses are plain dicts shaped as
vLLM's ``vllm/entrypoints/openai`` protocol models: ``text_completion`` / ``chat.completion``
objects, ``*.chunk`` stream events with one choice, ``usage`` with prompt, completion and total
tokens, and errors as ``{"error": {"message", "type", "param", "code"}}`` where ``code`` is the HTTP
status (vLLM's ``ErrorResponse``/``ErrorInfo``).

Streams: one event per output token (its ``text`` or ``delta.content``); the event of the last
token carries ``finish_reason``; chat streams open with a role-only delta; with
``stream_options.include_usage`` every event has ``"usage": null`` and a last event with no
choices carries the usage; then ``data: [DONE]``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Kind = Literal["completion", "chat"]
ErrorType = Literal["BadRequestError", "NotFoundError", "MethodNotAllowed"]


class ApiError(Exception):
    """A request the server refuses: an HTTP 4xx with vLLM's error body."""

    def __init__(self, status: int, message: str, error_type: ErrorType = "BadRequestError",
                 param: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param,
                          "code": self.status}}  # fmt: skip


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = True
    continuous_usage_stats: bool | None = False


class _Common(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    min_tokens: int = Field(default=0, ge=0)
    ignore_eos: bool = False
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="one choice per request (n > 1 is not emulated)")

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> _Common:
        if self.stream_options is not None and not self.stream:
            raise ValueError("Stream options can only be defined when `stream=True`.")
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) must be <= max_tokens ({self.max_tokens})")
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(_Common):
    prompt: str | list[int] | list[str]

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[int] | list[str]) -> str | list[int] | list[str]:
        if isinstance(value, list):
            if not value:
                raise ValueError("prompt must not be empty")
            if isinstance(value[0], str) and len(value) != 1:
                raise ValueError("one prompt per request (a batch of prompts is not emulated)")
        return value


RequestT = TypeVar("RequestT", bound=BaseModel)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field(min_length=1)
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content)


class ChatRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


def parse_request(model: type[RequestT], body: object) -> RequestT:
    """Validate a JSON body; a 400 naming the first bad field otherwise."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(400, f"{where}: {first['msg']}" if where else first["msg"], param=where) from exc


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens, "prompt_tokens_details": None}  # fmt: skip


class Shapes:
    """Builds one request's response objects (one id and creation time for all its events)."""

    def __init__(self, kind: Kind, model: str) -> None:
        self.kind = kind
        self.model = model
        self.id = ("cmpl-" if kind == "completion" else "chatcmpl-") + uuid.uuid4().hex
        self.created = int(time.time())

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def full(
        self, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int
    ) -> dict[str, Any]:
        if self.kind == "completion":
            choice: dict[str, Any] = {"index": 0, "text": text, "logprobs": None,
                                      "finish_reason": finish_reason, "stop_reason": None,
                                      "prompt_logprobs": None}  # fmt: skip
            head = self._head("text_completion")
        else:
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None,
                                       "tool_calls": [], "reasoning_content": None}  # fmt: skip
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason,
                      "stop_reason": None}  # fmt: skip
            head = self._head("chat.completion")
        return {**head, "choices": [choice], "usage": usage(prompt_tokens, completion_tokens)}

    def chunk(self, text: str | None, finish_reason: str | None, *, with_usage: bool,
              role: bool = False) -> dict[str, Any]:  # fmt: skip
        """A stream event with one choice: a token (``text``), or the chat's opening role."""
        if self.kind == "completion":
            choice: dict[str, Any] = {"index": 0, "text": text or "", "logprobs": None,
                                      "finish_reason": finish_reason, "stop_reason": None}  # fmt: skip
            head = self._head("text_completion")
        else:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {"content": text}
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason,
                      "stop_reason": None}  # fmt: skip
            head = self._head("chat.completion.chunk")
        out = {**head, "choices": [choice]}
        if with_usage:
            out["usage"] = None
        return out

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        obj = "text_completion" if self.kind == "completion" else "chat.completion.chunk"
        return {**self._head(obj), "choices": [], "usage": usage(prompt_tokens, completion_tokens)}


def models_list(model: str, max_model_len: int, created: int) -> dict[str, Any]:
    permission = {"id": f"modelperm-{model}", "object": "model_permission", "created": created,
                  "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
                  "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False,
                  "organization": "*", "group": None, "is_blocking": False}  # fmt: skip
    card = {"id": model, "object": "model", "created": created, "owned_by": "vllm", "root": model,
            "parent": None, "max_model_len": max_model_len, "permission": [permission]}  # fmt: skip
    return {"object": "list", "data": [card]}
