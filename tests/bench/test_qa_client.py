"""The streaming client's session and the endpoint probe."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bench.client import new_session, served_models
from bench.errors import EndpointError
from contracts import PATH_CHAT


def test_session_connections_disable_nagle(fake_engine):
    """Connections of the benchmark's session have TCP_NODELAY set (small SSE chunks are not held)."""
    body = {"model": "fake/llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}

    async def main():
        async with new_session(10.0) as session, session.post(fake_engine.url + PATH_CHAT, json=body) as resp:
            sock = resp.connection.transport.get_extra_info("socket")  # held while the stream is open
            return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    assert asyncio.run(main()) != 0


def test_probe_lists_models_and_rejects_non_openai_answers(fake_engine):
    """GET /v1/models yields the ids; a server answering something else is an EndpointError."""
    async def main(url):
        async with new_session(10.0) as session:
            return await served_models(session, url)

    assert asyncio.run(main(fake_engine.url)) == ["fake/llama"]
    with pytest.raises(EndpointError, match="answered 404"):
        asyncio.run(main(fake_engine.url + "/nowhere"))
