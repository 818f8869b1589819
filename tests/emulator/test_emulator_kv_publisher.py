"""Emulated engines publish their KV events on ZMQ as vLLM 0.33 does, over loopback: live batches
the router's decoder reads, replay from a start seq with vLLM's end marker, and the KV-event
faults (drop, reorder, delay, reset, restart) doing what they say (issue 19)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import zmq
import zmq.asyncio
import zmq.utils.monitor

from contracts.kv_events import REPLAY_END_SEQ, topic
from emulator.config import EngineConfig, KvEventsSettings
from emulator.faults import Faults
from emulator.kv_wire import Wire
from emulator.runner import EmulatorCluster, EmulatorProcess, run_emulators
from emulator.timing import Timing
from emulator.tokenize import encode
from router.routing.kv.events import AllBlocksCleared, BlockStored, KvEventBatch, Tier, decode_message
from router.routing.kv.keys import block_keys
from router.routing.prompt import prompt_text
from stack_components.engine_check import engine_python

MODEL = "test/model"
RECV_S = 2.0


def _config(**kv) -> EngineConfig:
    return EngineConfig(model=MODEL, gpu_cache_tokens=20_000, max_model_len=4096,
                        timing=Timing(time_scale=0.01), kv_events=KvEventsSettings(**kv))


class _Client:
    """One engine's HTTP API and a SUB socket on its KV events."""

    def __init__(self, cluster: EmulatorCluster, session: aiohttp.ClientSession, ctx: zmq.asyncio.Context):
        self.url, self.session = cluster.urls[0], session
        self.publisher = cluster.servers[0].kv_publisher
        self.publisher_server = cluster.servers[0]
        assert self.publisher is not None
        self.sub = ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(self.publisher.endpoint)
        self.sent = 0

    async def complete(self, text: str) -> dict:
        body = {"model": MODEL, "prompt": text, "max_tokens": 1}
        async with self.session.post(self.url + "/v1/completions", json=body) as resp:
            assert resp.status == 200
            return await resp.json()

    async def faults(self, body: dict) -> dict:
        async with self.session.post(self.url + "/emulator/faults", json=body) as resp:
            assert resp.status == 200, await resp.text()
        async with self.session.get(self.url + "/emulator/faults") as resp:
            return await resp.json()

    def prompt(self) -> str:
        """A prompt no earlier one shares a block with: three full blocks and a tail."""
        self.sent += 1
        return f"{self.sent:04d}" * 16 * 3 + "tail"

    async def recv(self, timeout_s: float = RECV_S) -> KvEventBatch | None:
        if not await self.sub.poll(int(timeout_s * 1000)):
            return None
        return decode_message(await self.sub.recv_multipart())

    async def warm_up(self) -> int:
        """Send prompts until the SUB socket receives a batch (PUB drops what it sends before a
        subscriber has joined), drain; returns the seq the next batch gets."""
        deadline = time.monotonic() + 10
        while await self.recv(0.2) is None:
            assert time.monotonic() < deadline, "no KV-event batch reached the subscriber"
            await self.complete(self.prompt())
        while await self.recv(0.2) is not None:
            pass
        return self.publisher.next_seq


def _serve(test, config: EngineConfig | None = None) -> None:
    async def main() -> None:
        ctx = zmq.asyncio.Context()
        try:
            async with run_emulators(config or _config()) as cluster, aiohttp.ClientSession() as session:
                client = _Client(cluster, session, ctx)
                try:
                    await test(client)
                finally:
                    client.sub.close(linger=0)
        finally:
            ctx.term()
    asyncio.run(asyncio.wait_for(main(), 60))


