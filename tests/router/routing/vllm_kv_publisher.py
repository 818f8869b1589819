"""Publish KV-event batches with vLLM's own code and report the bytes a subscriber receives.
Runs INSIDE the engine-check tool venv (`.venv-engine`: the engine image's vLLM), never
imported by the suite:

    .venv-engine/bin/python -P tests/router/routing/vllm_kv_publisher.py < spec.json > frames.json

stdin: `{"dir": <a directory for the sockets>, "topic": str, "batches": [[event, ...], ...]}`;
an event is `{"type": "BlockStored" | "BlockRemoved" | "AllBlocksCleared", "positional": bool,
...vLLM's fields}`, a hash written `{"hex": "..."}` (bytes) or an int. The batches are built as
vLLM's `KVEventBatch` of its `BlockStored` / `BlockRemoved` / `AllBlocksCleared` (with
`"positional": true`: the same classes with `array_like=True`, the encoding vLLM used before PR
#42892) and published by vLLM's `ZmqEventPublisher` on ipc:// sockets (no network).
stdout: `{"live": [[hex frame, ...], ...], "replay_dealer": [...], "replay_req": [...]}`: the
messages a SUB socket received, those a DEALER received replaying from the first test batch's
seq (end marker included), and those a REQ socket received for the same request.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import zmq
from vllm.distributed import kv_events as vk

DEADLINE_S = 20.0
QUIET_S = 1


# msgspec tags a struct by its class name unless told: the subclasses carry vLLM's tags
class PositionalStored(vk.BlockStored, array_like=True, tag="BlockStored"):  # type: ignore[call-arg]
    """vLLM's BlockStored, encoded as before PR #42892 (tag then fields, by position)."""


class PositionalRemoved(vk.BlockRemoved, array_like=True, tag="BlockRemoved"):  # type: ignore[call-arg]
    """vLLM's BlockRemoved, encoded by position."""


class PositionalCleared(vk.AllBlocksCleared, array_like=True,  # type: ignore[call-arg]
                        tag="AllBlocksCleared"):
    """vLLM's AllBlocksCleared, encoded by position."""


CLASSES = {
    (False, "BlockStored"): vk.BlockStored, (False, "BlockRemoved"): vk.BlockRemoved,
    (False, "AllBlocksCleared"): vk.AllBlocksCleared,
}


def _hash(value: Any) -> Any:
    return bytes.fromhex(value["hex"]) if isinstance(value, dict) else value


def _event(spec: dict[str, Any]) -> Any:
    spec = dict(spec)
    kind, positional = spec.pop("type"), spec.pop("positional", False)
    if "block_hashes" in spec:
        spec["block_hashes"] = [_hash(h) for h in spec["block_hashes"]]
    if spec.get("parent_block_hash") is not None:
        spec["parent_block_hash"] = _hash(spec["parent_block_hash"])
    cls = _positional_class(kind) if positional else CLASSES[(False, kind)]
    return cls(**spec)


def _positional_class(kind: str) -> Any:
    return {"BlockStored": PositionalStored, "BlockRemoved": PositionalRemoved,
            "AllBlocksCleared": PositionalCleared}[kind]


def _recv_count(sock: zmq.Socket, count: int) -> list[list[str]]:
    """The next `count` messages (each as hex frames), within the deadline."""
    out: list[list[str]] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(out) < count and time.monotonic() < deadline:
        if sock.poll(100):
            out.append([f.hex() for f in sock.recv_multipart()])
    return out


def _recv_replay(sock: zmq.Socket) -> list[list[str]]:
    """Replayed messages up to the end marker, or until none came for QUIET_S (a REQ socket
    stops after one reply: waiting a quiet second is how its silence is seen)."""
    out: list[list[str]] = []
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if not sock.poll(QUIET_S * 1000):
            break
        frames = sock.recv_multipart()
        out.append([f.hex() for f in frames])
        if vk.ZmqEventPublisher.END_SEQ in frames:
            break
    return out


def main() -> None:
    spec = json.load(sys.stdin)
    pub_ep, replay_ep = f"ipc://{spec['dir']}/events", f"ipc://{spec['dir']}/replay"
    publisher = vk.ZmqEventPublisher(data_parallel_rank=0, endpoint=pub_ep, replay_endpoint=replay_ep,
                                     topic=spec["topic"])
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(pub_ep)
    warmups = _warm_up(publisher, sub)
    batches = [vk.KVEventBatch(ts=1000.0 + i, events=[_event(e) for e in events])
               for i, events in enumerate(spec["batches"])]
    for batch in batches:
        publisher.publish(batch)
    live = _recv_count(sub, len(batches))
    start = warmups.to_bytes(8, "big")
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(replay_ep)
    dealer.send_multipart([b"", start])
    replay_dealer = _recv_replay(dealer)
    req = ctx.socket(zmq.REQ)
    req.connect(replay_ep)
    req.send(start)
    replay_req = _recv_replay(req)
    publisher.shutdown()
    for sock in (sub, dealer, req):
        sock.close(linger=0)
    json.dump({"live": live, "replay_dealer": replay_dealer, "replay_req": replay_req,
               "first_seq": warmups}, sys.stdout)


def _warm_up(publisher: vk.ZmqEventPublisher, sub: zmq.Socket) -> int:
    """Publish empty batches until the SUB socket receives one (PUB drops what it sends before a
    subscriber has joined), then drain the rest; returns how many were published, i.e. the seq
    the next batch gets."""
    sent = 0
    deadline = time.monotonic() + DEADLINE_S
    while not sub.poll(50):
        if time.monotonic() > deadline:
            raise SystemExit("the SUB socket never received a warm-up batch")
        publisher.publish(vk.KVEventBatch(ts=0.0, events=[]))
        sent += 1
    while True:  # warm-ups arrive in order; the last one published ends them
        frames = sub.recv_multipart()
        if int.from_bytes(frames[1], "big") == sent - 1:
            return sent
        if not sub.poll(DEADLINE_S * 1000):
            raise SystemExit("a warm-up batch went missing")


if __name__ == "__main__":
    main()
