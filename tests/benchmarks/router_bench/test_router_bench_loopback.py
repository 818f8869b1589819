"""The fake engine and the load generator over loopback, and /proc accounting of a process tree."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from benchmarks.router_bench import fake_engine, loadgen
from local.procs import cpu_seconds, free_ports, rss_bytes, tree


async def _with_engine(port: int, body) -> object:
    ready = asyncio.Event()
    server = asyncio.create_task(fake_engine.serve([port], token_gap_s=0.0, ready=ready.set))
    await asyncio.wait_for(ready.wait(), 5)
    try:
        return await body()
    finally:
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server


def test_loadgen_against_fake_engine_plain_and_streamed() -> None:
    """Every request answers 200; a streamed one carries one SSE event per token plus [DONE];
    the engine counts requests per conversation (the x-user-id header)."""
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"

    async def body() -> tuple:
        plain = await loadgen.run(loadgen.parse_args(
            ["--url", url, "-n", "20", "-c", "4", "--conversations", "5"]))
        streamed = await loadgen.run(loadgen.parse_args(
            ["--url", url, "-n", "6", "-c", "2", "--stream", "--max-tokens", "8", "--conversations", "5"]))
        stats = await asyncio.to_thread(lambda: json.loads(urllib.request.urlopen(url + "/stats").read()))
        return plain, streamed, stats

    plain, streamed, stats = asyncio.run(_with_engine(port, body))
    assert (plain.ok, plain.errors, plain.events) == (20, 0, 0)
    assert (streamed.ok, streamed.errors, streamed.events) == (6, 0, 6 * (8 + 1))
    assert sum(stats.values()) == 26 and set(stats) == {f"conv-{k:04d}" for k in range(5)}


def test_distinct_prompts_differ_from_the_first_block() -> None:
    """Memory-test prompts are all distinct within their first 64 bytes (one vLLM block)."""
    heads = {loadgen.prompt_text(f"0-{i:09d}", 8192)[:64] for i in range(1000)}
    assert len(heads) == 1000 and len(loadgen.prompt_text("x", 8192)) == 8192


def test_tree_cpu_and_rss_include_children() -> None:
    """A parent's tree lists its child, and CPU/RSS are summed over both."""
    code = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', "
            "'sum(range(3_000_000)); import time; time.sleep(30)']); time.sleep(30)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while len(tree(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # polling for the child to appear, with a deadline
        pids = tree(parent.pid)
        assert len(pids) == 2 and pids[0] == parent.pid
        assert rss_bytes(parent.pid) > rss_bytes(pids[1]) > 0
        assert cpu_seconds(parent.pid) >= cpu_seconds(pids[1]) >= 0
    finally:
        for pid in reversed(tree(parent.pid)):
            os.kill(pid, signal.SIGKILL)
        parent.wait(10)
