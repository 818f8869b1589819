"""The router's /metrics: valid Prometheus text, router-prefixed names, figures that add up."""

from __future__ import annotations

import re

import aiohttp

from router import contracts as c
from router.contracts import PATH_CHAT
from router.metrics import Histogram
from tests.router.fake_engine import CLOSE_MID, FakeEngine
from tests.router.harness import run, running, settings_for

_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
_SAMPLE = re.compile(rf"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{{(?:{_LABEL},?)*\}})? (\S+)$")


def parse_exposition(text: str) -> dict[str, list[tuple[str, float]]]:
    """Samples by metric name; fails on any line that is not valid text exposition."""
    samples: dict[str, list[tuple[str, float]]] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("# HELP ") or not line:
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a valid sample line: {line!r}"
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, f"sample without a TYPE line: {name}"
        samples.setdefault(name, []).append((labels, value))
    return samples


def test_exposition_parses_and_counts_requests_decisions_health_and_streams() -> None:
    """After traffic, every router metric is present, valid, prefixed, and the counts match."""
    async def body() -> None:
        engine = FakeEngine(chunks=3)
        await engine.start()
        async with running(settings_for([engine.url])) as (_, url), aiohttp.ClientSession() as s:
            chat = {"model": "m", "messages": [{"content": "x"}]}
            for stream in (False, True, True):
                async with s.post(url + PATH_CHAT, json={**chat, "stream": stream}) as r:
                    await r.read()
            engine.mode = CLOSE_MID
            async with s.post(url + PATH_CHAT, json={**chat, "stream": True}) as r:
                await r.read()
            async with s.get(url + "/metrics") as r:
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                samples = parse_exposition(await r.text())
        assert all(name.startswith(c.ROUTER_PREFIX) for name in samples)
        requests = dict(samples[c.ROUTER_REQUESTS])
        assert requests[f'{{model="m",engine="{engine.url}",status="200"}}'] == 3
        assert requests[f'{{model="m",engine="{engine.url}",status="502"}}'] == 1
        assert samples[c.ROUTER_DECISIONS] == [('{policy="test_round_robin",outcome="new"}', 4)]
        assert samples[c.ROUTER_ENGINE_HEALTHY] == [(f'{{engine="{engine.url}"}}', 1)]
        assert samples[c.ROUTER_IN_FLIGHT] == [(f'{{engine="{engine.url}"}}', 0)]
        assert samples[c.ROUTER_STREAM_ERRORS] == [(f'{{engine="{engine.url}"}}', 1)]
        assert samples[c.ROUTER_TTFT + "_count"][0][1] == 4
        # 3 events + [DONE] per full stream: 1 to 3 gaps each, as the engine's writes coalesce in reads
        assert 2 <= samples[c.ROUTER_ITL + "_count"][0][1] <= 2 * 3
        await engine.stop()
    run(body())


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    """A value equal to a bound lands in that bucket; buckets never decrease; +Inf counts all."""
    hist = Histogram("x_seconds", "help", ("a",), (0.1, 1.0))
    for value in (0.1, 0.5, 5.0):
        hist.observe(("v",), value)
    samples = parse_exposition("".join(hist.render()))
    assert [v for _, v in samples["x_seconds_bucket"]] == [1, 2, 3]
    assert samples["x_seconds_count"] == [('{a="v"}', 3)] and samples["x_seconds_sum"][0][1] == 5.6
