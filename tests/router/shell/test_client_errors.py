"""Bad input and access control over real HTTP: OpenAI-style errors, never a 500."""

from __future__ import annotations

import aiohttp
import orjson

from contracts import PATH_CHAT, PATH_EMBEDDINGS
from router.settings import Limits
from tests.router.fake_engine import FakeEngine
from tests.router.harness import json_session, run, running, settings_for

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


async def _call(s: aiohttp.ClientSession, method: str, url: str, data: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    async with s.request(method, url, data=data, headers=headers or {}) as resp:
        return resp.status, dict(resp.headers), orjson.loads(await resp.read())


BAD_BODIES = [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"messages": []}', 400, "'messages'"),
    (b'{"model": 3, "messages": [{"role": "user"}]}', 400, "'model'"),
    (b'{"model": "m"}', 400, "'messages'"),
    (b'{"model": "m", "messages": "hi"}', 400, "'messages'"),
    (b'{"model": "m", "messages": [1]}', 400, "'messages'"),
    (b'{"model": "m", "messages": [{"role": "user", "content": [{"text": 5}]}]}', 400, "content"),
    (b'{"model": "m", "messages": [{"content": "hi"}]}', 400, "'role'"),
    (b'{"model": "m", "messages": [{"role": "user"}], "stream": "maybe"}', 400, "'stream'"),
    (b'{"model": "nope", "messages": [{"role": "user"}]}', 404, "`nope` does not exist. Valid aliases: m."),
]


def test_malformed_bodies_get_400_or_404_naming_the_problem() -> None:
    """Each malformed body gets a 4xx OpenAI error whose message names what is wrong."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (_, url), json_session() as s:
            for raw, status, fragment in BAD_BODIES:
                got, _, err = await _call(s, "POST", url + PATH_CHAT, raw)
                assert (got, err["error"]["code"]) == (status, status), raw
                assert fragment in err["error"]["message"], (raw, err)
            got, _, err = await _call(s, "POST", url + PATH_EMBEDDINGS, b'{"model": "m"}')
            assert got == 400 and "'input'" in err["error"]["message"]
        assert engine.requests == 0
        await engine.stop()
    run(body())


def test_unknown_route_is_404_and_wrong_method_405() -> None:
    """Unknown paths are 404 and a GET on a proxied path is 405, both as JSON errors."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (_, url), json_session() as s:
            assert (await _call(s, "GET", url + "/nope"))[0] == 404
            assert (await _call(s, "GET", url + PATH_CHAT))[0] == 405
            assert (await _call(s, "POST", url + "/metrics"))[0] == 405
        await engine.stop()
    run(body())


def test_body_over_the_limit_is_413() -> None:
    """A body one byte over `max_body_bytes` is refused with 413 and never forwarded."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        limit = 1000
        settings = settings_for([engine.url], limits=Limits(max_body_bytes=limit))
        async with running(settings) as (_, url), json_session() as s:
            small = orjson.dumps({**CHAT, "pad": "x" * (limit - 100)})
            assert (await _call(s, "POST", url + PATH_CHAT, small))[0] == 200
            big = orjson.dumps({**CHAT, "pad": "x" * limit})
            status, _, err = await _call(s, "POST", url + PATH_CHAT, big)
            assert status == 413 and err["error"]["code"] == 413
        assert engine.requests == 1
        await engine.stop()
    run(body())


def test_api_keys_from_file_and_env_are_enforced(tmp_path: object) -> None:
    """Without a key 401, with a wrong one 401, with a key from the file or the env 200."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        keys = tmp_path / "keys"  # type: ignore[operator]
        keys.write_text("# team keys\nfile-key\n\n")
        settings = settings_for([engine.url], api_keys_file=str(keys), api_keys_env="ROUTER_KEYS")
        env = {"ROUTER_KEYS": "env-key-1, env-key-2"}
        async with running(settings, environ=env) as (_, url), json_session() as s:
            raw = orjson.dumps(CHAT)
            for headers, status in [({}, 401), ({"Authorization": "Bearer wrong"}, 401),
                                    ({"Authorization": "Basic file-key"}, 401),
                                    ({"Authorization": "Bearer file-key"}, 200),
                                    ({"Authorization": "Bearer env-key-2"}, 200)]:
                got, _, answer = await _call(s, "POST", url + PATH_CHAT, raw, headers)
                assert got == status, headers
                assert "wrong" not in str(answer) and "file-key" not in str(answer)  # never echoed
            assert (await _call(s, "GET", url + "/v1/models"))[0] == 401
            assert (await _call(s, "GET", url + "/health"))[0] == 200
        assert engine.requests == 2
        await engine.stop()
    run(body())


def test_rate_limit_answers_429_with_retry_after() -> None:
    """Past the burst, a caller gets 429 with Retry-After; other endpoints are unaffected."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        settings = settings_for([engine.url], limits=Limits(rate_limit_rps=0.5, rate_limit_burst=3))
        async with running(settings) as (_, url), json_session() as s:
            raw = orjson.dumps(CHAT)
            statuses = [(await _call(s, "POST", url + PATH_CHAT, raw))[:2] for _ in range(5)]
            assert [st for st, _ in statuses] == [200, 200, 200, 429, 429]
            assert int(statuses[3][1]["Retry-After"]) >= 1
        assert engine.requests == 3
        await engine.stop()
    run(body())


def test_stream_flag_is_read_as_vllm_reads_it() -> None:
    """vLLM's pydantic models take `"stream": "true"` or `1` as true (lax mode): so does the
    router, which streams them (issue 22: accept what vLLM accepts)."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (_, url), json_session() as s:
            for flag in (b'"true"', b"1", b'"yes"'):
                raw = b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": %s}' % flag
                async with s.post(url + PATH_CHAT, data=raw) as resp:
                    assert resp.status == 200 and resp.content_type == "text/event-stream", flag
                    assert (await resp.read()).endswith(b"data: [DONE]\n\n"), flag
        await engine.stop()
    run(body())
