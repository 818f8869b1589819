"""Decode the emulator's KV-event payloads with vLLM's own classes and encode them again.
Runs INSIDE the engine-check tool venv (`.venv-engine`: the engine image's vLLM), never
imported by the suite:

    .venv-engine/bin/python -P tests/emulator/vllm_kv_decode.py < payloads.json > decoded.json

stdin: `{"payloads": [{"hex": "...", "wire": "map" | "array"}, ...]}`. Each payload is decoded
strictly as vLLM's `KVEventBatch` of `BlockStored | BlockRemoved | AllBlocksCleared` (with
"array": the same classes with `array_like=True`, the encoding before vLLM PR #42892), then
encoded again with vLLM's encoder (as `ZmqEventPublisher` does). stdout: `{"decoded": [{"ts",
"events": [{"class", ...fields, hashes as {"hex"} or ints}], "data_parallel_rank",
"reencoded": hex}, ...]}`, or `{"error": ...}` for the first payload vLLM refuses.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import msgspec
from vllm.distributed import kv_events as vk


class PositionalStored(vk.BlockStored, array_like=True, tag="BlockStored"):  # type: ignore[call-arg]
    """vLLM's BlockStored, encoded by position."""


class PositionalRemoved(vk.BlockRemoved, array_like=True, tag="BlockRemoved"):  # type: ignore[call-arg]
    """vLLM's BlockRemoved, encoded by position."""


class PositionalCleared(vk.AllBlocksCleared, array_like=True,  # type: ignore[call-arg]
                        tag="AllBlocksCleared"):
    """vLLM's AllBlocksCleared, encoded by position."""


class PositionalBatch(vk.EventBatch):
    events: list[PositionalStored | PositionalRemoved | PositionalCleared]


DECODERS = {"map": msgspec.msgpack.Decoder(vk.KVEventBatch),
            "array": msgspec.msgpack.Decoder(PositionalBatch)}
ENCODER = msgspec.msgpack.Encoder()


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _event(event: Any) -> dict[str, Any]:
    fields = {name: _plain(getattr(event, name)) for name in event.__struct_fields__}
    return {"class": type(event).__mro__[1].__name__ if type(event).__name__.startswith("Positional")
            else type(event).__name__, **fields}


def main() -> None:
    spec = json.load(sys.stdin)
    out = []
    for item in spec["payloads"]:
        raw = bytes.fromhex(item["hex"])
        try:
            batch = DECODERS[item["wire"]].decode(raw)
        except msgspec.ValidationError as exc:
            json.dump({"error": f"{item['wire']}: {exc}"}, sys.stdout)
            return
        out.append({"ts": batch.ts, "events": [_event(e) for e in batch.events],
                    "data_parallel_rank": batch.data_parallel_rank, "reencoded": ENCODER.encode(batch).hex()})
    json.dump({"decoded": out}, sys.stdout)


if __name__ == "__main__":
    main()
