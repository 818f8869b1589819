"""The HTTP shell over real loopback: vLLM's wire format, metrics, journal, faults, disconnects."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
from emulator_promtext import parse, value

import contracts
from emulator.config import EngineConfig
from emulator.faults import Faults
from emulator.generation import Continuation, answer_text, generation_context
from emulator.runner import EmulatorCluster, run_emulators
from emulator.timing import Timing

MODEL = "test/model"
CONFIG = EngineConfig(model=MODEL, gpu_cache_tokens=50_000, timing=Timing(time_scale=0.01))
HISTORY = "lorem ipsum " * 2000  # ~6k tokens


def _serve(test, config: EngineConfig = CONFIG, engines: int = 1) -> None:
    async def main() -> None:
        async with run_emulators(config, engines) as cluster, aiohttp.ClientSession() as session:
            await test(cluster, session)
    asyncio.run(asyncio.wait_for(main(), 30))


def _chat(content: str = "hello", **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "system", "content": HISTORY},
                                         {"role": "user", "content": content}], **extra}


async def _sse(session: aiohttp.ClientSession, url: str, body: dict, **headers: str) -> list[bytes]:
    async with session.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        data = await resp.read()
    parts = data.split(b"\n\n")
    assert parts[-1] == b""
    return [p.removeprefix(b"data: ") for p in parts[:-1]]


async def _poll(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.01)


async def _stats(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(url + "/emulator/stats") as resp:
        return await resp.json()


def test_streamed_chat_has_role_tokens_finish_usage_and_done():
    """A streamed chat answer: role chunk, max_tokens content chunks, finish, usage, [DONE]."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        body = _chat(max_tokens=5, stream=True, stream_options={"include_usage": True})
        events = await _sse(session, cluster.urls[0] + contracts.PATH_CHAT, body,
                            **{contracts.HEADER_REQUEST_ID: "abc"})
        assert b"data: " + events[-1] + b"\n\n" == contracts.SSE_DONE
        chunks = [orjson.loads(e) for e in events[:-1]]
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
        assert len(contents) == 5 and chunks[-2]["choices"][0]["finish_reason"] == "length"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
        assert {c["id"] for c in chunks} == {"chatcmpl-abc"} and {c["model"] for c in chunks} == {MODEL}
    _serve(test)


def test_non_streamed_chat_and_completion_bodies():
    """Non-streamed answers carry the whole text, finish_reason and usage."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url = cluster.urls[0]
        async with session.post(url + contracts.PATH_CHAT, json=_chat(max_completion_tokens=4)) as resp:
            chat = await resp.json()
        async with session.post(url + contracts.PATH_COMPLETIONS,
                                json={"model": MODEL, "prompt": "abc", "max_tokens": 3}) as resp:
            completion = await resp.json()
        assert chat["object"] == "chat.completion" and chat["usage"]["completion_tokens"] == 4
        chat_context = generation_context(_chat())
        assert chat["choices"][0]["message"]["content"] == answer_text(chat_context, 4)
        assert completion["object"] == "text_completion"
        assert completion["choices"][0]["text"] == answer_text("abc", 3)
        assert completion["usage"] == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
    _serve(test)


def test_streamed_completion_ends_with_done():
    """A streamed completion sends text chunks and [DONE], no usage chunk unless asked."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        body = {"model": MODEL, "prompt": "abc", "max_tokens": 2, "stream": True}
        events = await _sse(session, cluster.urls[0] + contracts.PATH_COMPLETIONS, body)
        assert [orjson.loads(e)["choices"][0]["text"] for e in events[:-1]] == Continuation("abc").take(2)
        assert events[-1] == b"[DONE]"
    _serve(test)


