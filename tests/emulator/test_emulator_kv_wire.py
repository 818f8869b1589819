"""The emulator's KV-event payloads are vLLM 0.33's, in both wire formats: decoded by the router's
decoder (`router.routing.kv.events`) and, in the `.venv-engine` tool venv, by vLLM's own
`KVEventBatch` classes, which encode them again byte for byte; their token ids give the keys
the router computes from the prompt (issue 19)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import msgspec
import pytest

from contracts.kv_events import MEDIUM_CPU, MEDIUM_GPU
from emulator.cache import CacheEvent, Cleared, PrefixCache, Removed
from emulator.kv_wire import BatchEncoder, CpuStyle, Wire
from emulator.tokenize import encode
from router.routing.kv.events import AllBlocksCleared, BlockRemoved, BlockStored, Tier, decode_payload
from router.routing.kv.keys import block_keys
from router.routing.kv.residency import Residency, ResidencyIndex
from router.routing.prompt import BLOCK_TOKENS, block_hashes
from stack_components.engine_check import engine_python

ROOT = Path(__file__).resolve().parents[2]
DECODER = Path(__file__).with_name("vllm_kv_decode.py")
PROMPTS = ["a" * 64 * 3 + "?", "a" * 64 * 2 + "b" * 64 + "!", "c" * 64 * 3 + ".", "a" * 64 * 3 + "?"]
COMBOS = [(wire, ints, style) for wire in Wire for ints in (False, True) for style in CpuStyle]


def _steps() -> list[list[CacheEvent]]:
    """The events of a small two-tier cache serving PROMPTS one step each, then a clear: stores,
    shared prefixes, GPU evictions, CPU demotions, drops and promotions, AllBlocksCleared."""
    cache = PrefixCache(gpu_tokens=5 * BLOCK_TOKENS, cpu_tokens=2 * BLOCK_TOKENS, track_events=True)
    steps = []
    for text in PROMPTS:
        blocks = block_hashes(text)
        cache.admit(blocks, len(encode(text)), encode(text))
        cache.release(blocks)
        steps.append(cache.take_events())
    cache.clear(cpu=False)
    steps.append(cache.take_events())
    return steps


STEPS = _steps()


def test_the_scenario_covers_every_kind_of_change():
    """The fixture is worth testing against: every event kind on both tiers occurs."""
    kinds = {(type(e).__name__, getattr(e, "tier", None)) for step in STEPS for e in step}
    assert kinds == {("Stored", MEDIUM_GPU), ("Stored", MEDIUM_CPU), ("Removed", MEDIUM_GPU),
                     ("Removed", MEDIUM_CPU), ("Cleared", None)}


def _expected(encoder: BatchEncoder, event: CacheEvent):
    """What the router's decoder must make of one cache event (None: not published)."""
    lmcache = encoder.cpu_style is CpuStyle.LMCACHE and getattr(event, "tier", None) == MEDIUM_CPU
    tier = Tier.CPU if getattr(event, "tier", None) == MEDIUM_CPU else Tier.GPU
    group = None if lmcache else 0
    if isinstance(event, Cleared):
        return AllBlocksCleared()
    hashes = tuple(encoder.block_hash(b, lmcache=lmcache) for b in event.blocks)
    if isinstance(event, Removed):
        return None if lmcache else BlockRemoved(hashes, tier, group_idx=group)
    parent = None if event.parent is None else encoder.block_hash(event.parent, lmcache=lmcache)
    return BlockStored(hashes, parent, event.token_ids, 16, tier, from_lmcache=lmcache, group_idx=group)


@pytest.mark.parametrize(("wire", "ints", "style"), COMBOS)
def test_the_router_decoder_reads_every_payload(wire, ints, style):
    """Each step's payload decodes to exactly its cache events (hash form, tier, parent, tokens),
    with the LMCache style's lowercase medium, chunk hashes and no removals."""
    encoder = BatchEncoder(wire=wire, int_hashes=ints, cpu_style=style)
    for ts, events in enumerate(STEPS):
        batch = decode_payload(encoder.payload(float(ts), events), topic="t", seq=ts)
        expected = tuple(x for x in (_expected(encoder, e) for e in events) if x is not None)
        assert (batch.events, batch.ts, batch.data_parallel_rank, batch.skipped) == (expected, ts, 0, ())