async def _replay(client: _Client, start: int) -> list[list[bytes]]:
    """A DEALER's replay from `start`: every message up to and including the end marker."""
    dealer = client.sub.context.socket(zmq.DEALER)
    dealer.connect(client.publisher.replay_endpoint)
    try:
        await dealer.send_multipart([b"", start.to_bytes(8, "big")])
        out = []
        while not out or out[-1][2] != REPLAY_END_SEQ:
            assert await dealer.poll(int(RECV_S * 1000)), "the replay stopped before its end marker"
            out.append(await dealer.recv_multipart())
        return out
    finally:
        dealer.close(linger=0)


@pytest.mark.parametrize("wire", list(Wire))
def test_live_batches_carry_the_prompts_blocks_and_replay_returns_them(wire):
    """Each request's new blocks come live as one GPU BlockStored from the root, with the prompt's
    token ids (the router's keys of the prompt), on the engine's topic with consecutive seqs; a
    replay from the first of them returns the same messages, then vLLM's end marker."""
    async def test(client: _Client) -> None:
        start = await client.warm_up()
        prompts = [client.prompt() for _ in range(3)]
        live = []
        for text in prompts:
            await client.complete(text)
            live.append(await client.recv())
        assert [b.seq for b in live] == [start, start + 1, start + 2]
        for batch, text in zip(live, prompts, strict=True):
            assert batch.topic == topic("127.0.0.1", int(client.url.rsplit(":", 1)[1]), MODEL)
            (stored,) = batch.events
            assert isinstance(stored, BlockStored) and stored.tier is Tier.GPU
            assert stored.parent_block_hash is None and len(stored.block_hashes) == 3
            assert stored.token_ids == tuple(encode(text)[:48])
            keys = block_keys(encode(text))
            assert block_keys(stored.token_ids) == keys and len(keys) == 3
        replay = await _replay(client, start)
        assert replay[-1] == [b"", b"", REPLAY_END_SEQ, b""]
        assert [decode_message(m[1:]) for m in replay[:-1]] == live
    _serve(test, _config(wire=wire))


def test_dropped_batches_leave_a_gap_that_replay_fills():
    """`kv_drop_rate` 1: nothing comes live, yet each batch keeps its seq; the next live batch
    shows the gap, and a replay from its start returns the dropped batches."""
    async def test(client: _Client) -> None:
        start = await client.warm_up()
        await client.faults({"kv_drop_rate": 1.0})
        await client.complete(client.prompt())
        await client.complete(client.prompt())
        assert await client.recv(0.5) is None
        await client.faults({})
        await client.complete(client.prompt())
        after = await client.recv()
        assert after.seq == start + 2
        replay = await _replay(client, start)
        seqs = [decode_message(m[1:]).seq for m in replay[:-1]]
        assert seqs == [start, start + 1, start + 2] and client.publisher.outbox.dropped == 2
    _serve(test)


def test_reordered_batches_come_after_their_successor():
    """`kv_reorder_rate` 1: every other batch is held back and sent right after the next one."""
    async def test(client: _Client) -> None:
        start = await client.warm_up()
        await client.faults({"kv_reorder_rate": 1.0})
        for _ in range(4):
            await client.complete(client.prompt())
        seqs = [(await client.recv()).seq for _ in range(4)]
        assert seqs == [start + 1, start, start + 3, start + 2]
    _serve(test)


def test_a_held_batch_goes_out_when_the_faults_change():
    """A batch held for reordering with no successor is sent when the faults are set again."""
    async def test(client: _Client) -> None:
        start = await client.warm_up()
        await client.faults({"kv_reorder_rate": 1.0})
        await client.complete(client.prompt())
        assert await client.recv(0.3) is None
        await client.faults({})
        assert (await client.recv()).seq == start
    _serve(test)


def test_delayed_batches_arrive_late_and_in_order():
    """`kv_delay_s`: batches arrive no sooner than the delay after their request finished, in order."""
    async def test(client: _Client) -> None:
        start = await client.warm_up()
        await client.faults({"kv_delay_s": 0.6})
        began = time.monotonic()
        await client.complete(client.prompt())
        await client.complete(client.prompt())
        assert await client.recv(0.3) is None
        first, second = await client.recv(), await client.recv()
        assert (first.seq, second.seq) == (start, start + 1) and time.monotonic() - began >= 0.6
    _serve(test)


