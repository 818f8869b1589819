"""The router's exceptions and their OpenAI-style JSON rendering.

Every error a client can cause, or an engine can cause, is a `RouterError` with an HTTP
status, an OpenAI error `type` and `code`, and a message safe to show (never a key, never
a traceback). The proxy raises them; the HTTP boundary renders them with `error_body`.

`UpstreamError` and its two kinds are what the upstream client raises about an engine; the
proxy translates them (retry elsewhere, or a 502 / 504 `RouterError`) and never lets one
reach a client.
"""

from __future__ import annotations

import orjson


class RouterError(Exception):
    """Base: an error answered to the client with `status` and an OpenAI-style JSON body."""

    status = 500
    type = "internal_error"
    code: str | int = "internal_error"

    def __init__(self, message: str, *, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.code)


class BadRequest(RouterError):
    status, type, code = 400, "invalid_request_error", "bad_request"


class Unauthorized(RouterError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class NotFound(RouterError):
    status, type, code = 404, "invalid_request_error", "not_found"


class MethodNotAllowed(RouterError):
    status, type, code = 405, "invalid_request_error", "method_not_allowed"


class PayloadTooLarge(RouterError):
    status, type, code = 413, "invalid_request_error", "payload_too_large"


class RateLimited(RouterError):
    status, type, code = 429, "rate_limit_error", "rate_limit_exceeded"


class UpstreamFailed(RouterError):
    status, type, code = 502, "upstream_error", "bad_gateway"


class NoHealthyEngine(RouterError):
    status, type, code = 503, "service_unavailable", "no_healthy_engine"


class HoldRefused(RouterError):
    """The model's hold queue is at its bound (refused, or displaced by a fairer claim).
    `code` is the HTTP status, as vLLM's `ErrorInfo.code: int`
    (vllm/entrypoints/serve/engine/protocol.py)."""

    status, type, code = 429, "rate_limit_error", 429


class HoldTimedOut(RouterError):
    """No engine of the model could take the request within the hold deadline, or the router
    stopped while it was held."""

    status, type, code = 503, "service_unavailable", 503


class UpstreamTimedOut(RouterError):
    status, type, code = 504, "upstream_error", "gateway_timeout"


def error_body(message: str, type_: str, code: str | int) -> bytes:
    """`{"error": {"message", "type", "code"}}`, as vLLM and OpenAI answer errors."""
    return orjson.dumps({"error": {"message": message, "type": type_, "code": code}})


def sse_error_event(message: str, code: str | int = "upstream_error") -> bytes:
    """One SSE event carrying an error, written when a stream fails after its first byte."""
    return b"data: " + error_body(message, "upstream_error", code) + b"\n\n"


class UpstreamError(Exception):
    """The engine could not be reached or broke the exchange."""

    def __init__(self, message: str, *, engine: str, started: bool) -> None:
        super().__init__(message)
        self.engine = engine
        self.started = started  # the engine had begun answering


class UpstreamConnectError(UpstreamError):
    """No connection could be opened (refused, unreachable, connect timeout)."""


class UpstreamTimeout(UpstreamError):
    """The engine did not answer (or send the next chunk) within the read timeout."""
