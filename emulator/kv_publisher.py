"""One engine's KV-event publisher on ZMQ, as vLLM 0.33's `ZmqEventPublisher`
(`vllm/distributed/kv_events.py`), with the KV-event faults of `emulator.faults`.

As vLLM's: a PUB socket (high-water mark `hwm`) sends each batch as `(topic, seq, payload)`,
`seq` 8 bytes big-endian from 0, +1 per batch; the last `buffer_steps` batches are kept; a
ROUTER socket on the replay endpoint (send high-water mark 2 * (buffer_steps + 1), as vLLM
sets) answers a request of exactly three frames `(identity, b"", start seq)` with every
buffered batch whose seq >= start as `(identity, b"", topic, seq, payload)` and then the end
marker `(identity, b"", b"", -1 as 8 bytes signed, b"")`; other requests are ignored. An
endpoint is bound (tcp or ipc); a tcp port 0 binds a free port (`endpoint` tells which).

Unlike vLLM's (a thread draining a queue), this one runs on the engine's event loop: a batch is
sent when the step that made it ends, replay requests are answered by one task. The faults
(`kv_drop_rate`, `kv_reorder_rate`, `kv_delay_s`) decide in `Outbox`, a pure value, which
batches go out live and when. `restart()` is what a restarted engine's new process does: it
closes both sockets, so every subscriber sees its connection drop, and binds them again on the
same endpoints (a restarted pod keeps its IP and the port in its command line); subscribers' SUB
sockets reconnect by themselves and see a stream from seq 0. Batches published while it rebinds
wait and go out once it is bound (a new process publishes nothing before it binds). A `dead`
engine leaves replay requests unanswered (its cache does not change, so nothing is published).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import zmq
import zmq.asyncio

from contracts.kv_events import REPLAY_END_SEQ
from emulator.config import KvEventsSettings
from emulator.faults import Faults

Message = tuple[bytes, bytes, bytes]
"""`(topic, seq, payload)` frames."""


@dataclass
class Outbox:
    """Which batches the PUB socket sends now (pure: the caller passes the draws)."""

    held: Message | None = None
    dropped: int = 0
    reordered: int = 0

    def route(self, message: Message, faults: Faults, drop_draw: float, reorder_draw: float) -> list[Message]:
        """The messages to send, in order, once `message` was published."""
        if drop_draw < faults.kv_drop_rate:
            self.dropped += 1
            return []
        if self.held is not None:
            held, self.held = self.held, None
            return [message, held]
        if reorder_draw < faults.kv_reorder_rate:
            self.held = message
            self.reordered += 1
            return []
        return [message]

    def release(self) -> list[Message]:
        """The held batch, if any (the faults changed)."""
        held, self.held = self.held, None
        return [] if held is None else [held]


@dataclass
class _Stream:
    """One publisher's numbering and replay buffer."""

    buffer_steps: int
    next_seq: int = 0
    buffer: deque[tuple[int, bytes]] = field(default_factory=deque)

    def add(self, payload: bytes) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self.buffer.append((seq, payload))
        if len(self.buffer) > self.buffer_steps:
            self.buffer.popleft()
        return seq


