"""Continuous batching: batch limit, queueing, chunked prefill, decode cost, KV admission."""

from __future__ import annotations

import pytest

from emulator.cache import PrefixCache
from emulator.errors import ConfigError
from emulator.scheduler import FINISH_LENGTH, FINISH_STOP, GenRequest, Scheduler
from emulator.timing import Timing
from router.routing.prompt import block_hashes

TIMING = Timing()


def _sched(*, gpu: int = 400_000, cpu: int = 0, seqs: int = 256, budget: int = 8192) -> Scheduler:
    cache = PrefixCache(gpu_tokens=gpu, cpu_tokens=cpu)
    return Scheduler(cache=cache, timing=TIMING, max_num_seqs=seqs, max_num_batched_tokens=budget)


def _req(key: int, tokens: int = 100, out: int = 3, text: str | None = None, **kw) -> GenRequest:
    blocks = tuple(block_hashes(text)) if text is not None else ()
    return GenRequest(key=key, prompt_tokens=tokens, blocks=blocks, max_tokens=out, **kw)


def _drain(sched: Scheduler, now: float = 0.0) -> dict[int, dict[str, float]]:
    """Run to completion; per request: first-token and finish times."""
    times: dict[int, dict[str, float]] = {}
    for _ in range(100_000):
        step = sched.step(now)
        if step is None:
            return times
        now += step.duration
        for emit in step.emits:
            if emit.first:
                times.setdefault(emit.key, {})["first"] = now
            if emit.finish_reason:
                times.setdefault(emit.key, {})["finish"] = now
    raise AssertionError("scheduler never drained")


def test_first_token_after_prefill_then_one_token_per_step():
    """A lone request emits its first token at the end of its prefill step, then one per step."""
    sched = _sched()
    sched.submit(_req(1, tokens=100, out=3), 0.0)
    steps = [sched.step(0.0) for _ in range(4)]
    assert [len(s.emits) for s in steps[:3]] == [1, 1, 1] and steps[3] is None
    assert steps[0].emits[0].first and steps[2].emits[0].finish_reason == FINISH_LENGTH


def test_batch_limit_queues_the_rest():
    """With max_num_seqs=2, a third request waits until a slot frees."""
    sched = _sched(seqs=2)
    for key in (1, 2, 3):
        sched.submit(_req(key, out=5), 0.0)
    sched.step(0.0)
    assert (sched.num_running, sched.num_waiting) == (2, 1)


def test_queueing_raises_ttft():
    """A request behind a long prompt gets its first token later than it would alone."""
    alone = _sched()
    alone.submit(_req(2, tokens=1000), 0.0)
    behind = _sched()
    behind.submit(_req(1, tokens=20_000), 0.0)
    behind.submit(_req(2, tokens=1000), 0.0)
    assert _drain(behind)[2]["first"] > _drain(alone)[2]["first"]


def test_chunked_prefill_respects_the_token_budget():
    """A 20k-token prompt is prefilled in 8,192-token chunks over three steps."""
    sched = _sched()
    sched.submit(_req(1, tokens=20_000, out=1), 0.0)
    chunks = [sched.step(0.0).prefill_tokens for _ in range(3)]
    assert chunks == [8192, 8192, 20_000 - 2 * 8192]


def test_decode_step_grows_with_batch_size():
    """A decode step with 32 sequences lasts longer than one with 1."""
    durations = []
    for batch in (1, 32):
        sched = _sched()
        for key in range(batch):
            sched.submit(_req(key, tokens=1000, out=10), 0.0)
        sched.step(0.0)  # prefill step
        durations.append(sched.step(0.0).duration)
    assert durations[1] > durations[0]


def test_cached_prefix_shortens_ttft_and_cpu_hits_cost_load_time():
    """Second identical prompt: GPU hits make TTFT short; CPU-tier hits cost load time in between."""
    text = "x" * 40_000  # 10k tokens
    tokens = 10_000
    gpu = _sched()
    gpu.submit(_req(1, tokens, text=text), 0.0)
    cold = _drain(gpu)[1]["first"]
    gpu.submit(_req(2, tokens, text=text), 0.0)
    warm = _drain(gpu)[2]["first"]
    cpu = _sched(gpu=10_016, cpu=100_000)
    cpu.submit(_req(1, tokens, text=text, out=1), 0.0)
    _drain(cpu)
    cpu.submit(_req(3, tokens=tokens, text="y" * 40_000, out=1), 0.0)  # pushes the first prompt to CPU
    _drain(cpu)
    cpu.submit(_req(2, tokens, text=text), 0.0)
    loaded = _drain(cpu)[2]["first"]
    assert cpu.cache.cpu_hit_tokens > 0
    assert warm < loaded < cold


def test_kv_capacity_holds_requests_back():
    """Requests whose prompt + max_tokens would overflow the GPU KV cache wait for room."""
    sched = _sched(gpu=3000)
    sched.submit(_req(1, tokens=1500, out=10), 0.0)
    sched.submit(_req(2, tokens=1500, out=10), 0.0)
    sched.step(0.0)
    assert (sched.num_running, sched.num_waiting) == (1, 1)
    assert 0 < sched.kv_usage <= 1


def test_cancel_frees_the_slot():
    """Cancelling a running request lets the waiting one in."""
    sched = _sched(seqs=1)
    sched.submit(_req(1, out=50), 0.0)
    sched.submit(_req(2, out=50), 0.0)
    sched.step(0.0)
    assert sched.cancel(1) and not sched.cancel(1)
    sched.step(0.0)
    assert (sched.num_running, sched.num_waiting) == (1, 0)


def test_stop_after_ends_early_with_stop():
    """An EOS after N tokens finishes with reason 'stop' after exactly N tokens."""
    sched = _sched()
    sched.submit(_req(1, out=10, stop_after=4), 0.0)
    emits = [e for _ in range(10) if (s := sched.step(0.0)) for e in s.emits]
    assert len(emits) == 4 and emits[-1].finish_reason == FINISH_STOP


def test_request_larger_than_the_cache_is_refused():
    """A request that could never fit the GPU KV cache is rejected at submit."""
    with pytest.raises(ConfigError, match="must fit the GPU KV cache"):
        _sched(gpu=1000).submit(_req(1, tokens=990, out=20), 0.0)
