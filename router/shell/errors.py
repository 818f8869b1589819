"""The router's exceptions and their JSON rendering, in vLLM's (OpenAI's) error shape.

Every error a client can cause, or an engine can cause, is a `RouterError` with an HTTP
status, answered in vLLM's error shape (`type` named as vLLM names it, `code` the status,
`param` the field at fault), with a message safe to show (never a key, never a traceback).
The proxy raises them; the HTTP boundary renders them with `error_body`.

`UpstreamError` and its two kinds are what the upstream client raises about an engine; the
proxy translates them (retry elsewhere, or a 502 / 504 `RouterError`) and never lets one
reach a client.
"""

from __future__ import annotations

from http import HTTPStatus

import orjson


def vllm_error_type(status: int) -> str:
    """The `type` vLLM 0.33 gives an error of this HTTP status.

    vLLM names the errors its serving layer raises after their class (`BadRequestError`,
    `NotFoundError`, `ServiceUnavailableError`, `InternalServerError`: `create_error_response`
    in vllm/entrypoints/serve/exception_handling/error_response.py) and every other one
    after the status's phrase (`HTTPStatus(code).phrase`: its HTTPException handler and
    `GracefulHTTPError`); `code` is always the status as an integer.
    """
    named = _VLLM_NAMED.get(status)
    if named is not None:
        return named
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_VLLM_NAMED = {400: "BadRequestError", 404: "NotFoundError", 422: "UnprocessableEntityError",
               500: "InternalServerError", 501: "NotImplementedError", 503: "ServiceUnavailableError"}


class RouterError(Exception):
    """Base: an error answered to the client with `status` and vLLM's JSON error body.

    `type` follows from `status` as vLLM names it (`vllm_error_type`); `param` names the
    request field at fault where one is.
    """

    status = 500

    def __init__(self, message: str, *, param: str | None = None,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers

    @property
    def type(self) -> str:
        return vllm_error_type(self.status)

    def body(self) -> bytes:
        return error_body(self.message, self.status, self.param)


class BadRequest(RouterError):
    status = 400


class Unauthorized(RouterError):
    status = 401


class NotFound(RouterError):
    status = 404


class MethodNotAllowed(RouterError):
    status = 405


class PayloadTooLarge(RouterError):
    status = 413


class RateLimited(RouterError):
    status = 429


class UpstreamFailed(RouterError):
    status = 502


class NoHealthyEngine(RouterError):
    status = 503


class HoldRefused(RouterError):
    """The model's hold queue is at its bound (refused, or displaced by a fairer claim)."""

    status = 429


class HoldTimedOut(RouterError):
    """No engine of the model could take the request within the hold deadline, or the router
    stopped while it was held."""

    status = 503


class UpstreamTimedOut(RouterError):
    status = 504


def error_body(message: str, status: int, param: str | None = None) -> bytes:
    """`{"error": {"message", "type", "param", "code"}}`: vLLM 0.33's `ErrorResponse`
    (vllm/entrypoints/serve/engine/protocol.py), `code` the HTTP status."""
    return orjson.dumps({"error": {"message": message, "type": vllm_error_type(status), "param": param,
                                   "code": status}})


def sse_error_event(message: str, status: int = 502) -> bytes:
    """One SSE event carrying an error, written when a stream fails after its first byte
    (vLLM writes `data: <ErrorResponse>` the same way, then `data: [DONE]`)."""
    return b"data: " + error_body(message, status) + b"\n\n"


class UpstreamError(Exception):
    """The engine could not be reached or broke the exchange."""

    def __init__(self, message: str, *, engine: str, started: bool) -> None:
        super().__init__(message)
        self.engine = engine
        self.started = started  # the engine had begun answering


class UpstreamConnectError(UpstreamError):
    """No connection could be opened (refused, unreachable, connect timeout)."""


class UpstreamTimeout(UpstreamError):
    """The engine did not answer (or send the next chunk) in time; `deadline` names the
    request deadline missed (first_byte, inter_chunk, whole), "" for a transport timeout."""

    def __init__(self, message: str, *, engine: str, started: bool, deadline: str = "") -> None:
        super().__init__(message, engine=engine, started=started)
        self.deadline = deadline