class KvPublisher:
    """PUB + replay ROUTER for one engine; `publish` is called from the engine's loop."""

    def __init__(self, settings: KvEventsSettings, *, topic: str, faults: Callable[[], Faults],
                 seed: int = 0) -> None:
        self.settings = settings
        self.topic = topic.encode("utf-8")
        self._faults = faults
        self._rng = random.Random(seed)
        self._stream = _Stream(settings.buffer_steps)
        self.outbox = Outbox()
        self.restarts = 0
        self._pub_ctx = zmq.Context()  # PUB sends never wait: a plain socket
        self._ctx = zmq.asyncio.Context()  # the replay ROUTER is read on the loop
        self._pub = self._pub_ctx.socket(zmq.PUB)
        self._replay: zmq.asyncio.Socket | None = None
        self._pending: deque[tuple[float, Message]] = deque()  # delayed messages, in send order
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._replay_task: asyncio.Task[None] | None = None
        self._bound = False
        """False while `restart` rebinds: live batches wait in `_pending`."""
        self.endpoint = ""
        self.replay_endpoint: str | None = None

    @property
    def next_seq(self) -> int:
        """The seq the next batch gets."""
        return self._stream.next_seq

    async def start(self) -> None:
        """Bind the sockets and start answering replays."""
        self._pub.set_hwm(self.settings.hwm)
        self.endpoint = _bind(self._pub, self.settings.endpoint)
        if self.settings.replay_endpoint is not None:
            self._replay = self._replay_socket()
            self.replay_endpoint = _bind(self._replay, self.settings.replay_endpoint)
            self._replay_task = asyncio.get_running_loop().create_task(self._serve_replay())
        self._bound = True
        self._tasks.append(asyncio.get_running_loop().create_task(self._send_delayed()))

    async def stop(self) -> None:
        """Stop the tasks and close the sockets."""
        tasks = [*self._tasks, *([self._replay_task] if self._replay_task is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._replay_task = None
        self._pub.close(linger=0)
        if self._replay is not None:
            self._replay.close(linger=0)
        self._pub_ctx.term()
        self._ctx.term()

    def publish(self, payload: bytes) -> int:
        """Number, buffer and (as the faults say) send one batch; returns its seq."""
        seq = self._stream.add(payload)
        faults = self._faults()
        message = (self.topic, seq.to_bytes(8, "big"), payload)
        draws = self._rng.random(), self._rng.random()
        self._send(self.outbox.route(message, faults, *draws), faults.kv_delay_s)
        return seq

    def faults_changed(self) -> None:
        """Send a batch held back for reordering."""
        self._send(self.outbox.release(), self._faults().kv_delay_s)

    def restart(self) -> None:
        """A new publisher: seq from 0, an empty buffer, nothing held or pending sent, both
        sockets closed and bound again on their endpoints (in a task: see `_rebind`)."""
        self._stream = _Stream(self.settings.buffer_steps)
        self.outbox.held = None
        self._pending.clear()
        self.restarts += 1
        self._bound = False
        if self._replay_task is not None:
            self._replay_task.cancel()
            self._replay_task = None
        self._pub.close(linger=0)
        if self._replay is not None:
            self._replay.close(linger=0)
        self._tasks = [t for t in self._tasks if not t.done()]  # earlier rebinds
        self._tasks.append(asyncio.get_running_loop().create_task(self._rebind()))

    async def _rebind(self) -> None:
        """Bind new sockets on the old endpoints; ZMQ closes the old listeners in its I/O
        thread, so a bind may find the port still held for a moment: retried until
        `_REBIND_TIMEOUT_S`, then raised."""
        self._pub = self._pub_ctx.socket(zmq.PUB)
        self._pub.set_hwm(self.settings.hwm)
        await _bind_again(self._pub, self.endpoint)
        if self._replay is not None and self.replay_endpoint is not None:
            self._replay = self._replay_socket()
            await _bind_again(self._replay, self.replay_endpoint)
            self._replay_task = asyncio.get_running_loop().create_task(self._serve_replay())
        self._bound = True
        self._wake.set()

    def _replay_socket(self) -> zmq.asyncio.Socket:
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.SNDHWM, 2 * (self.settings.buffer_steps + 1))
        return sock

    def _send(self, messages: list[Message], delay_s: float) -> None:
        if not messages:
            return
        if delay_s <= 0 and not self._pending and self._bound:
            for message in messages:
                _send_now(self._pub, message)
            return
        due = asyncio.get_running_loop().time() + delay_s
        self._pending.extend((due, m) for m in messages)
        self._wake.set()

    async def _send_delayed(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending or not self._bound:
                self._wake.clear()
                await self._wake.wait()
                continue
            due, message = self._pending[0]
            if due > loop.time():
                with contextlib.suppress(TimeoutError):  # a restart may empty the queue meanwhile
                    await asyncio.wait_for(self._wake.wait(), due - loop.time())
                self._wake.clear()
                continue
            self._pending.popleft()
            _send_now(self._pub, message)

    async def _serve_replay(self) -> None:
        assert self._replay is not None
        while True:
            frames = await self._replay.recv_multipart()
            if len(frames) != 3:
                continue  # vLLM logs "Invalid replay request" and answers nothing
            if self._faults().dead:
                continue  # a dead engine's process answers nothing
            identity, _, start = frames
            start_seq = int.from_bytes(start, "big")
            for seq, payload in list(self._stream.buffer):
                if seq >= start_seq:
                    reply = (identity, b"", self.topic, seq.to_bytes(8, "big"), payload)
                    await self._replay.send_multipart(reply)
            await self._replay.send_multipart((identity, b"", b"", REPLAY_END_SEQ, b""))


def _send_now(sock: zmq.Socket[bytes], message: Message) -> None:
    """PUB never blocks: past the high-water mark ZMQ drops the message, as for vLLM."""
    with contextlib.suppress(zmq.Again):
        sock.send_multipart(message, flags=zmq.NOBLOCK)


_REBIND_TIMEOUT_S = 5.0
_REBIND_RETRY_S = 0.01


async def _bind_again(sock: zmq.Socket[bytes] | zmq.asyncio.Socket, endpoint: str) -> None:
    """Bind `endpoint`, retrying while its port is still in use."""
    deadline = asyncio.get_running_loop().time() + _REBIND_TIMEOUT_S
    while True:
        try:
            sock.bind(endpoint)
            return
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or asyncio.get_running_loop().time() >= deadline:
                raise
        await asyncio.sleep(_REBIND_RETRY_S)


def _bind(sock: zmq.Socket[bytes] | zmq.asyncio.Socket, endpoint: str) -> str:
    """Bind `endpoint` (tcp port 0: a free port); returns the bound endpoint."""
    if endpoint.startswith("tcp://") and endpoint.endswith(":0"):
        sock.bind(endpoint[:-1] + "*")
        return str(sock.getsockopt_string(zmq.LAST_ENDPOINT))
    sock.bind(endpoint)
    return endpoint
