"""Where a new conversation of a LoRA adapter is placed: on engines that already have the
adapter active, else on engines with a free adapter slot, else anywhere (pure).

An engine's adapter state comes from its `vllm:lora_requests_info` (scraped into
`EngineState.lora_running` / `lora_waiting` / `max_loras`): the adapters with requests running
or waiting, and its `--max-loras` GPU slots. vLLM loads an adapter into a GPU slot when a batch
needs it and evicts the least recently used one when all slots are taken
(`vllm/lora/model_manager.py`, LRU): sending an adapter where it is already active costs no
load; sending it where a slot is free costs one load and no eviction; sending it elsewhere
evicts another adapter that may be needed again (thrash). Only the engines with room under the
policy's bounded-load limit are offered here, so a busy adapter spreads to free slots instead
of piling onto its first engine.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.routing.base import EngineState


def active(engine: EngineState, adapter: str) -> bool:
    """Whether `adapter` has requests running or waiting on `engine`."""
    return adapter in engine.lora_running or adapter in engine.lora_waiting


def free_slot(engine: EngineState) -> bool:
    """Whether `engine` reports fewer adapters in use than its GPU slots (unknown: no)."""
    return engine.max_loras > 0 and len(engine.lora_running | engine.lora_waiting) < engine.max_loras


def adapter_homes(engines: Sequence[EngineState], adapter: str) -> list[EngineState]:
    """The engines to place a new conversation of `adapter` among: those where it is active,
    else those with a free slot, else all of `engines` (also when none reports LoRA state)."""
    warm = [e for e in engines if active(e, adapter)]
    if warm:
        return warm
    return [e for e in engines if free_slot(e)] or list(engines)
