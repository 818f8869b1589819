"""Where a vLLM client meets the router it sees vLLM 0.33's answers: its error shape, its
Content-Type rule, `model` optional with one served model, model cards with vLLM's fields, a
413 that closes the connection, one cache-control header per stream."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import aiohttp
import orjson
import pytest

from contracts import PASSTHROUGH_PATHS, PATH_CHAT, PATH_LOAD, PATH_MODELS, PATH_PING, PATH_VERSION
from router.settings import Limits
from router.shell.errors import RouterError, error_body, vllm_error_type
from stack_components.engine_check import engine_python
from tests.router.fake_engine import FakeEngine
from tests.router.harness import json_session, run, running, settings_for, until

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


async def _post(s: aiohttp.ClientSession, url: str, data: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with s.post(url + PATH_CHAT, data=data, headers=headers) as resp:
        return resp.status, orjson.loads(await resp.read())


def test_only_an_application_json_body_is_accepted() -> None:
    """text/plain, a form or no Content-Type get vLLM's 400; JSON with a charset passes."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        raw = orjson.dumps(CHAT)
        async with running(settings_for([engine.url])) as (_, url), aiohttp.ClientSession() as s:
            for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx", None):
                headers = {} if ctype is None else {"content-type": ctype}
                kwargs = {"skip_auto_headers": ("Content-Type",)} if ctype is None else {}
                async with s.post(url + PATH_CHAT, data=raw, headers=headers, **kwargs) as resp:
                    err = orjson.loads(await resp.read())["error"]
                    assert resp.status == 400, ctype
                    assert err["message"] == "Unsupported Media Type: Only 'application/json' is allowed"
            status, _ = await _post(s, url, raw, {"content-type": "Application/JSON; charset=utf-8"})
            assert status == 200
        assert engine.requests == 1
        await engine.stop()
    run(body())


def test_a_request_without_model_goes_to_the_one_served_model() -> None:
    """With one model served, `model` absent, null or "" is that model (as vLLM); with two,
    a 400 naming `model` and the served ones."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (app, url), json_session() as s:
            await until(lambda: app.registry.served_models() == ["m"])
            for payload in ({"messages": CHAT["messages"]}, {**CHAT, "model": None}, {**CHAT, "model": ""}):
                assert (await _post(s, url, orjson.dumps(payload), {}))[0] == 200, payload
        assert engine.requests == 3
        a, b = FakeEngine(model="a"), FakeEngine(model="b")
        for e in (a, b):
            await e.start()
        settings = settings_for([a.url, b.url], models=())
        async with running(settings) as (app, url), json_session() as s:
            await until(lambda: app.registry.served_models() == ["a", "b"])
            status, answer = await _post(s, url, orjson.dumps({"messages": CHAT["messages"]}), {})
            assert status == 400 and answer["error"]["param"] == "model"
            assert "(served: a, b)" in answer["error"]["message"]
        assert a.requests == b.requests == 0
        for e in (engine, a, b):
            await e.stop()
    run(body())


def test_model_cards_carry_vllms_fields_as_the_engines_report_them() -> None:
    """`/v1/models` cards have `created`, `root`, `parent`, `max_model_len` and `permission`,
    `root` and `max_model_len` as the engine's own card says."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (app, url), json_session() as s:
            await until(lambda: "m" in app.registry.cards)
            async with s.get(url + PATH_MODELS) as resp:
                [card] = (await resp.json())["data"]
        assert card["id"] == "m" and card["root"] == "/models/m" and card["max_model_len"] == 8192
        assert isinstance(card["created"], int) and card["parent"] is None
        assert card["permission"][0]["object"] == "model_permission"
        await engine.stop()
    run(body())


def test_a_413_closes_the_connection_so_no_request_waits_on_it() -> None:
    """After a 413 the router closes the connection (the unread body cannot be parsed as the
    next request), so a client never waits on an answer that cannot come."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url], limits=Limits(max_body_bytes=100))) as (_, url):
            reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
            payload = orjson.dumps({**CHAT, "pad": "x" * 200})
            writer.write(b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n%s" % (PATH_CHAT.encode(), len(payload), payload))
            answer = await asyncio.wait_for(reader.read(), 5)  # read() returns at EOF: closed
            writer.close()
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 413") and b"connection: close" in head
        assert engine.requests == 0
        await engine.stop()
    run(body())


def test_a_stream_carries_one_cache_control_header() -> None:
    """The engine's own cache-control is relayed, not doubled by the router's."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (_, url), json_session() as s, \
                s.post(url + PATH_CHAT, json={**CHAT, "stream": True}) as resp:
            await resp.read()
            assert resp.headers.getall("cache-control") == ["no-cache"]
        await engine.stop()
    run(body())


def _error_bodies() -> dict[str, bytes]:
    bodies = {f"class {cls.__name__}": cls("x").body() for cls in _all_router_errors()}
    bodies["bad param"] = error_body("bad", 400, "messages")
    return bodies


