"""`python -m benchmarks.router_bench.edges`: which of our server's edge behaviours a router
setup keeps, probed over loopback with raw sockets (issue 22: ours on uvicorn against ours on
granian). Each probe is bounded in time; the slow ones (head and body timeouts) run together.

- `head 70 KiB`: one request whose headers are over the 64 KiB limit -> 431 naming the limit.
- `150 headers`: 150 small headers (4 KB in all, under the limit) -> answered 200.
- `head timeout`: a request head left unfinished -> the connection closed after ~30 s.
- `idle keep-alive`: a connection idle after one answer -> still open after 45 s (ours close
  at 75 s, above load balancers' 60 s idle timeout).
- `body timeout`: a body left unfinished -> 408 after ~60 s.
- `disconnect`: a client that goes away mid-stream -> the router's request to the engine
  closed (the router's in-flight gauge back to 0 within 2 s).
- `drain`: SIGTERM while a 3 s stream is open -> new connections refused, the stream still
  ends with `data: [DONE]`, the process exits.
- `workers 2`: two workers answer on one port (the pids `/health` reports).

Prints one table row per probe and setup.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

import contracts as c
from benchmarks.router_bench import routers
from benchmarks.router_bench.fake_engine import MODEL
from benchmarks.router_bench.plan import Plan
from benchmarks.router_bench.run import Bench
from benchmarks.router_bench.venvs import ensure_venv
from local.procs import processes

ROOT = Path(__file__).resolve().parents[2]
_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")
_GET = b"GET %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"


async def _exchange(port: int, data: bytes, *, wait_s: float, then: bytes = b"") -> tuple[bytes, float]:
    """Send `data` (and `then` 0.2 s later), read until the server closes or `wait_s` passes;
    what came back and the seconds until the close (or `wait_s`)."""
    began = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    if then:
        await asyncio.sleep(0.2)
        writer.write(then)
    got = b""
    try:
        async with asyncio.timeout(wait_s):
            while chunk := await reader.read(65536):
                got += chunk
    except TimeoutError:
        pass
    except ConnectionError:
        pass
    writer.close()
    return got, time.monotonic() - began


def _status(reply: bytes) -> str:
    m = _STATUS.match(reply)
    return m.group(1).decode() if m else "no answer"


def _body(reply: bytes) -> bytes:
    return reply.partition(b"\r\n\r\n")[2]


async def head_too_large(port: int) -> str:
    req = b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (70 * 1024) + b"\r\n\r\n"
    reply, _ = await _exchange(port, req, wait_s=5)
    names = b"65536" in _body(reply)
    return f"{_status(reply)}{', body names the limit' if names else ', body does not name the limit'}"


async def many_headers(port: int) -> str:
    heads = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 16) for i in range(150))
    reply, _ = await _exchange(port, _GET % b"/health" + heads + b"\r\n", wait_s=5)
    return _status(reply)


async def head_timeout(port: int) -> str:
    reply, took = await _exchange(port, b"GET /health HTTP/1.1\r\nhost: x\r\n", wait_s=40)
    return f"{_status(reply)}, closed after {took:.1f} s" if took < 39 else "still open after 40 s"


async def idle_keep_alive(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
    await reader.read(65536)
    began = time.monotonic()
    try:
        async with asyncio.timeout(45):
            while await reader.read(65536):
                pass
        return f"closed after {time.monotonic() - began:.1f} s idle"
    except TimeoutError:
        return "open after 45 s idle"
    finally:
        writer.close()


async def body_timeout(port: int) -> str:
    head = (b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 1000\r\n\r\n")
    reply, took = await _exchange(port, head, then=b'{"model": "', wait_s=70)
    return f"{_status(reply)} after {took:.1f} s" if took < 69 else f"{_status(reply)}, still open after 70 s"


def _stream_request(tokens: int) -> bytes:
    body = orjson.dumps({"model": MODEL, "prompt": "edge probe", "max_tokens": tokens, "stream": True})
    return (b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body))


async def _in_flight(port: int) -> float:
    reply, _ = await _exchange(port, _GET % b"/metrics" + b"\r\n", wait_s=5)
    total = 0.0
    for line in _body(reply).split(b"\n"):
        if line.startswith(c.ROUTER_IN_FLIGHT.encode() + b"{"):
            total += float(line.rsplit(b" ", 1)[1])
    return total


async def disconnect(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_stream_request(20_000))  # 20 s at the fake engine's 1 ms per token
    async with asyncio.timeout(5):
        while b"data: " not in await reader.read(4096):
            pass
    during = await _in_flight(port)
    writer.close()
    await asyncio.sleep(2)
    after = await _in_flight(port)
    return f"in flight {during:g} while streaming, {after:g} 2 s after the client left"


async def drain(port: int, pid: int, exited: Callable[[], bool]) -> str:
    stream = asyncio.create_task(_exchange(port, _stream_request(3000), wait_s=15))  # ~3 s
    await asyncio.sleep(0.5)
    os.kill(pid, signal.SIGTERM)
    await asyncio.sleep(0.3)
    try:
        reply, _ = await _exchange(port, _GET % b"/health" + b"\r\n", wait_s=2)
        fresh = f"new connection answered {_status(reply)}"
    except ConnectionRefusedError:
        fresh = "new connection refused"
    got, took = await stream
    done = b"data: [DONE]" in got
    for _ in range(100):
        if exited():
            break
        await asyncio.sleep(0.1)
    return (f"{fresh}; open stream {'ended with [DONE]' if done else 'cut short'} after {took:.1f} s; "
            f"{'exited' if exited() else 'still running 10 s later'}")


async def worker_pids(port: int, workers: int) -> str:
    """New connections until `workers` pids answered or 20 s passed (the first worker to
    answer `/health` may be up before the others)."""
    pids: set[int] = set()
    tries = 0
    end = time.monotonic() + 20
    while len(pids) < workers and time.monotonic() < end:
        reply, _ = await _exchange(port, _GET % b"/health" + b"\r\n", wait_s=5)
        if _status(reply) == "200":
            pids.add(orjson.loads(_body(reply))["pid"])
        tries += 1
        await asyncio.sleep(0.05)
    return f"{len(pids)} worker pids over {tries} connections"


def _probe_all(bench: Bench, spec: routers.RouterSpec) -> dict[str, str]:
    url, proc = bench.start_router(spec)
    port = int(url.rsplit(":", 1)[1])

    async def run() -> dict[str, str]:
        probes: dict[str, Awaitable[str]] = {
            "head 70 KiB": head_too_large(port), "150 headers": many_headers(port),
            "head timeout": head_timeout(port), "idle keep-alive": idle_keep_alive(port),
            "body timeout": body_timeout(port),
            "disconnect": disconnect(port)}
        done = await asyncio.gather(*probes.values())
        out = dict(zip(probes, done, strict=True))
        out["drain"] = await drain(port, proc.pid, lambda: proc.poll() is not None)
        return out

    try:
        return asyncio.run(run())
    finally:
        bench.procs.stop(proc)


def _probe_workers(bench: Bench, spec: routers.RouterSpec) -> str:
    url, proc = bench.start_router(spec)
    try:
        return asyncio.run(worker_pids(int(url.rsplit(":", 1)[1]), spec.workers))
    finally:
        bench.procs.stop(proc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.router_bench.edges",
                                description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "out" / "router_edges")
    args = p.parse_args(argv)
    plan = Plan(repeats=1, engines=2)
    setups = [(routers.ours("prefix", 1, plan.gpu_cache_tokens, plan.cpu_cache_tokens),
               routers.ours("prefix", 2, plan.gpu_cache_tokens, plan.cpu_cache_tokens))]
    granian = routers.ours_on_granian(ROOT, "prefix", 1, plan.gpu_cache_tokens, plan.cpu_cache_tokens)
    assert granian.venv and granian.package
    ensure_venv(ROOT, granian.venv, granian.package, granian.pip_args)
    setups.append((granian, routers.ours_on_granian(ROOT, "prefix", 2, plan.gpu_cache_tokens,
                                                    plan.cpu_cache_tokens)))
    rows: dict[str, dict[str, str]] = {}
    with processes(args.out / "logs") as procs:
        bench = Bench(plan, procs)
        bench.start_engines()
        for w1, w2 in setups:
            print(f"probing {w1.name} ...", flush=True)
            rows[w1.name] = _probe_all(bench, w1)
            rows[w1.name]["workers 2"] = _probe_workers(bench, w2)
    names = list(rows)
    print("\n| probe | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for probe in next(iter(rows.values())):
        print(f"| {probe} | " + " | ".join(rows[n][probe] for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
