"""The load generator: a separate process so its CPU is never billed to the router.

Raw asyncio + httptools over keep-alive connections (one per concurrent worker), sending a
fixed number of pre-encoded `POST /v1/completions` requests and timing each one. Prints one
JSON object (`benchmarks.router_bench.stats.LoadResult` fields) on stdout.

Prompt shapes (`--prompts`):
- `conversations`: `--conversations` conversations, each an 8 KB prompt of its own; request
  i belongs to conversation i mod K and ends with a short per-request tail, so a prefix
  router sees a long cached prefix plus a few new bytes, as in a chat. The conversation id
  is also sent as `x-user-id`.
- `distinct`: every request a new prompt (distinct from its first byte): the memory test.

Run: `python -m benchmarks.router_bench.loadgen --url http://127.0.0.1:8080 -n 1000 -c 16`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable

import httptools
import orjson

import contracts as c
from benchmarks.router_bench.stats import LoadResult, summarize

_FILLER = b"the quick brown fox jumps over the lazy dog and keeps on running "


def prompt_text(tag: str, size: int) -> str:
    """A `size`-byte prompt that starts with `tag`, so distinct tags differ from block 0."""
    head = f"[{tag}] ".encode()
    reps = -(-size // len(_FILLER))
    return (head + _FILLER * reps)[:size].decode()


def _request_bytes(host: str, body: dict, user: str) -> bytes:
    payload = orjson.dumps(body)
    return (f"POST {c.PATH_COMPLETIONS} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
            f"{c.HEADER_USER_ID}: {user}\r\ncontent-length: {len(payload)}\r\n\r\n").encode() + payload


class RequestMaker:
    """Builds request i as raw bytes (conversation prompts are encoded once, tails per request)."""

    def __init__(self, args: argparse.Namespace, host: str) -> None:
        self.args, self.host = args, host
        self.bases = [prompt_text(f"conv-{k:04d}", args.prompt_bytes) for k in range(args.conversations)]

    def __call__(self, i: int) -> bytes:
        a = self.args
        if a.prompts == "distinct":
            conv, prompt = f"p{a.seed}-{i}", prompt_text(f"{a.seed}-{i:09d}", a.prompt_bytes)
        else:
            k = i % a.conversations
            conv, prompt = f"conv-{k:04d}", self.bases[k] + f" question {i}"
        body = {"model": a.model, "prompt": prompt, "max_tokens": a.max_tokens, "stream": a.stream}
        return _request_bytes(self.host, body, conv)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; `request` sends and waits for the whole response."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[int] | None = None
        self.first_byte = 0.0
        self.events = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.events += body.count(b"data: ")

    def on_message_complete(self) -> None:
        if self.done and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done and not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))

    async def request(self, raw: bytes) -> tuple[int, float, int]:
        self.done = asyncio.get_running_loop().create_future()
        self.first_byte, self.events = 0.0, 0
        self.transport.write(raw)
        status = await self.done
        return status, self.first_byte, self.events


async def _worker(host: str, port: int, next_index: Callable[[], int | None], make: RequestMaker,
                  out: dict[str, list[float]]) -> None:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(_Connection, host, port)
    try:
        while (i := next_index()) is not None:
            start = time.perf_counter()
            try:
                status, first, events = await conn.request(make(i))
            except ConnectionError:
                out["errors"].append(1.0)
                _, conn = await loop.create_connection(_Connection, host, port)
                continue
            end = time.perf_counter()
            if status != 200:
                out["errors"].append(float(status))
                continue
            out["latency"].append(end - start)
            out["ttfb"].append(first - start)
            out["events"].append(float(events))
    finally:
        conn.transport.close()


async def run(args: argparse.Namespace) -> LoadResult:
    """Send `args.n` requests over `args.c` connections; summarise the timings."""
    host, _, port = args.url.removeprefix("http://").partition(":")
    make = RequestMaker(args, f"{host}:{port}")
    counter = iter(range(args.start, args.start + args.n))
    out: dict[str, list[float]] = {"latency": [], "ttfb": [], "events": [], "errors": []}
    began = time.perf_counter()
    await asyncio.gather(*(_worker(host, int(port), lambda: next(counter, None), make, out)
                           for _ in range(args.c)))
    wall = time.perf_counter() - began
    return summarize(latencies=out["latency"], ttfbs=out["ttfb"], events=sum(out["events"]),
                     errors=len(out["errors"]), wall_s=wall)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="router benchmark load generator")
    p.add_argument("--url", required=True)
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("-c", type=int, default=1)
    p.add_argument("--start", type=int, default=0, help="index of the first request")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompt-bytes", type=int, default=8192)
    p.add_argument("--prompts", choices=("conversations", "distinct"), default="conversations")
    p.add_argument("--conversations", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="fake-model")
    p.add_argument("--wait-go", action="store_true",
                   help="print 'ready' and wait for a line on stdin before sending (lets the caller "
                        "read CPU counters after this process's start-up)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import uvloop

    args = parse_args(argv)
    if args.wait_go:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.readline()
    result = uvloop.run(run(args))
    sys.stdout.write(orjson.dumps(result.to_dict()).decode() + "\n")


if __name__ == "__main__":
    main()