def test_reset_clears_the_gpu_on_the_same_stream():
    """`kv_clear: reset`: AllBlocksCleared as the next batch, the fault not kept; the same prompt
    then misses and is stored again."""
    async def test(client: _Client) -> None:
        text = client.prompt()
        await client.complete(text)
        start = await client.warm_up()
        faults = await client.faults({"kv_clear": "reset"})
        assert faults["kv_clear"] is None
        cleared = await client.recv()
        assert (cleared.seq, cleared.events) == (start, (AllBlocksCleared(),))
        await client.complete(text)
        again = await client.recv()
        assert again.seq == start + 1 and again.events[0].token_ids == tuple(encode(text)[:48])
    _serve(test)


def test_restart_starts_a_new_stream_with_an_empty_cache():
    """`kv_clear: restart`: the PUB socket goes away (its subscribers see the connection drop) and
    comes back on the same endpoint; no AllBlocksCleared; the next batch is seq 0 and stores the
    prompt again (its blocks are gone); a replay from 0 holds only the new stream."""
    async def test(client: _Client) -> None:
        text = client.prompt()
        await client.complete(text)
        await client.warm_up()
        endpoint, replay_endpoint = client.publisher.endpoint, client.publisher.replay_endpoint
        monitor = client.sub.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        try:
            await client.faults({"kv_clear": "restart"})
            assert await _monitor_event(monitor) == zmq.EVENT_DISCONNECTED
            assert await _monitor_event(monitor) == zmq.EVENT_HANDSHAKE_SUCCEEDED  # reconnected
        finally:
            client.sub.disable_monitor()
            monitor.close(linger=0)
        assert (client.publisher.endpoint, client.publisher.replay_endpoint) == (endpoint, replay_endpoint)
        assert await client.recv(0.3) is None
        await client.complete(text)
        batch = await client.recv()
        assert batch is not None and batch.seq == 0
        assert batch.events[0].token_ids == tuple(encode(text)[:48])
        replay = await _replay(client, 0)
        assert [decode_message(m[1:]).seq for m in replay[:-1]] == [0]
    _serve(test)


async def _monitor_event(monitor: zmq.asyncio.Socket) -> int:
    assert await monitor.poll(int(RECV_S * 1000) * 3), "no connection event on the SUB socket"
    event: dict = zmq.utils.monitor.parse_monitor_message(await monitor.recv_multipart())
    return int(event["event"])


def test_the_cli_publishes_and_lists_its_endpoints():
    """`llm-stack emulate --kv-events --kv-events-wire array`: the ready file lists each engine's
    endpoints; a subscriber reads positional events from the second engine."""
    with EmulatorProcess(engines=2, args=["--kv-events", "--kv-events-wire", "array", "--time-scale",
                                          "0.01", "--model", MODEL]) as proc:
        assert len(proc.kv_events) == len(proc.kv_replay) == 2 and len(set(proc.kv_events)) == 2
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(proc.kv_events[1])
        try:
            batch = asyncio.run(_until_batch(proc.urls[1], sub))
        finally:
            sub.close(linger=0)
            ctx.term()
        assert isinstance(batch.events[0], BlockStored) and batch.topic.endswith("@" + MODEL)


async def _until_batch(url: str, sub: zmq.Socket) -> KvEventBatch:
    async with aiohttp.ClientSession() as session:
        for i in range(50):
            body = {"model": MODEL, "prompt": f"{i:04d}" * 40, "max_tokens": 1}
            async with session.post(url + "/v1/completions", json=body) as resp:
                assert resp.status == 200
            if sub.poll(200):
                return decode_message(sub.recv_multipart())
    raise AssertionError("no KV-event batch reached the subscriber")


