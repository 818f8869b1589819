"""Hypothesis over random bodies, paths and headers sent as raw bytes: never a 500."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.contracts import PROXIED_PATHS
from tests.router.fake_engine import FakeEngine
from tests.router.harness import running, settings_for


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
    name, values = required[path]
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
    raw = (b"%s %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: %d\r\n%s\r\n%s"
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