def test_errors_have_vllm_status_and_body():
    """Bad JSON is 400, an unknown model 404, both with {"error": {message, type, code}}."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url = cluster.urls[0] + contracts.PATH_CHAT
        async with session.post(url, data=b"{oops", headers={"Content-Type": "application/json"}) as resp:
            bad = (resp.status, await resp.json())
        async with session.post(url, json={**_chat(), "model": "nope"}) as resp:
            missing = (resp.status, await resp.json())
        assert bad[0] == 400 and bad[1]["error"]["code"] == 400
        assert bad[1]["error"]["type"] == "BadRequestError"
        assert missing[0] == 404 and "nope" in missing[1]["error"]["message"]
    _serve(test)


def test_models_health_embeddings():
    """/v1/models lists the served model, /health is 200, embeddings return one vector per input."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url = cluster.urls[0]
        async with session.get(url + contracts.PATH_MODELS) as resp:
            models = await resp.json()
        async with session.get(url + contracts.PATH_HEALTH) as resp:
            health = resp.status
        async with session.post(url + contracts.PATH_EMBEDDINGS, json={"input": ["a", "b"]}) as resp:
            emb = await resp.json()
        assert [m["id"] for m in models["data"]] == [MODEL] and health == 200
        assert len(emb["data"]) == 2 and len(emb["data"][0]["embedding"]) == CONFIG.embedding_dim
    _serve(test)


def test_metrics_agree_with_stats_and_show_prefix_hits():
    """After two identical prompts, /metrics prefix counters equal the JSON stats and show hits."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url = cluster.urls[0]
        for _ in range(2):
            await _sse(session, url + contracts.PATH_CHAT, _chat(max_tokens=2, stream=True))
        async with session.get(url + contracts.PATH_METRICS) as resp:
            _, samples = parse(await resp.text())
        stats = await _stats(session, url)
        assert value(samples, contracts.VLLM_PREFIX_QUERIES) == stats["queried_tokens"] > 0
        assert value(samples, contracts.VLLM_PREFIX_HITS) == stats["gpu_hit_tokens"] > 0
        assert value(samples, contracts.VLLM_GENERATION_TOKENS) == 4
        assert value(samples, contracts.VLLM_TTFT + "_count") == 2
        assert value(samples, contracts.VLLM_RUNNING) == 0
    _serve(test)


def test_journal_keeps_server_side_timings_by_request_id():
    """/emulator/requests?id= returns arrival, first token, finish and cache hits of that request."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url = cluster.urls[0]
        await _sse(session, url + contracts.PATH_CHAT, _chat(max_tokens=3, stream=True),
                   **{contracts.HEADER_REQUEST_ID: "r-1"})
        async with session.get(url + "/emulator/requests", params={"id": "r-1"}) as resp:
            record = await resp.json()
        async with session.get(url + "/emulator/requests", params={"id": "r-2"}) as resp:
            unknown = resp.status
        assert record["status"] == "ok" and record["output_tokens"] == 3
        assert record["arrival"] <= record["first_token"] <= record["finish"]
        assert 0 < record["ttft_s"] <= record["e2e_s"] and unknown == 404
    _serve(test)


def test_engines_are_independent():
    """Two engines have their own ports and their own counters."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        await _sse(session, cluster.urls[0] + contracts.PATH_CHAT, _chat(max_tokens=1, stream=True))
        first, second = [await _stats(session, u) for u in cluster.urls]
        assert len(set(cluster.urls)) == 2 and first["requests"] == 1 and second["requests"] == 0
    _serve(test, engines=2)


def test_cached_tells_what_the_cache_holds_of_a_prompt_without_serving_it():
    """`POST /emulator/cached`: nothing before a chat is served, its whole blocks before the last
    token after; asking serves nothing (no request counted, no hit counted); a bad body is 400."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url, body = cluster.urls[0], _chat("abcd" * 300)

        async def cached() -> dict:
            async with session.post(url + "/emulator/cached", json=body) as resp:
                assert resp.status == 200
                return await resp.json()
        before = await cached()
        assert before["gpu_hit_tokens"] == before["cpu_hit_tokens"] == 0 and before["prompt_tokens"] > 300
        async with session.post(url + contracts.PATH_CHAT, json=body) as resp:
            assert resp.status == 200
            usage = (await resp.json())["usage"]
        counted = ("requests", "queried_tokens", "gpu_hit_tokens", "cpu_hit_tokens")
        stats = {k: v for k, v in (await _stats(session, url)).items() if k in counted}
        after = await cached()
        assert after["prompt_tokens"] == usage["prompt_tokens"] == before["prompt_tokens"]
        assert 0 < after["gpu_hit_tokens"] <= after["prompt_tokens"] - 1
        assert {k: v for k, v in (await _stats(session, url)).items() if k in counted} == stats
        async with session.post(url + "/emulator/cached", data=b"{") as resp:
            assert resp.status == 400
    _serve(test)


