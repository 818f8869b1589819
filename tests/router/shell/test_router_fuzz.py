"""Fuzzing the router: Hypothesis over random bodies, paths and headers sent as raw bytes,
schemathesis over the router's own OpenAPI schema, and malformed bytes, limits and slow
clients: never a 5xx the router caused, the router stays up, every error is clear JSON."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from contracts import PROXIED_PATHS
from router.settings import Limits
from tests.router.fake_engine import FakeEngine
from tests.router.harness import run, running, settings_for


@pytest.fixture(scope="module")
def router_port() -> Iterator[int]:
    """A router and one fake engine on a private loop in a test thread (the fuzzer is sync)."""
    loop = asyncio.new_event_loop()
    ready: list[int] = []
    stop = asyncio.Event()

    async def main() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (_, url):
            ready.append(int(url.rsplit(":", 1)[1]))
            await stop.wait()
        await engine.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    deadline = 100
    while not ready and deadline:
        thread.join(0.05)
        deadline -= 1
    assert ready, "router did not start within 5 s"
    yield ready[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(5)
    loop.close()


def _exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
json_values = st.recursive(
    scalars | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
text_part = st.fixed_dictionaries({"type": st.just("text"), "text": scalars | json_values})
parts = st.lists(text_part | json_values, max_size=3)
messages = st.lists(st.fixed_dictionaries({"content": parts | json_values}, optional={"role": json_values}),
                    min_size=1, max_size=3)
models = st.one_of(st.just("m"), st.just("m"), st.just("m"), st.sampled_from(["", "x"]), json_values)
streams = st.booleans() | st.booleans() | json_values
required = {"/v1/chat/completions": ("messages", st.one_of(messages, messages, messages, json_values)),
            "/v1/completions": ("prompt", st.one_of(json_values, st.lists(json_values))),
            "/v1/embeddings": ("input", json_values)}


def openai_like(path: str) -> st.SearchStrategy[tuple[str, dict]]:
    """A body for `path`: its required field mostly present, every field of random type."""
    name, values = required.get(path, ("prompt", json_values))  # pass-through routes: any field
    body = st.fixed_dictionaries({"model": models, name: values}, optional={"stream": streams})
    return st.tuples(st.just(path), body)


chat_like = st.fixed_dictionaries({"model": models}, optional={"messages": messages, "prompt": json_values})
bodies = st.binary(max_size=200) | json_values.map(orjson.dumps) | chat_like.map(orjson.dumps)
header_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1, max_size=12)
header_values = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
paths = st.sampled_from([*PROXIED_PATHS, "/v1/models", "/health", "/metrics", "/x", "/v1/completions?a=1"])


def _status(port: int, method: str, path: str, body: bytes, headers: list[tuple[str, bytes]]) -> int:
    head = b"".join(b"%s: %s\r\n" % (name.encode(), value) for name, value in headers
                    if name not in ("content-length", "transfer-encoding", "connection"))
    raw = (b"%s %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n"
           b"content-length: %d\r\n%s\r\n%s"
           % (method.encode(), path.encode(), len(body), head, body))
    answer = _exchange(port, raw)
    status = int(answer.split(b" ", 2)[1])
    assert status != 500 and status < 600, answer[:300]
    if status >= 400:
        assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["message"]
    return status


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, method=st.sampled_from(["POST", "GET", "PUT"]), body=bodies,
       headers=st.lists(st.tuples(header_names, header_values), max_size=4))
def test_random_requests_never_get_a_500(router_port: int, path: str, method: str, body: bytes,
                                         headers: list[tuple[str, bytes]]) -> None:
    """Whatever path, method, headers and body a client sends, the answer is never a 500."""
    _status(router_port, method, path, body, headers)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(PROXIED_PATHS).flatmap(openai_like))
def test_random_openai_bodies_never_get_a_500(router_port: int, case: tuple[str, dict]) -> None:
    """Bodies shaped like OpenAI requests, with random field types, get a 200 or a 4xx, never a 500."""
    path, body = case
    assert _status(router_port, "POST", path, orjson.dumps(body), []) in (200, 400, 404)


# --- from the OpenAPI schema (schemathesis) --------------------------------------------

@pytest.fixture(scope="module")
def api_schema(router_port: int) -> schemathesis.BaseSchema:
    """The running router's own /openapi.json."""
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{router_port}/openapi.json")


