"""A live vLLM KV-event publisher the router's subscriber tests drive. Runs INSIDE the engine-check
tool venv (`.venv-engine`: the engine image's vLLM), never imported by the suite:

    .venv-engine/bin/python -P tests/router/shell/vllm_kv_live_publisher.py

stdin, one JSON object a line; the first: `{"events": endpoint, "replay": endpoint | null,
"topic": str, "buffer_steps": int}` starts vLLM's own `ZmqEventPublisher` (answered
`{"ready": true}`); then `{"op": "publish", "events": [event, ...]}` publishes one
`KVEventBatch` of vLLM's event classes (events as in tests/router/routing/vllm_kv_publisher.py)
and answers `{"seq": n}` once vLLM's publisher thread has sent it (and kept it for replay);
`{"op": "drop", "count": n}` makes the publisher's PUB socket lose the next n batches (they still
go into the replay buffer: what a subscriber past the high-water mark loses); `{"op": "quit"}`.
The PUB socket binds its endpoint, a tcp://127.0.0.1 one too (see `main`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from vllm.distributed import kv_events as vk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "routing"))
from vllm_kv_publisher import _event  # noqa: E402  (vLLM's event classes from the spec)

DEADLINE_S = 10.0


class _Lossy:
    """vLLM's PUB socket, dropping the next `drop` messages (everything else passes through)."""

    def __init__(self, sock: Any) -> None:
        self.sock, self.drop = sock, 0

    def send_multipart(self, frames: Any, *args: Any, **kwargs: Any) -> Any:
        if self.drop:
            self.drop -= 1
            return None
        return self.sock.send_multipart(frames, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def _answer(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def _published(publisher: vk.ZmqEventPublisher, count: int) -> int:
    """The seq of batch number `count` (0-based) once the publisher thread has sent it."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        buffer = publisher._buffer
        if buffer and buffer[-1][0] >= count:
            return buffer[-1][0]
        time.sleep(0.005)
    raise SystemExit("vLLM's publisher thread never sent the batch")


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    # vLLM binds its PUB socket only on a wildcard or ipc endpoint (the engines' tcp://*:5557) and
    # connects to any other; binding tcp://127.0.0.1:PORT the same way keeps the test on loopback
    vk.ZmqEventPublisher._is_bind_endpoint = staticmethod(lambda endpoint: True)  # type: ignore[method-assign]
    publisher = vk.ZmqEventPublisher(data_parallel_rank=0, endpoint=spec["events"],
                                     replay_endpoint=spec["replay"], topic=spec["topic"],
                                     buffer_steps=spec["buffer_steps"])
    lossy = publisher._pub = _Lossy(publisher._pub)
    _answer({"ready": True})
    sent = 0
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "publish":
            publisher.publish(vk.KVEventBatch(ts=time.time(), events=[_event(e) for e in command["events"]]))
            _answer({"seq": _published(publisher, sent)})
            sent += 1
        elif command["op"] == "drop":
            lossy.drop += command["count"]
            _answer({"drop": lossy.drop})
        else:
            break
    publisher._pub = lossy.sock
    publisher.shutdown()


if __name__ == "__main__":
    main()