def test_the_formats_differ_on_the_wire():
    """A map payload carries maps, an array payload arrays (not one format twice)."""
    first = [msgspec.msgpack.decode(BatchEncoder(wire=w).payload(1.0, STEPS[0])) for w in Wire]
    assert isinstance(first[0][1][0], dict) and first[0][1][0]["type"] == "BlockStored"
    assert first[1][1][0][0] == "BlockStored" and isinstance(first[1][1][0], list)


def test_a_step_without_changes_publishes_nothing():
    """vLLM publishes a batch only for a step with events; LMCache's CPU removals are never sent."""
    assert BatchEncoder().payload(1.0, []) is None
    assert BatchEncoder(cpu_style=CpuStyle.LMCACHE).payload(1.0, [Removed(MEDIUM_CPU, (7,))]) is None


def test_event_token_ids_give_the_routers_keys_for_the_prompt():
    """Applied to the router's residency index, the events say the last prompt is on the GPU up to
    its full blocks when keyed as the router keys a request: its text through the emulator's
    tokenizer (`tokenize.encode`), through `block_keys`."""
    index = ResidencyIndex()
    index.add_engine("e", {Tier.GPU: 5 * BLOCK_TOKENS, Tier.CPU: 2 * BLOCK_TOKENS})
    encoder = BatchEncoder()
    for events in STEPS[:-1]:
        index.apply("e", decode_payload(encoder.payload(0.0, events)).events)
    assert index.match("e", block_keys(encode(PROMPTS[-1]))) == Residency({Tier.GPU: 3})
    index.apply("e", decode_payload(encoder.payload(0.0, STEPS[-1])).events)
    assert index.match("e", block_keys(encode(PROMPTS[-1]))) == Residency({})


@pytest.fixture(scope="module")
def vllm_decoded() -> list[dict]:
    """Every combination's payloads, decoded and re-encoded by vLLM 0.33 in `.venv-engine`."""
    python = engine_python(ROOT)
    assert python is not None, "the engine-check venv is missing: run `make install` (.venv-engine)"
    payloads = [{"hex": BatchEncoder(wire=w, int_hashes=i, cpu_style=s).payload(float(n), events).hex(),
                 "wire": w.value} for w, i, s in COMBOS for n, events in enumerate(STEPS)]
    env = dict(os.environ, VLLM_TARGET_DEVICE="cpu", VLLM_LOGGING_LEVEL="ERROR")
    done = subprocess.run([str(python), "-P", str(DECODER)], input=json.dumps({"payloads": payloads}),
                          capture_output=True, text=True, timeout=110, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert "error" not in result, result
    return [dict(d, sent=p["hex"]) for d, p in zip(result["decoded"], payloads, strict=True)]


def test_vllm_decodes_every_payload_and_encodes_it_byte_for_byte(vllm_decoded):
    """vLLM's own decoder accepts each payload (strict types, both formats), and its encoder gives
    back the very bytes the emulator sent: the emulator's encoding is vLLM's."""
    assert len(vllm_decoded) == len(COMBOS) * len(STEPS)
    for item in vllm_decoded:
        assert item["reencoded"] == item["sent"]
        assert item["data_parallel_rank"] == 0


def test_vllm_reads_the_fields_vllm_would_send(vllm_decoded):
    """vLLM's view of the first map/bytes/vLLM-style step: a GPU BlockStored from the root with the
    prompt's ids, 32-byte hashes, `extra_keys` one None per block, group 0, no LoRA."""
    first = vllm_decoded[0]["events"]
    stored = first[-1]
    assert stored["class"] == "BlockStored" and stored["medium"] == "GPU" and stored["block_size"] == 16
    assert stored["parent_block_hash"] is None and stored["token_ids"] == encode(PROMPTS[0])[:48]
    assert [len(bytes.fromhex(h["hex"])) for h in stored["block_hashes"]] == [32, 32, 32]
    assert stored["extra_keys"] == [None, None, None] and stored["group_idx"] == 0
    assert (stored["lora_id"], stored["lora_name"], stored["kv_cache_spec_kind"]) == (None, None, None)
    classes = {(e["class"], e.get("medium")) for d in vllm_decoded for e in d["events"]}
    assert {("BlockStored", "cpu"), ("BlockRemoved", "CPU"), ("AllBlocksCleared", None)} <= classes
    cpu = next(e for d in vllm_decoded for e in d["events"] if e.get("medium") == "CPU" and "token_ids" in e)
    assert cpu["kv_cache_spec_kind"] == "full_attention"
