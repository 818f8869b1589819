"""vLLM 0.33's small GET routes, answered for the whole router as vLLM answers them for one engine.

- `GET /version`: the engines' vLLM version (`{"version": ...}`, vllm/entrypoints/serve/
  instrumentator/basic.py), read from a healthy engine: the router has no vLLM of its own.
- `GET|POST /ping`: SageMaker's health check (vllm/entrypoints/serve/sagemaker/api_router.py),
  an empty answer with `/health`'s status.
- `GET /load`: `{"server_load": N}`, N the requests the router has in flight at its engines
  (vLLM counts its own in-flight generation and pooling requests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse, Response

from contracts import PATH_LOAD, PATH_PING, PATH_VERSION
from router.shell.errors import NoHealthyEngine, UpstreamError, UpstreamFailed

if TYPE_CHECKING:
    from router.shell.app import RouterApp


def add_vllm_routes(app: RouterApp) -> None:
    @app.get(PATH_VERSION, summary="The engines' vLLM version (from a healthy engine).")
    async def version() -> Response:
        engine = next((s for s in app.registry.states.values() if s.healthy), None)
        if engine is None:
            raise NoHealthyEngine("no healthy engine to ask for its version", headers=(("retry-after", "1"),))
        timeout = app.settings.health.timeout_s
        try:
            resp = await app.upstream.request(engine.id, "GET", PATH_VERSION, timeout=timeout)
            try:
                body, status = await resp.read(), resp.status
            finally:
                resp.release()
        except UpstreamError:
            raise UpstreamFailed("the engine did not answer GET /version") from None
        return Response(body, status_code=status, media_type="application/json")

    async def ping() -> Response:
        return Response(status_code=app.health_report()[0])

    for method in ("GET", "POST"):  # one route per method: each gets its own operation id
        app.add_api_route(PATH_PING, ping, methods=[method], operation_id=f"ping_{method.lower()}",
                          response_class=Response, summary="SageMaker health check: /health's status.",
                          responses={503: {"description": "The router cannot route (see /health)."}})

    @app.get(PATH_LOAD, summary="Requests in flight at this router's engines.")
    async def load() -> JSONResponse:
        return JSONResponse({"server_load": sum(s.in_flight for s in app.registry.states.values())})