def _all_router_errors() -> list[type[RouterError]]:
    found, todo = [], [RouterError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_router_error_is_vllms_error_shape() -> None:
    """Each RouterError kind renders {message, type, param, code} with `code` its status and
    `type` named as vLLM names it."""
    for cls in _all_router_errors():
        err = orjson.loads(cls("x").body())["error"]
        assert set(err) == {"message", "type", "param", "code"}, cls
        assert err["code"] == cls.status and err["type"] == vllm_error_type(cls.status), cls
    assert vllm_error_type(400) == "BadRequestError" and vllm_error_type(429) == "Too Many Requests"


_VLLM_CHECK = """
import json, sys
from vllm.entrypoints.serve.engine.protocol import ErrorResponse, ModelList
from vllm.entrypoints.serve.exception_handling.error_response import create_error_response
cases = json.load(sys.stdin)
for name, body in cases["errors"].items():
    err = ErrorResponse.model_validate(body).error
    assert body["error"]["code"] == err.code, name
    if err.code == 400:
        assert err.type == create_error_response(ValueError("x")).error.type, name
ModelList.model_validate(cases["models"])
print("ok", len(cases["errors"]))
"""


def test_error_bodies_and_the_model_list_pass_vllms_own_models() -> None:
    """vLLM 0.33's `ErrorResponse` and `ModelList` (in .venv-engine) accept every error body
    the router can answer and its `/v1/models` answer."""
    python = engine_python()
    if python is None:
        pytest.fail("no .venv-engine: run `make install` (the vLLM check cannot be skipped)")
    from router.shell.app import model_card

    models = {"object": "list", "data": [model_card("m", {"root": "/models/m", "max_model_len": 8192}, 1)]}
    cases = {"errors": {k: orjson.loads(v) for k, v in _error_bodies().items()}, "models": models}
    env = dict(os.environ, VLLM_TARGET_DEVICE="cpu", VLLM_LOGGING_LEVEL="ERROR")
    done = subprocess.run([str(python), "-c", _VLLM_CHECK], input=json.dumps(cases), capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok", str(len(cases["errors"]))]


def test_the_openapi_document_declares_bearer_keys_when_keys_are_configured() -> None:
    """With API keys the proxied routes and /v1/models declare bearer auth; /health does not;
    without keys nothing does."""
    from router.shell.app import create_app

    keyed = create_app(settings_for(["http://127.0.0.1:1"], api_keys_env="K"), environ={"K": "k1"}).openapi()
    assert keyed["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert keyed["paths"][PATH_CHAT]["post"]["security"] == [{"apiKey": []}]
    assert keyed["paths"][PATH_MODELS]["get"]["security"] == [{"apiKey": []}]
    assert "security" not in keyed["paths"]["/health"]["get"]
    open_doc = create_app(settings_for(["http://127.0.0.1:1"])).openapi()
    assert "securitySchemes" not in open_doc["components"]
    assert all("security" not in op for ops in open_doc["paths"].values() for op in ops.values())


def test_a_lone_surrogate_escape_passes_and_bad_bytes_are_named_where_they_are() -> None:
    """`\\ud800` in a JSON string is accepted (vLLM reads JSON with the standard library, which
    accepts it); invalid UTF-8 is a 400 naming the byte and its offset in the body."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (_, url), json_session() as s:
            lone = b'{"model": "m", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
            assert (await _post(s, url, lone, {}))[0] == 200
            bad = b'{"model": "m", "messages": [{"role": "user", "content": "ab\xffc"}]}'
            status, answer = await _post(s, url, bad, {})
            offset = bad.index(0xFF)
            assert status == 400
            message = answer["error"]["message"]
            assert message == f"request body is not valid UTF-8: byte 0xff at byte offset {offset}"
        assert engine.requests == 1
        await engine.stop()
    run(body())


def test_vllms_other_routes_are_routed_by_model_or_answered_for_the_router() -> None:
    """/tokenize, /v1/responses, /v1/rerank ... reach the model's engine untouched; /version
    is the engines' own, /ping has /health's status (503 while draining), /load counts
    requests in flight."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (app, url), json_session() as s:
            await until(lambda: app.registry.healthy_count() == 1)
            for path in PASSTHROUGH_PATHS:
                async with s.post(url + path, json={"model": "m", "prompt": "hi", "tokens": [1]}) as resp:
                    assert resp.status == 200, path
            async with s.post(url + "/tokenize", json={"model": "nope", "prompt": "hi"}) as resp:
                assert resp.status == 404
            async with s.get(url + PATH_VERSION) as resp:
                assert await resp.json() == {"version": "0.33.0"}
            for method in ("GET", "POST"):
                async with s.request(method, url + PATH_PING) as resp:
                    assert resp.status == 200 and await resp.read() == b""
            async with s.get(url + PATH_LOAD) as resp:
                assert await resp.json() == {"server_load": 0}
            app.draining = True  # /ping follows /health: 503 once the router cannot take requests
            async with s.get(url + PATH_PING) as resp:
                assert resp.status == 503
            app.draining = False
        assert engine.paths == list(PASSTHROUGH_PATHS)
        await engine.stop()
    run(body())
