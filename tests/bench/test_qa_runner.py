"""The benchmark driven end to end over loopback HTTP against the fake SSE engine."""

from __future__ import annotations

import asyncio

import pytest

from bench.config import BenchConfig
from bench.runner import run_benchmark
from router.routing.prompt import count_tokens, prompt_text

SMALL = {"users": 4, "rounds": 3, "system_prompt_tokens": 64, "history_tokens": 128, "question_tokens": 8,
         "answer_tokens": 5, "duration_s": 0.6, "drain_s": 5.0, "warmup": False}


def _run(engine, **overrides):
    config = BenchConfig(base_url=engine.url, **{**SMALL, "qps": (20.0,), **overrides})
    return asyncio.run(run_benchmark(config))


def test_every_request_is_streamed_measured_and_tagged(fake_engine):
    """Each request streams with usage, unique ids and user headers; its record is consistent."""
    result = _run(fake_engine)
    records = result.points[0].records
    assert len(records) == len(fake_engine.seen) >= 8
    assert len({s["request_id"] for s in fake_engine.seen}) == len(fake_engine.seen)
    assert all(s["body"]["stream"] and s["body"]["stream_options"] == {"include_usage": True}
               for s in fake_engine.seen)
    for record in records:
        assert record.ok, record.error
        assert 0 < record.ttft_s <= record.e2e_s
        assert len(record.itl_s) == fake_engine.tokens - 1
        assert record.output_tokens == fake_engine.tokens and record.prompt_tokens > 200
    users = {s["user_id"] for s in fake_engine.seen}
    assert users == {r.user_id for r in records}


def test_each_round_resends_the_whole_conversation(fake_engine):
    """A user's round r+1 prompt starts with its round r prompt plus the streamed answer."""
    _run(fake_engine)
    by_user: dict[str, list[str]] = {}
    for seen in fake_engine.seen:
        by_user.setdefault(seen["user_id"], []).append(prompt_text(seen["body"]))
    grown = 0
    for prompts in by_user.values():
        for earlier, later in zip(prompts, prompts[1:], strict=False):
            assert later.startswith(earlier) and "tok tok" in later[len(earlier):]
            grown += 1
    assert grown >= 2


def test_hit_rate_is_the_engine_counters_delta(fake_engine):
    """The reported cache hit rate equals hits/queries gained on the engine during the point."""
    fake_engine.account("warm-up text that is not part of the run " * 8)
    before_q, before_h = fake_engine.queries, fake_engine.hits
    result = _run(fake_engine)
    expected = (fake_engine.hits - before_h) / (fake_engine.queries - before_q)
    assert result.metrics_urls == (fake_engine.url + "/metrics",)
    assert abs(result.points[0].stats.cache_hit_rate - expected) < 1e-9
    assert 0 < expected < 1


def test_server_errors_are_counted_not_raised(fake_engine):
    """HTTP 500 answers become error records with the server's message; the run completes."""
    fake_engine.fail_every = 3
    stats = _run(fake_engine).points[0].stats
    assert stats.errors >= 2 and stats.finished >= 4
    assert stats.errors + stats.finished == stats.launched


@pytest.mark.parametrize(("fault", "message"), [
    ("garbage", "malformed SSE chunk"), ("error_event", "engine died mid-stream"),
    ("truncated", "stream ended before [DONE]"),
])
def test_broken_streams_are_errors_with_their_cause(fake_engine, fault, message):
    """A broken stream makes an error record naming the cause, never an exception."""
    fake_engine.stream_fault = fault
    records = _run(fake_engine).points[0].records
    assert records and all(not r.ok and message in r.error for r in records)


def test_sweep_runs_each_point_at_its_qps_and_duration(fake_engine):
    """A two-point sweep yields two points at their QPS, each launching for its own window."""
    result = _run(fake_engine, qps=(10.0, 20.0), durations_s=(0.4, 0.8))
    assert [p.stats.qps for p in result.points] == [10.0, 20.0]
    assert all(max(r.launch_s for r in p.records) < d for p, d in zip(result.points, (0.4, 0.8), strict=True))
    launched = [len(p.records) for p in result.points]
    assert 3 <= launched[0] <= 4 and 12 <= launched[1] <= 16  # qps x window, less any late answer


class _StopAfter:
    """Progress hooks that set `stop` once `count` requests have finished."""

    def __init__(self, stop: asyncio.Event, count: int) -> None:
        self.stop, self.count = stop, count

    def warmup_started(self, users):
        pass

    def warmup_finished(self, result):
        pass

    def point_started(self, qps, expected_requests, duration_s):
        pass

    def request_done(self, record):
        self.count -= record.ok
        if self.count <= 0:
            self.stop.set()

    def point_finished(self, stats):
        pass


def test_stop_event_cuts_the_run_short_and_keeps_records(fake_engine):
    """`stop` ends the run at once, keeps finished records and marks in-flight ones cancelled."""
    fake_engine.token_pause_s = 0.1

    async def main():
        stop = asyncio.Event()
        config = BenchConfig(base_url=fake_engine.url, **{**SMALL, "duration_s": 60.0, "qps": (20.0, 5.0)})
        return await asyncio.wait_for(run_benchmark(config, stop=stop, progress=_StopAfter(stop, 2)), 30)

    result = asyncio.run(main())
    assert result.interrupted and len(result.points) == 1
    stats = result.points[0].stats
    assert stats.finished >= 2 and stats.cancelled >= 1 and stats.elapsed_s < 30


def test_prompt_sizes_follow_the_flags(fake_engine):
    """A fresh user's first prompt holds system + history + question tokens (+ role tags)."""
    _run(fake_engine, users=1, rounds=2, qps=(2.0,))
    first = prompt_text(fake_engine.seen[0]["body"])
    assert 64 + 128 + 8 <= count_tokens(first) <= 64 + 128 + 8 + 8


def test_warmup_resends_the_previous_round_of_users_past_round_0(fake_engine):
    """Warm-up first resends each mid-conversation user's previous round: a prefix of its next."""
    cold = _run(fake_engine, warmup=False).points[0].stats.cache_hit_rate
    fake_engine.seen.clear()
    fake_engine.blocks.clear()
    result = _run(fake_engine, warmup=True)
    warm = [s for s in fake_engine.seen if s["request_id"].endswith("-warmup")]
    assert result.warmup.requests == len(warm) == 2 and result.warmup.errors == 0  # rounds 1 and 2 of 0,0,1,2
    assert fake_engine.seen[: len(warm)] == warm
    for sent in warm:
        assert sent["body"]["max_tokens"] == 1 and sent["body"]["messages"][-1]["role"] == "user"
        first = next(s for s in fake_engine.seen if s["user_id"] == sent["user_id"] and s not in warm)
        assert prompt_text(first["body"]).startswith(prompt_text(sent["body"]).rstrip("\n"))
    assert result.points[0].stats.cache_hit_rate > cold


def test_initial_users_come_back_at_every_point(fake_engine):
    """Initial users keep their ids across a sweep's points; joiners are new at each point."""
    result = _run(fake_engine, qps=(10.0, 20.0), duration_s=1.0)
    first, second = ({r.user_id for r in p.records} for p in result.points)
    assert {u for u in first if "-p" not in u} & {u for u in second if "-p" not in u}
    assert not {u for u in first if "-p0-" in u} & second
