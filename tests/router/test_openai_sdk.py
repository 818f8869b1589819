"""The official `openai` SDK, sync and async, against the router in front of emulated engines:
answers, streams, cancels, errors and raw headers come out as they do from vLLM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import openai

from emulator.config import EngineConfig, Timing
from emulator.runner import run_emulators
from router.settings import HealthSettings, PolicySettings, RouterSettings, StaticEngine
from router.shell.app import create_app
from tests.router.harness import run, until

MODEL = "emu"
HI = [{"role": "user", "content": "hi"}]
HEALTH = HealthSettings(interval_s=0.1, timeout_s=1.0, unhealthy_after=3, metrics_interval_s=0.1)


@asynccontextmanager
async def _router(engines: int = 2, time_scale: float = 0.001) -> AsyncIterator[tuple[str, list[str]]]:
    config = EngineConfig(model=MODEL, timing=Timing(time_scale=time_scale))
    async with run_emulators(config, engines=engines) as cluster:
        settings = RouterSettings(engines=tuple(StaticEngine(url=u) for u in cluster.urls), models=(MODEL,),
                                  policy=PolicySettings(kind="round_robin"), host="127.0.0.1", health=HEALTH)
        async with create_app(settings) as app:
            port = await app.serve("127.0.0.1", 0)
            await until(lambda: app.registry.healthy_count() == engines)
            yield f"http://127.0.0.1:{port}/v1", list(cluster.urls)


def _client_kwargs(base_url: str) -> dict[str, object]:
    return {"base_url": base_url, "api_key": "unused", "max_retries": 0, "timeout": 10}


def test_async_client_chat_completion_stream_and_models() -> None:
    """Non-streamed and streamed chat, a text completion and the model list parse as the SDK's
    own types; the stream ends with a finish reason and usage."""
    async def body() -> None:
        async with _router() as (base, _):
            client = openai.AsyncOpenAI(**_client_kwargs(base))
            chat = await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=8)
            assert chat.choices[0].message.content and chat.usage and chat.usage.completion_tokens == 8
            stream = await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=8, stream=True,
                                                          stream_options={"include_usage": True})
            chunks = [c async for c in stream]
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
            assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8
            text = await client.completions.create(model=MODEL, prompt="once upon", max_tokens=4)
            assert text.choices[0].text
            models = await client.models.list()
            assert [m.id for m in models.data] == [MODEL] and isinstance(models.data[0].created, int)
            await client.close()
    run(body(), timeout=30)


def test_sync_client_errors_are_the_sdks_typed_errors() -> None:
    """An unknown model is `NotFoundError` (404), a bad body `BadRequestError` (400), each with
    vLLM's error object; the raw response carries the JSON content type."""
    async def body() -> None:
        async with _router() as (base, _):
            def calls() -> None:
                client = openai.OpenAI(**_client_kwargs(base))
                try:
                    client.chat.completions.create(model="nope", messages=HI)
                    raise AssertionError("no error for an unknown model")
                except openai.NotFoundError as exc:
                    assert exc.status_code == 404 and exc.body["param"] == "model"
                    assert "`nope` does not exist" in exc.body["message"]
                try:
                    client.chat.completions.create(model=MODEL, messages=[])
                    raise AssertionError("no error for empty messages")
                except openai.BadRequestError as exc:
                    assert exc.status_code == 400 and exc.body["type"] == "BadRequestError"
                raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HI, max_tokens=2)
                assert raw.headers["content-type"].startswith("application/json")
                assert raw.parse().choices[0].message.content
                client.close()
            await asyncio.to_thread(calls)
    run(body(), timeout=30)


def test_closing_a_stream_early_cancels_it_at_the_engine() -> None:
    """An SDK client that stops reading and closes its stream frees the engine's batch slot:
    the engine's journal records the request as cancelled."""
    async def body() -> None:
        async with _router(engines=1, time_scale=0.05) as (base, engines):
            client = openai.AsyncOpenAI(**_client_kwargs(base))
            stream = await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=500,
                                                          stream=True)
            async for _ in stream:
                break
            await stream.close()
            await until(lambda: _cancelled_at(engines[0]))
            await client.close()
    run(body(), timeout=30)


async def _cancelled_at(engine_url: str) -> bool:
    async with aiohttp.ClientSession() as s, s.get(engine_url + "/emulator/requests") as resp:
        return any(r["status"] == "cancelled" for r in (await resp.json())["requests"])
