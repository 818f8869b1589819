"""The router's API models, for its OpenAPI schema: the OpenAI-compatible requests it routes
(the fields it reads; every other field passes through to the engine untouched), the answers
of its own endpoints, and the OpenAI error shape every error takes.

The proxied endpoints validate with `router.shell.validate.parse_body` on the hot path; these models
describe the same rules (the tests hold the two in agreement through schemathesis).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_PASS_THROUGH = ConfigDict(extra="allow")


class ChatMessage(BaseModel):
    model_config = _PASS_THROUGH
    role: str = Field(description="system, user, assistant or tool.")
    content: str | list[dict[str, Any]] | None = Field(
        default=None, description="Text, or a list of content parts ({'type': 'text', 'text': ...}).")


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions (vLLM's and OpenAI's fields pass through)."""

    model_config = _PASS_THROUGH
    model: str | None = Field(default=None, description="A model served here (GET /v1/models); "
                              "absent: the one model served (vLLM's rule).")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = Field(default=False, description="Answer as server-sent events.")
    max_tokens: int | None = Field(default=None, ge=1)


class CompletionRequest(BaseModel):
    """POST /v1/completions."""

    model_config = _PASS_THROUGH
    model: str | None = None
    prompt: str | list[str] | list[int] | list[list[int]]
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings."""

    model_config = _PASS_THROUGH
    model: str | None = None
    input: str | list[str] | list[int] | list[list[int]]


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="As vLLM names it: BadRequestError, NotFoundError, ... or the "
                                  "status's phrase.")
    param: str | None = Field(default=None, description="The request field at fault, where one is.")
    code: int = Field(description="The HTTP status.")


class ErrorResponse(BaseModel):
    """Every error the router answers: vLLM's (OpenAI's) shape."""

    error: ErrorDetail


class ModelPermission(BaseModel):
    id: str
    object: Literal["model_permission"] = "model_permission"
    created: int
    allow_create_engine: bool = False
    allow_sampling: bool = True
    allow_logprobs: bool = True
    allow_search_indices: bool = False
    allow_view: bool = True
    allow_fine_tuning: bool = False
    organization: str = "*"
    group: str | None = None
    is_blocking: bool = False


class ModelCard(BaseModel):
    """vLLM 0.33's model card (vllm/entrypoints/serve/engine/protocol.py), with `root`,
    `parent` and `max_model_len` as the engines serving the model report them."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "vllm"
    root: str | None = None
    parent: str | None = None
    max_model_len: int | None = None
    permission: list[ModelPermission]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok", "draining", "unavailable", "degraded", "warming"]
    healthy_engines: int
    engines: int
    held_requests: int = Field(0, description="Requests this process holds for want of an engine.")
    pid: int
    tasks_down: list[str] = Field(default_factory=list, description="Background tasks waiting to restart.")
    task_restarts: dict[str, int] = Field(default_factory=dict)
    kv_events: dict[str, str] | None = Field(
        default=None, description="Each engine's KV-event stream, by engine URL: syncing, live (routed on), "
                                  "untrusted (lost batches replay could not return) or stale (publisher "
                                  "unreachable); absent when the router does not subscribe.")
    kv_scoring: dict[str, str] | None = Field(
        default=None, description="How each engine is scored now, by engine URL, when the router scores by "
                                  "KV events: `events`, or why it falls back to the router's own estimate "
                                  "(syncing, untrusted, stale); absent in approximate mode.")