def test_live_frames_decode_with_vllms_own_classes():
    """What the PUB socket really sent, in both formats, with a CPU tier evicting, demoting and
    promoting: vLLM 0.33's `KVEventBatch` decoders (`.venv-engine`) accept every payload and
    encode each back to the same bytes."""
    frames: list[dict] = []

    async def collect(client: _Client, wire: Wire) -> None:
        await client.warm_up()
        texts = [client.prompt() for _ in range(6)]
        for text in [*texts, texts[0], texts[1]]:  # the last two come back from the CPU tier
            await client.complete(text)
        while (message := await _raw(client)) is not None:
            frames.append({"hex": message[2].hex(), "wire": wire.value})

    for wire in Wire:
        config = EngineConfig(model=MODEL, gpu_cache_tokens=8 * 16, cpu_cache_tokens=8 * 16,
                              max_model_len=100,
                              timing=Timing(time_scale=0.01), kv_events=KvEventsSettings(wire=wire))
        _serve(lambda client, wire=wire: collect(client, wire), config)
    decoded = _vllm_decode(frames)
    assert len(decoded) == len(frames) >= 16
    assert all(d["reencoded"] == f["hex"] for d, f in zip(decoded, frames, strict=True))
    seen = {(e["class"], e.get("medium")) for d in decoded for e in d["events"]}
    assert {("BlockStored", "GPU"), ("BlockStored", "CPU"), ("BlockRemoved", "GPU"),
            ("BlockRemoved", "CPU")} <= seen


async def _raw(client: _Client) -> list[bytes] | None:
    if not await client.sub.poll(500):
        return None
    return await client.sub.recv_multipart()


def _vllm_decode(payloads: list[dict]) -> list[dict]:
    root = Path(__file__).resolve().parents[2]
    python = engine_python(root)
    assert python is not None, "the engine-check venv is missing: run `make install` (.venv-engine)"
    env = dict(os.environ, VLLM_TARGET_DEVICE="cpu", VLLM_LOGGING_LEVEL="ERROR")
    done = subprocess.run([str(python), "-P", str(Path(__file__).with_name("vllm_kv_decode.py"))],
                          input=json.dumps({"payloads": payloads}), capture_output=True, text=True,
                          timeout=110, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert "error" not in result, result
    return result["decoded"]


def test_a_chats_router_keys_lead_the_engines_blocks():
    """For a chat the engine continues the rendered chat plus the generation prompt; the router's
    keys of the request (`prompt_text` through the emulator's tokenizer) are its leading blocks."""
    async def test(client: _Client) -> None:
        await client.warm_up()
        body = {"model": MODEL, "messages": [{"role": "system", "content": "s" * 150},
                                             {"role": "user", "content": "u" * 90}], "max_tokens": 1}
        async with client.session.post(client.url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
        (stored,) = (await client.recv()).events
        engine_keys, router_keys = block_keys(stored.token_ids), block_keys(encode(prompt_text(body)))
        assert len(router_keys) >= 3 and engine_keys[:len(router_keys)] == router_keys
    _serve(test)


def test_a_dead_engine_answers_no_replay():
    """While `dead`, a replay request gets nothing; revived, the engine answers again."""
    async def test(client: _Client) -> None:
        start = await client.warm_up()
        await client.complete(client.prompt())
        await client.recv()
        await client.publisher_server.set_faults(Faults(dead=True))
        dealer = client.sub.context.socket(zmq.DEALER)
        dealer.connect(client.publisher.replay_endpoint)
        try:
            await dealer.send_multipart([b"", start.to_bytes(8, "big")])
            assert not await dealer.poll(300)
        finally:
            dealer.close(linger=0)
        await client.publisher_server.set_faults(Faults())
        assert [decode_message(m[1:]).seq for m in (await _replay(client, start))[:-1]] == [start]
    _serve(test)