def test_status_fault_answers_api_but_not_admin():
    """status=503 makes chat and /health return 503 while /emulator/stats still answers."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url = cluster.urls[0]
        async with session.post(url + "/emulator/faults", json={"status": 503}) as resp:
            assert resp.status == 200
        async with session.post(url + contracts.PATH_CHAT, json=_chat()) as resp:
            chat = (resp.status, (await resp.json())["error"]["code"])
        async with session.get(url + contracts.PATH_HEALTH) as resp:
            health = resp.status
        assert chat == (503, 503) and health == 503
        assert (await _stats(session, url))["faults"]["status"] == 503
    _serve(test)


def test_fail_fault_before_output_and_mid_stream():
    """fail_rate=1 gives HTTP 500; with fail_after_tokens=2 the stream breaks after 2 tokens."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url = cluster.urls[0]
        await cluster.set_faults(0, Faults(fail_rate=1.0))
        async with session.post(url + contracts.PATH_CHAT, json=_chat(stream=True)) as resp:
            before = resp.status
        await cluster.set_faults(0, Faults(fail_rate=1.0, fail_after_tokens=2))
        events = await _sse(session, url + contracts.PATH_CHAT, _chat(max_tokens=10, stream=True))
        assert before == 500
        contents = [e for e in events if b'"content":" ' in e]
        assert len(contents) == 2 and orjson.loads(events[-2])["error"]["code"] == 500
        assert events[-1] == b"[DONE]"
    _serve(test)


def test_bad_fault_body_is_rejected():
    """An unknown fault name is a 400 naming the allowed fields; the faults stay unchanged."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        async with session.post(cluster.urls[0] + "/emulator/faults", json={"explode": True}) as resp:
            assert resp.status == 400 and "fail_rate" in (await resp.json())["error"]["message"]
        assert cluster.servers[0].runtime.faults.healthy
    _serve(test)


def test_disconnect_cancels_and_frees_the_batch_slot():
    """A client that leaves mid-stream frees its slot: running drops to 0, record says cancelled."""
    config = EngineConfig(model=MODEL, max_num_seqs=1, timing=Timing(time_scale=0.05))

    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url = cluster.urls[0]
        body = _chat(max_tokens=100_000, stream=True)
        async with session.post(url + contracts.PATH_CHAT, json=body,
                                headers={contracts.HEADER_REQUEST_ID: "gone"}) as resp:
            await resp.content.readline()
            resp.close()

        async def freed() -> bool:
            return (await _stats(session, url))["running"] == 0
        await _poll(freed)
        async with session.get(url + "/emulator/requests", params={"id": "gone"}) as resp:
            assert (await resp.json())["status"] == "cancelled"
    _serve(test, config)


def test_stall_holds_generation_but_not_health():
    """A stalled engine never answers generation (client times out) yet /health answers."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url = cluster.urls[0]
        await cluster.set_faults(0, Faults(stall=True))
        timed_out = False
        try:
            async with session.post(url + contracts.PATH_CHAT, json=_chat(),
                                    timeout=aiohttp.ClientTimeout(total=0.3)) as resp:
                await resp.read()
        except TimeoutError:
            timed_out = True
        async with session.get(url + contracts.PATH_HEALTH) as resp:
            assert resp.status == 200
        assert timed_out and (await _stats(session, url))["requests"] == 0
    _serve(test)