def test_schema_generated_requests_get_no_router_5xx_and_json_errors(
        api_schema: schemathesis.BaseSchema, router_port: int) -> None:
    """Every operation in the router's schema, with valid and invalid inputs generated from it
    (20 positive cases each, 20 negative ones for each request body): no 5xx (a healthy
    engine sits behind), every error is OpenAI's JSON shape."""
    base = f"http://127.0.0.1:{router_port}"
    calls: dict[str, int] = {}
    answered: dict[str, int] = {}  # 200s: cases that went through the proxy to the engine and back
    operations = [result.ok() for result in api_schema.get_all_operations()]
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)

    # Negative cases need an input to break: a request body (the GETs and /ping take none).
    cases = [(op, mode) for op in operations for mode in modes
             if mode is modes[0] or op.get_request_payload_content_types()]
    for operation, mode in cases:
        @settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(mode))
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=base, timeout=10)
            calls[case.path] = calls.get(case.path, 0) + 1
            if response.status_code == 200:
                answered[case.path] = answered.get(case.path, 0) + 1
            assert response.status_code < 500, (case.path, response.status_code, response.text[:300])
            # What the answers look like is the router's: checked against its document. Whether a
            # field the router passes through untouched is accepted is the engine's decision (vLLM
            # rejects what its models refuse); the fake engine here accepts everything, so the
            # data-acceptance checks would judge the fake, not the router.
            case.validate_response(response, excluded_checks=[negative_data_rejection,
                                                              positive_data_acceptance])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["message"] and error["type"] and "code" in error

        check()
    assert {*PROXIED_PATHS, "/v1/models", "/health", "/metrics"} <= set(calls)
    assert set(PROXIED_PATHS) <= set(answered), answered


# --- malformed bytes, limits, slow clients ----------------------------------------------

def test_malformed_json_and_invalid_utf8_get_400_json(router_port: int) -> None:
    """Truncated JSON, invalid UTF-8 inside a string, and a bare non-object: 400, JSON error."""
    for body in (b'{"model": "m", "prompt": "hi"', b'{"model": "m", "prompt": "\xff\xfe"}', b"[1, 2]"):
        assert _status(router_port, "POST", PROXIED_PATHS[1], body, []) == 400


def test_an_oversized_body_gets_413_without_reaching_the_engine() -> None:
    """A body over `limits.max_body_bytes` is refused with 413 JSON, by its declared length."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        settings = settings_for([engine.url], limits=Limits(max_body_bytes=1000))
        async with running(settings) as (_, url):
            port = int(url.rsplit(":", 1)[1])
            big = orjson.dumps({"model": "m", "prompt": "x" * 5000})
            status = await asyncio.to_thread(_status, port, "POST", PROXIED_PATHS[1], big, [])
        assert status == 413 and engine.requests == 0
        await engine.stop()
    run(body())


def test_a_slow_client_does_not_hold_up_others() -> None:
    """A client dribbling its body byte by byte: others are served meanwhile, and it is
    answered once its body is complete."""
    async def body() -> None:
        engine = FakeEngine()
        await engine.start()
        async with running(settings_for([engine.url])) as (_, url):
            port = int(url.rsplit(":", 1)[1])
            data = orjson.dumps({"model": "m", "prompt": "slow"})
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n" % (PROXIED_PATHS[1].encode(), len(data)))
            for i, byte in enumerate(data):
                writer.write(bytes([byte]))
                await writer.drain()
                if i == 5:  # mid-body: another client gets its answer
                    other = orjson.dumps({"model": "m", "prompt": "fast"})
                    assert await asyncio.to_thread(_status, port, "POST", PROXIED_PATHS[1], other, []) == 200
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            writer.close()
        assert engine.requests == 2
        await engine.stop()
    run(body())
