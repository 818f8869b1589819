"""The router's OpenAPI schema: FastAPI's own for the router's endpoints, plus the proxied
OpenAI-compatible endpoints, which run as a raw ASGI endpoint outside FastAPI's routing and so
are documented here from their request models (`router.shell.schemas`).

Built once per app and cached, like FastAPI's own `openapi()`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from contracts import PASSTHROUGH_PATHS, PATH_CHAT, PATH_COMPLETIONS, PATH_EMBEDDINGS, PATH_MODELS
from router.shell.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ErrorResponse

__all__ = ["ErrorResponse", "schema"]

_PROXIED: dict[str, tuple[type[BaseModel], str, bool]] = {
    PATH_CHAT: (ChatCompletionRequest, "Chat completion, routed to the engine holding the prompt's cache.",
                True),
    PATH_COMPLETIONS: (CompletionRequest, "Text completion, routed like chat.", True),
    PATH_EMBEDDINGS: (EmbeddingRequest, "Embeddings, routed like chat.", False),
}
_ERRORS = {
    "400": "Invalid JSON, a missing/invalid field, or a body not declared application/json.",
    "401": "Missing or invalid API key (when keys are configured).",
    "404": "The model is not served here.",
    "413": "Request body over the router's limit.",
    "429": "Rate limit exceeded (retry-after).",
    "502": "The engine failed before answering.",
    "503": "No healthy engine serves the model (retry-after).",
    "504": "The engine did not answer in time.",
}
_REF = "#/components/schemas/{model}"
_SSE_EVENT = {
    "type": "object", "required": ["data"],
    "description": "One server-sent event of a streamed answer (`stream: true`).",
    "properties": {
        "data": {"type": "string", "description": "A JSON chunk as vLLM streams it, an error object "
                                                  "({\"error\": ...}) when the stream cannot go on, "
                                                  "and `[DONE]` last."},
        "event": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"},
    },
}


def _operation(model: type[BaseModel], summary: str, streams: bool) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}}}
    ok: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if streams:
        # Before OpenAPI 3.2 (FastAPI writes 3.1) a text/event-stream `schema` describes one event.
        ok["text/event-stream"] = {"schema": _SSE_EVENT}
    return {
        "summary": summary,
        "operationId": model.__name__,
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": _REF.format(model=model.__name__)}}}},
        "responses": {"200": {"description": "The engine's answer, relayed.", "content": ok},
                      **{code: {"description": text, **error} for code, text in _ERRORS.items()}},
    }


def _passthrough(path: str) -> dict[str, Any]:
    """A vLLM route the router routes by `model` and relays, its other fields the engine's."""
    error = {"content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}}}
    body = {"type": "object", "additionalProperties": True,
            "properties": {"model": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    ok = {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {"schema": _SSE_EVENT}}
    return {
        "summary": f"vLLM's {path}, routed by model; the engine checks the rest of the body.",
        "operationId": "passthrough" + path.replace("/", "_"),
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {"200": {"description": "The engine's answer, relayed.", "content": ok},
                      **{code: {"description": text, **error} for code, text in _ERRORS.items()}},
    }


def _components(models: list[type[BaseModel]]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    return defs


def schema(app: FastAPI) -> dict[str, Any]:
    """The whole schema (cached on the app)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
    for path, (model, summary, streams) in _PROXIED.items():
        doc.setdefault("paths", {})[path] = {"post": _operation(model, summary, streams)}
    for path in PASSTHROUGH_PATHS:
        doc["paths"][path] = {"post": _passthrough(path)}
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_components([ErrorResponse, *(m for m, _, _ in _PROXIED.values())]))
    if getattr(app, "proxy", None) is not None and app.proxy.keys.enabled:  # type: ignore[attr-defined]
        _document_keys(doc)
    app.openapi_schema = doc
    return doc


# What asks for a key when keys are configured (not /health, /metrics, /version, /ping, /load).
_KEYED = (*_PROXIED, *PASSTHROUGH_PATHS, PATH_MODELS)


def _document_keys(doc: dict[str, Any]) -> None:
    """`Authorization: Bearer <key>` on the operations that require it (router.shell.auth)."""
    doc["components"]["securitySchemes"] = {"apiKey": {"type": "http", "scheme": "bearer",
                                                       "description": "One of the router's API keys."}}
    for path in _KEYED:
        for operation in doc["paths"].get(path, {}).values():
            operation["security"] = [{"apiKey": []}]
