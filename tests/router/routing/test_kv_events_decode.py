"""The router's KV-event decoder reads what vLLM itself sends: batches built with vLLM 0.33's own
`KVEventBatch` / `BlockStored` / `BlockRemoved` / `AllBlocksCleared` (both wire formats) and
published by vLLM's own `ZmqEventPublisher`, in the `.venv-engine` tool venv; and it refuses,
naming the part, what is not that format."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.kv_events import REPLAY_END_SEQ
from router.routing.kv.events import (
    AllBlocksCleared,
    BlockRemoved,
    BlockStored,
    EngineTopic,
    KvEventDecodeError,
    Tier,
    decode_event,
    decode_message,
    decode_payload,
    parse_topic,
)
from stack_components.engine_check import engine_python

ROOT = Path(__file__).resolve().parents[3]
PUBLISHER = Path(__file__).with_name("vllm_kv_publisher.py")
TOPIC = "kv@10.0.0.5:8000@meta-llama/Llama-3.1-8B-Instruct"
H1, H2, H3 = bytes(range(32)), bytes(range(1, 33)), 2**64 - 5
TOKENS = list(range(100, 132))


def _stored(positional: bool, **over) -> dict:
    event = {"type": "BlockStored", "positional": positional,
             "block_hashes": [{"hex": H1.hex()}, {"hex": H2.hex()}], "parent_block_hash": None,
             "token_ids": TOKENS, "block_size": 16, "lora_id": None,
             "medium": "GPU", "lora_name": None}
    return event | over


# (spec for vLLM, what the decoder must make of it): one batch per line
CASES = [
    ([_stored(False)], (BlockStored((H1, H2), None, tuple(TOKENS), 16, Tier.GPU),)),
    ([_stored(True, medium="CPU", lora_id=3, lora_name="sql", group_idx=0)],
     (BlockStored((H1, H2), None, tuple(TOKENS), 16, Tier.CPU, lora_name="sql", group_idx=0),)),
    ([_stored(False, block_hashes=[H3], parent_block_hash={"hex": H2.hex()}, token_ids=TOKENS[:16],
              lora_name="sql", group_idx=1)],
     (BlockStored((H3,), H2, tuple(TOKENS[:16]), 16, Tier.GPU, lora_name="sql", group_idx=1),)),
    # LMCache's republished chunk store: lowercase medium, one token past the chunk
    ([_stored(False, block_hashes=[77], token_ids=TOKENS[:17], block_size=16, medium="cpu")],
     (BlockStored((77,), None, tuple(TOKENS[:17]), 16, Tier.CPU, from_lmcache=True),)),
    ([{"type": "BlockRemoved", "block_hashes": [{"hex": H1.hex()}], "medium": "CPU"},
      {"type": "BlockRemoved", "positional": True, "block_hashes": [H3], "medium": "STORAGE", "group_idx": 2},
      {"type": "AllBlocksCleared"}, {"type": "AllBlocksCleared", "positional": True}],
     (BlockRemoved((H1,), Tier.CPU), BlockRemoved((H3,), Tier.STORAGE, group_idx=2), AllBlocksCleared(),
      AllBlocksCleared())),
    # a medium this decoder does not know costs that event only
    ([{"type": "BlockRemoved", "block_hashes": [5], "medium": "NVME"}, _stored(True, medium=None)],
     (BlockStored((H1, H2), None, tuple(TOKENS), 16, Tier.GPU),)),
]


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict:
    """Every case's batch, published by vLLM's ZmqEventPublisher and received live (SUB) and by
    replay (DEALER, REQ) over ipc:// sockets."""
    python = engine_python(ROOT)
    assert python is not None, "the engine-check venv is missing: run `make install` (.venv-engine)"
    spec = {"dir": str(tmp_path_factory.mktemp("zmq")), "topic": TOPIC, "batches": [c[0] for c in CASES]}
    env = dict(os.environ, VLLM_TARGET_DEVICE="cpu", VLLM_LOGGING_LEVEL="ERROR")
    done = subprocess.run([str(python), "-P", str(PUBLISHER)], input=json.dumps(spec), capture_output=True,
                          text=True, timeout=110, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _frames(message: list[str]) -> list[bytes]:
    return [bytes.fromhex(f) for f in message]


def test_every_live_batch_decodes_to_what_vllm_was_given(published) -> None:
    """Each message vLLM's publisher sent (map and positional events, bytes and int hashes, LMCache's
    "cpu", STORAGE, LoRA, groups, clears) decodes to exactly the events it was built from, with
    consecutive seqs from the first test batch, the topic and data-parallel rank 0."""
    live = published["live"]
    assert len(live) == len(CASES)
    for i, (message, (_, expected)) in enumerate(zip(live, CASES, strict=True)):
        batch = decode_message(_frames(message))
        assert batch.events == expected, i
        assert (batch.topic, batch.seq, batch.ts, batch.data_parallel_rank) == (
            TOPIC, published["first_seq"] + i, 1000.0 + i, 0)
    last = decode_message(_frames(live[-1]))
    assert last.skipped and "NVME" in last.skipped[0] and last.skipped[0].startswith("events[0]")


def test_vllm_0_33_sends_events_as_tagged_maps(published) -> None:
    """The map case really is a map on the wire and the positional case an array (the test covers
    both formats, not one twice)."""
    first, second = (msgspec.msgpack.decode(_frames(m)[2]) for m in published["live"][:2])
    assert isinstance(first[1][0], dict) and first[1][0]["type"] == "BlockStored"
    assert isinstance(second[1][0], list) and second[1][0][0] == "BlockStored"


def test_a_dealer_replay_returns_the_same_batches_then_the_end_marker(published) -> None:
    """Replay from the first test seq: every batch again, byte for byte as live (after the empty
    delimiter), then `(b"", b"", -1, b"")`."""
    replay = [_frames(m) for m in published["replay_dealer"]]
    assert replay[-1] == [b"", b"", REPLAY_END_SEQ, b""]
    assert [m[1:] for m in replay[:-1]] == [_frames(m) for m in published["live"]]
    assert all(m[0] == b"" for m in replay)


def test_a_req_socket_gets_only_the_first_replayed_batch(published) -> None:
    """Why the subscriber must replay with a DEALER: a REQ socket accepts one reply."""
    assert [_frames(m) for m in published["replay_req"]] == [_frames(published["live"][0])]


@pytest.mark.parametrize(("frames", "part"), [
    ([b"t", b"\x00" * 8], "message"),
    ([b"t", b"\x00" * 7, b"\x90"], "seq frame"),
    ([b"\xff", b"\x00" * 8, b"\x90"], "topic frame"),
    ([b"t", b"\x00" * 8, b"\xc1"], "payload"),
    ([b"t", b"\x00" * 8, msgspec.msgpack.encode({"a": 1})], "batch ts"),
    ([b"t", b"\x00" * 8, msgspec.msgpack.encode([1.0])], "payload"),
    ([b"t", b"\x00" * 8, msgspec.msgpack.encode([1.0, {}])], "batch events"),
    ([b"t", b"\x00" * 8, msgspec.msgpack.encode([1.0, [], "r"])], "batch data_parallel_rank"),
    ([b"t", b"\x00" * 8, msgspec.msgpack.encode([1.0, [7]])], "event"),
    ([b"t", b"\x00" * 8, msgspec.msgpack.encode([1.0, [{"type": "BlockStored", "block_hashes": [],
                                                         "token_ids": [], "block_size": 16}]])],
     "BlockStored.block_hashes"),
    ([b"t", b"\x00" * 8, msgspec.msgpack.encode([1.0, [["BlockStored", [1], None, [1], 0]]])],
     "BlockStored.block_size"),
    ([b"t", b"\x00" * 8, msgspec.msgpack.encode([1.0, [["BlockStored", [1], "p", [1], 16]]])],
     "BlockStored.parent_block_hash"),
    ([b"t", b"\x00" * 8, msgspec.msgpack.encode([1.0, [["BlockStored", [1], None, [True], 16]]])],
     "BlockStored.token_ids"),
    ([b"t", b"\x00" * 8, msgspec.msgpack.encode([1.0, [["BlockRemoved", "h"]]])],
     "BlockRemoved.block_hashes"),
])
def test_a_malformed_message_is_refused_naming_the_part(frames, part) -> None:
    """Wrong frame count, seq width, encoding, batch shape or field type raises, naming the part."""
    with pytest.raises(KvEventDecodeError) as err:
        decode_message(frames)
    assert err.value.part == part and str(err.value).startswith(part)


def test_an_unknown_event_type_is_skipped_and_named() -> None:
    """An event type from a later vLLM costs that event, not the batch."""
    payload = msgspec.msgpack.encode([2.0, [{"type": "BlockPinned", "x": 1}, ["AllBlocksCleared"]], 3])
    batch = decode_payload(payload, topic="t", seq=9)
    assert batch.events == (AllBlocksCleared(),) and batch.data_parallel_rank == 3
    assert batch.skipped == ("events[0]: unknown event type 'BlockPinned'",)


_FIELDS = ("block_hashes", "parent_block_hash", "token_ids", "block_size", "lora_id", "medium", "lora_name",
           "extra_keys", "group_idx")
_hash = st.one_of(st.binary(min_size=1, max_size=32), st.integers(0, 2**64 - 1))


@given(hashes=st.lists(_hash, min_size=1, max_size=4), parent=st.none() | _hash,
       tokens=st.lists(st.integers(0, 2**31), max_size=40), size=st.integers(1, 512),
       medium=st.sampled_from([None, "GPU", "CPU", "STORAGE", "cpu", "gpu"]),
       lora=st.none() | st.text(max_size=8), group=st.none() | st.integers(0, 7))
def test_both_encodings_of_an_event_decode_alike(hashes, parent, tokens, size, medium, lora, group) -> None:
    """A BlockStored as a tagged map and as a positional array decodes to one and the same value,
    whose tier is its medium read case-insensitively (GPU when absent)."""
    values = [hashes, parent, tokens, size, None, medium, lora, None, group]
    as_map = {"type": "BlockStored"} | dict(zip(_FIELDS, values, strict=True))
    as_array = ["BlockStored", *values]
    decoded = decode_event(msgspec.msgpack.decode(msgspec.msgpack.encode(as_map)))
    assert decoded == decode_event(msgspec.msgpack.decode(msgspec.msgpack.encode(as_array)))
    assert isinstance(decoded, BlockStored)
    assert decoded.tier is Tier[(medium or "GPU").upper()] and decoded.from_lmcache == (medium == "cpu")
    assert (decoded.block_hashes, decoded.parent_block_hash, decoded.token_ids) == (tuple(hashes), parent,
                                                                                    tuple(tokens))


@pytest.mark.parametrize(("topic", "engine"), [
    ("kv@10.0.0.5:8000@llama", EngineTopic("10.0.0.5", 8000, "llama")),
    ("kv@[fd00::1]:8000@org/model@v2", EngineTopic("fd00::1", 8000, "org/model@v2")),
])
def test_a_topic_names_the_engine(topic, engine) -> None:
    """`kv@<host>:<port>@<model>`: IPv4 or bracketed IPv6 host, the model may hold '@'."""
    assert parse_topic(topic) == engine


@pytest.mark.parametrize("topic", ["", "kv", "kv@10.0.0.5@llama", "kv@10.0.0.5:x@llama", "kv@:80@m",
                                   "kv@h:80@", "ev@h:80@m", "kv@h:70000@m"])
def test_a_foreign_topic_is_refused(topic) -> None:
    """Anything else raises, naming the topic."""
    with pytest.raises(KvEventDecodeError, match="topic"):
        parse_topic(topic)


def test_vllm_batches_feed_the_residency_index(published) -> None:
    """Decoded as sent by vLLM, the batches update the index: the first case's two GPU blocks
    match their tokens; case 5 removes the CPU chain's first block (no match left, its second
    block still held) and clears the GPU."""
    from router.routing.kv.keys import block_keys
    from router.routing.kv.residency import Residency, ResidencyIndex

    index = ResidencyIndex()
    index.add_engine("e", {Tier.GPU: 16 * 100, Tier.CPU: 16 * 100})
    batches = [decode_message(_frames(m)) for m in published["live"]]
    index.apply("e", batches[0].events)
    assert index.match("e", block_keys(TOKENS)) == Residency({Tier.GPU: 2})
    index.apply("e", batches[1].events)  # the same tokens, stored in the CPU tier under a LoRA
    assert index.match("e", block_keys(TOKENS, "sql")) == Residency({Tier.CPU: 2})
    index.apply("e", batches[4].events)
    assert index.size("e", Tier.GPU) == 0 and index.size("e", Tier.CPU) == 1
    assert index.match("e", block_keys(TOKENS, "sql")) == Residency({})