def test_dead_engine_refuses_connections_and_revives():
    """dead=True closes the listener (connection errors); clearing it serves again on the same port."""
    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url = cluster.urls[0]
        await cluster.set_faults(0, Faults(dead=True, revive_after_s=0.2))
        refused = False
        try:
            async with aiohttp.ClientSession() as fresh, fresh.get(url + contracts.PATH_HEALTH) as resp:
                await resp.read()
        except aiohttp.ClientConnectionError:
            refused = True
        assert refused

        async def healthy() -> bool:
            try:
                async with aiohttp.ClientSession() as fresh, fresh.get(url + contracts.PATH_HEALTH) as resp:
                    return resp.status == 200
            except aiohttp.ClientConnectionError:
                return False
        await _poll(healthy)
        assert cluster.urls[0] == url and not cluster.servers[0].runtime.faults.dead
    _serve(test)


def test_dying_drops_streams_in_flight():
    """A stream in flight when the engine dies ends with a connection error, not [DONE]."""
    config = EngineConfig(model=MODEL, timing=Timing(time_scale=0.05))

    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        url = cluster.urls[0]
        broken = False
        body = _chat(max_tokens=100_000, stream=True)
        async with session.post(url + contracts.PATH_CHAT, json=body) as resp:
            await resp.content.readline()
            await cluster.set_faults(0, Faults(dead=True))
            try:
                await resp.read()
            except aiohttp.ClientError:
                broken = True
        assert broken and cluster.servers[0].runtime.scheduler.num_running == 0
    _serve(test, config)


def test_stopping_with_a_stream_in_flight_returns_promptly():
    """Leaving run_emulators while a stream is open drops it instead of waiting for it."""
    config = EngineConfig(model=MODEL, timing=Timing(time_scale=0.05))

    async def main() -> bool:
        async with aiohttp.ClientSession() as session:
            async with run_emulators(config) as cluster:
                resp = await session.post(cluster.urls[0] + contracts.PATH_CHAT,
                                          json=_chat(max_tokens=100_000, stream=True))
                await resp.content.readline()
            try:
                await resp.read()
            except aiohttp.ClientError:
                return True
            return False
    assert asyncio.run(asyncio.wait_for(main(), 10))


def test_cpu_tier_hits_show_in_stats_but_not_in_vllm_hits():
    """A prompt pushed out of a small GPU tier comes back from the CPU tier: cpu_hit_tokens grow,
    while vllm:prefix_cache_hits_total (GPU hits only, as in vLLM) does not."""
    config = EngineConfig(model=MODEL, gpu_cache_tokens=8000, cpu_cache_tokens=50_000,
                          timing=Timing(time_scale=0.01))

    async def test(cluster: EmulatorCluster, session: aiohttp.ClientSession) -> None:
        first = {"model": MODEL, "prompt": "a" * 24_000, "max_tokens": 1}
        other = {"model": MODEL, "prompt": "b" * 24_000, "max_tokens": 1}
        for body in (first, other, first):
            async with session.post(cluster.urls[0] + contracts.PATH_COMPLETIONS, json=body) as resp:
                assert resp.status == 200
        stats = await _stats(session, cluster.urls[0])
        async with session.get(cluster.urls[0] + contracts.PATH_METRICS) as resp:
            _, samples = parse(await resp.text())
        assert stats["cpu_hit_tokens"] > 0 and stats["cpu_cached_tokens"] > 0
        assert value(samples, contracts.VLLM_PREFIX_HITS) == stats["gpu_hit_tokens"]
    _serve(test, config)
