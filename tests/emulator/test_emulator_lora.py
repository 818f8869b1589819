"""LoRA in the emulator's pure core: settings, served adapters, GPU slots and CPU cache (LRU), and
the scheduler's `max_loras` rule with the load cost in the step."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.cache import PrefixCache
from emulator.errors import ConfigError, WireError
from emulator.lora import AdapterRegistry, LoraModule, LoraSettings, parse_module
from emulator.lora_slots import LoraSlots
from emulator.scheduler import GenRequest, Scheduler
from emulator.timing import Timing

BASE = "base/model"


def test_settings_default_as_vllm_and_refuse_bad_values():
    """max_cpu_loras defaults to max_loras and must not be below it; ranks are vLLM's set."""
    assert LoraSettings(max_loras=3).cpu_slots == 3
    with pytest.raises(ConfigError, match=r"'max_cpu_loras' must be >= max_loras \(4\) \(got 2\)"):
        LoraSettings(max_loras=4, max_cpu_loras=2)
    with pytest.raises(ConfigError, match="max_lora_rank"):
        LoraSettings(max_lora_rank=24)
    with pytest.raises(ConfigError, match="max_loras"):
        LoraSettings(max_loras=0)
    with pytest.raises(ConfigError, match="name each adapter once"):
        LoraSettings(modules=(LoraModule("a", "/x"), LoraModule("a", "/y")))


def test_lora_modules_parse_as_vllm_parser_action():
    """name=path, or JSON with an optional base_model_name; anything else is refused."""
    assert parse_module("sql=/models/sql") == LoraModule("sql", "/models/sql")
    assert parse_module('{"name": "a", "path": "/p", "base_model_name": "b"}') == LoraModule("a", "/p", "b")
    with pytest.raises(ConfigError, match="lora_modules"):
        parse_module("no-equals-sign")
    with pytest.raises(ConfigError, match="lora_modules"):
        parse_module('{"name": "a"}')


def test_registry_answers_as_openai_serving_models():
    """Ids count up, in-place reloads keep theirs, and every refusal carries vLLM's status and text."""
    reg = AdapterRegistry(BASE)
    assert reg.load("a", "/a", found=True).lora_id == 1
    assert reg.load("b", "/b", found=True).lora_id == 2
    assert reg.load("a", "/a2", found=True, load_inplace=True).lora_id == 1
    cases = [
        (lambda: reg.load("", "/x", found=True), 400, "InvalidUserInput", "Both 'lora_name' and 'lora_path'"),
        (lambda: reg.load(BASE, "/x", found=True), 400, "InvalidUserInput",
         "conflicts with a served base model"),
        (lambda: reg.load("a", "/a", found=True), 400, "InvalidUserInput", "has already been loaded"),
        (lambda: reg.load("c", "/nope", found=False), 404, "NotFoundError",
         "Loading lora c failed: No adapter found for /nope"),
        (lambda: reg.unload("zzz"), 404, "NotFoundError", "The lora adapter 'zzz' cannot be found."),
        (lambda: reg.resolve("zzz"), 404, "NotFoundError",
         "The model `zzz` does not exist. Valid aliases: base/model."),
        (lambda: AdapterRegistry(BASE, 8).load("r", "/r", found=True, rank=16), 500, "InternalServerError",
         "LoRA rank 16 is greater than max_lora_rank 8."),
    ]
    for call, status, kind, text in cases:
        with pytest.raises(WireError) as info:
            call()
        assert (info.value.status, info.value.error_type) == (status, kind) and text in info.value.message
    assert reg.resolve(BASE) is None and reg.resolve("b").lora_id == 2
    reg.unload("b")
    assert [c["id"] for c in reg.cards(0)] == ["a"] and reg.cards(0)[0]["parent"] == BASE
    assert reg.load("b", "/b", found=True).lora_id == 3  # a new id after an unload


def test_slots_evict_the_least_recently_used_and_cost_by_tier():
    """A GPU hit is free, a CPU-cache hit costs the copy, a miss the read and the copy; the LRU goes."""
    slots = LoraSlots(gpu_slots=2, cpu_slots=3, cpu_load_s=0.1, disk_load_s=1.0)
    assert slots.activate(1) == pytest.approx(1.1)
    assert slots.activate(2) == pytest.approx(1.1)
    assert slots.activate(1) == 0.0  # touched: 2 is now the GPU's LRU
    assert slots.activate(3) == pytest.approx(1.1) and slots.on_gpu == (1, 3)
    assert slots.activate(2) == pytest.approx(0.1)  # still in the CPU cache
    assert slots.activate(4) == pytest.approx(1.1)  # CPU full: its LRU (1) leaves both tiers
    assert 1 not in slots.on_cpu and 1 not in slots.on_gpu
    assert slots.counters.disk_loads == 4 and slots.counters.cpu_evictions == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 8), min_size=1, max_size=3), max_size=40), st.integers(3, 5))
def test_a_batch_never_loses_its_own_adapters(batches, cpu):
    """Applying a batch leaves all its adapters on the GPU, within the slots and the CPU cache."""
    slots = LoraSlots(gpu_slots=3, cpu_slots=cpu, cpu_load_s=0.1, disk_load_s=1.0)
    for batch in batches:
        slots.apply(batch)
        assert set(batch) <= set(slots.on_gpu) and set(slots.on_gpu) <= set(slots.on_cpu)
        assert len(slots.on_gpu) <= 3 and len(slots.on_cpu) <= cpu


def _sched(max_loras: int = 1) -> Scheduler:
    slots = LoraSlots(gpu_slots=max_loras, cpu_slots=max_loras, cpu_load_s=0.5, disk_load_s=2.0)
    return Scheduler(cache=PrefixCache(gpu_tokens=100_000), timing=Timing(), lora=slots)


def _req(key: int, lora: int | None) -> GenRequest:
    return GenRequest(key=key, prompt_tokens=32, blocks=(), max_tokens=3, lora=lora)


def test_a_request_for_another_adapter_waits_for_a_slot_without_blocking_the_queue():
    """max_loras 1: adapter 2 waits while adapter 1 runs, the base request behind it does not."""
    sched = _sched()
    for key, lora in ((1, 1), (2, 2), (3, None)):
        sched.submit(_req(key, lora), 0.0)
    first = sched.step(0.0)
    assert first is not None and {a.key for a in first.admitted} == {1, 3}
    assert first.duration > 2.5  # adapter 1 came from disk (2.0) into a slot (0.5)
    admitted_at = {}
    now = first.duration
    while (step := sched.step(now)) is not None:
        now += step.duration
        admitted_at.update({a.key: now for a in step.admitted})
    assert 2 in admitted_at  # once adapter 1's request finished


def test_running_adapters_never_exceed_max_loras():
    """However requests arrive, the running batch holds at most max_loras adapters."""
    sched = _sched(max_loras=2)
    for key in range(30):
        sched.submit(_req(key, key % 5), 0.0)
    now = 0.0
    while (step := sched.step(now)) is not None:
        assert len(sched.running_loras) <= 2
        now += step.duration
    assert sched.idle


def test_a_request_naming_an_adapter_needs_lora_enabled():
    """Without slots the scheduler refuses an adapter request."""
    sched = Scheduler(cache=PrefixCache(gpu_tokens=10_000), timing=Timing())
    with pytest.raises(Exception, match="LoRA is not enabled"):
        sched.submit(_req(1, 1), 0.0)
