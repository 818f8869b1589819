"""LoRA adapters of one emulated engine as vLLM 0.33 serves them: settings, the served adapters
and their answers (pure; the GPU slots and CPU cache are `emulator.lora_slots`).

What vLLM does, read in its source (`.venv-engine`, vLLM 0.33.0):

- Flags (`vllm/config/lora.py` `LoRAConfig`): `--enable-lora`; `--max-loras` (default 1, >= 1:
  adapters in one batch, the GPU slots); `--max-cpu-loras` (default `max_loras`, must be >=
  it: adapters kept in CPU memory); `--max-lora-rank` one of 1, 8, 16 (default), 32, 64, 128,
  256, 320, 512; `--lora-modules name=path` or a JSON object `{"name", "path",
  "base_model_name"}` (`LoRAParserAction`, vllm/entrypoints/common/cli_args.py), loaded at start
  through the same path as a runtime load (`OpenAIServingModels.init_static_loras`).
- The served adapters (`vllm/entrypoints/openai/models/serving.py` `OpenAIServingModels`): each
  gets the next integer id; `/v1/models` lists the base model, then every adapter as a card
  with `root` its path and `parent` its base model name (the served name when none is given).
- `POST /v1/load_lora_adapter` / `/v1/unload_lora_adapter` exist only with
  `VLLM_ALLOW_RUNTIME_LORA_UPDATING` (`vllm/entrypoints/serve/lora/api_router.py`); their
  errors are `_check_load_lora_adapter_request` / `_check_unload_lora_adapter_request`'s, a path
  with no adapter is `LoRAAdapterNotFoundError` (404), success is a plain-text sentence. An
  unload only forgets the name: the engine keeps the weights until its LRU evicts them.
- A request naming neither the base model nor a served adapter is refused by
  `BaseServing._check_model` (vllm/entrypoints/serve/engine/serving.py): 404 NotFoundError,
  param "model", "The model `X` does not exist. Valid aliases: <base>." (with runtime updating
  on, the resolver plugins are asked first; the emulator has none, so the answer is the same).
- An adapter's prefix-cache blocks are its own: vLLM adds `("lora", name, path)` to every block
  hash (`vllm/v1/core/kv_cache_utils.py` `_gen_lora_extra_hash_keys`), so `cache_salt` here is
  the name and the path.

The emulator reads no weights: a path names an adapter when it exists on disk or looks like a
Hugging Face repo id (`org/name`: vLLM would download it; the emulator has no network), which the
I/O shell decides (`path_found`) and passes in.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import ConfigError, WireError, require

MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's `MaxLoRARanks`
CPU_LOAD_S = 0.025
"""An adapter's move from the CPU cache into a GPU slot. Derived, not measured: a rank-16 adapter
of Llama-3.1-8B over its 7 projections is 32 layers x 16 x 81,920 x 2 bytes = 84 MB, 3.4 ms at
DESIGN.md's 25 GB/s PCIe; vLLM copies it as ~450 pinned tensors (`activate_adapter`, vLLM PR
#31317), which we round up to 25 ms."""
DISK_LOAD_S = 0.5
"""An adapter's load from disk into the CPU cache (then a GPU slot): measured 500 ms to 1 s per
adapter in predibase/lorax#433 (safetensors read plus per-layer device copies; vLLM's
`WorkerLoRAManager._load_adapter` does the same read, PEFT checks and pinning); the low end."""
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True, slots=True)
class LoraModule:
    """One `--lora-modules` entry."""

    name: str
    path: str
    base_model_name: str | None = None


def parse_module(text: str) -> LoraModule:
    """One `--lora-modules` value as vLLM's `LoRAParserAction` reads it: `name=path` (no comma), else
    a JSON object with `name`, `path` and optionally `base_model_name`."""
    if "=" in text and "," not in text:
        name, path = text.split("=", 1)
        return LoraModule(name, path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigError("lora_modules", text, "must be name=path or a JSON object") from None
    allowed = {"name", "path", "base_model_name", "is_3d_lora_weight"}
    require(isinstance(raw, dict) and {"name", "path"} <= raw.keys() <= allowed, "lora_modules", text,
            "must be a JSON object with name and path (optionally base_model_name, is_3d_lora_weight)")
    return LoraModule(str(raw["name"]), str(raw["path"]), raw.get("base_model_name"))


@dataclass(frozen=True, kw_only=True)
class LoraSettings:
    """`--enable-lora` and its flags, plus the emulator's load costs (seconds before `time_scale`)."""

    max_loras: int = 1
    max_cpu_loras: int | None = None  # None: max_loras, as vLLM
    max_lora_rank: int = 16
    modules: tuple[LoraModule, ...] = ()
    runtime_updating: bool = False  # VLLM_ALLOW_RUNTIME_LORA_UPDATING
    cpu_load_s: float = CPU_LOAD_S
    disk_load_s: float = DISK_LOAD_S
    cpu_slots: int = field(init=False)

    def __post_init__(self) -> None:
        require(isinstance(self.max_loras, int) and self.max_loras >= 1, "max_loras", self.max_loras,
                "must be >= 1")
        cpu = self.max_loras if self.max_cpu_loras is None else self.max_cpu_loras
        require(isinstance(cpu, int) and cpu >= self.max_loras, "max_cpu_loras", self.max_cpu_loras,
                f"must be >= max_loras ({self.max_loras})")
        require(self.max_lora_rank in MAX_LORA_RANKS, "max_lora_rank", self.max_lora_rank,
                f"must be one of {', '.join(map(str, MAX_LORA_RANKS))}")
        for name in ("cpu_load_s", "disk_load_s"):
            value = getattr(self, name)
            require(isinstance(value, int | float) and 0 <= value < 3600, name, value,
                    "must be in [0, 3600) s")
        names = [m.name for m in self.modules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        require(not dupes, "lora_modules", dupes, "must name each adapter once (vLLM refuses a second load)")
        require(all(m.name and m.path for m in self.modules), "lora_modules", names,
                "must give every adapter a name and a path")
        object.__setattr__(self, "cpu_slots", cpu)


def path_found(path: str) -> bool:
    """Whether the emulator takes `path` for an adapter (I/O: reads the filesystem): it exists on
    disk, or it is a Hugging Face repo id vLLM would download."""
    expanded = os.path.expanduser(path)
    return os.path.exists(expanded) or (not os.path.isabs(expanded) and bool(_REPO_ID.match(path)))


def adapter_rank(path: str) -> int | None:
    """The rank `r` in `path`'s `adapter_config.json` (I/O), None when there is none to read."""
    config = os.path.join(os.path.expanduser(path), "adapter_config.json")
    try:
        with open(config, encoding="utf-8") as handle:
            rank = json.load(handle).get("r")
    except (OSError, ValueError, AttributeError):
        return None
    return rank if isinstance(rank, int) else None


@dataclass(frozen=True, slots=True)
class Adapter:
    """One served adapter (vLLM's `LoRARequest`)."""

    name: str
    lora_id: int
    path: str
    parent: str

    @property
    def cache_salt(self) -> str:
        """What its prefix-cache blocks are keyed by (`_gen_lora_extra_hash_keys`)."""
        return f"lora\x00{self.name}\x00{self.path}"


def _invalid(message: str) -> WireError:
    return WireError(400, message, "InvalidUserInput")


class AdapterRegistry:
    """The adapters an engine serves, loaded and unloaded as `OpenAIServingModels` does."""

    def __init__(self, base_model: str, max_lora_rank: int = 16) -> None:
        self.base_model = base_model
        self.max_lora_rank = max_lora_rank
        self.adapters: dict[str, Adapter] = {}
        self._last_id = 0

    def load(self, name: str, path: str, *, found: bool, load_inplace: bool = False,
             base_model_name: str | None = None, rank: int | None = None) -> Adapter:
        """Serve `name` from `path` (`found`: whether the path holds an adapter; `rank`: its
        `adapter_config.json`'s `r` when read); raises `WireError` with vLLM's answer when it
        refuses (a rank above `--max-lora-rank` fails `PEFTHelper.validate_legal` in the engine,
        which the server answers as a 500)."""
        if not name or not path:
            raise _invalid("Both 'lora_name' and 'lora_path' must be provided.")
        if name == self.base_model:
            raise _invalid(f"The lora adapter '{name}' conflicts with a served base model.")
        if not load_inplace and name in self.adapters:
            raise _invalid(f"The lora adapter '{name}' has already been loaded. If you want to load the "
                           "adapter in place, set 'load_inplace' to True.")
        if not found:
            raise WireError(404, f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError")
        if rank is not None and rank > self.max_lora_rank:
            raise WireError(500, f"LoRA rank {rank} is greater than max_lora_rank {self.max_lora_rank}.",
                            "InternalServerError")
        previous = self.adapters.get(name)
        if previous is None:
            self._last_id += 1
        lora_id = previous.lora_id if previous is not None else self._last_id
        parent = base_model_name if base_model_name == self.base_model else self.base_model
        adapter = Adapter(name=name, lora_id=lora_id, path=path, parent=parent)
        self.adapters[name] = adapter
        return adapter

    def unload(self, name: str) -> Adapter:
        """Stop serving `name`; raises `WireError` with vLLM's answer when it refuses."""
        if not name:
            raise _invalid("'lora_name' needs to be provided to unload a LoRA adapter.")
        adapter = self.adapters.pop(name, None)
        if adapter is None:
            raise WireError(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        return adapter

    def resolve(self, model: str | None) -> Adapter | None:
        """The adapter a request's `model` names (None: the base model); raises vLLM's 404."""
        if not model or model == self.base_model:
            return None
        adapter = self.adapters.get(model)
        if adapter is None:
            raise WireError(404, f"The model `{model}` does not exist. Valid aliases: {self.base_model}.",
                            "NotFoundError", "model")
        return adapter

    def cards(self, created: int) -> list[dict[str, Any]]:
        """The adapters' `/v1/models` cards, in load order (vLLM's `show_available_models`)."""
        return [{"id": a.name, "object": "model", "created": created, "owned_by": "vllm", "root": a.path,
                 "parent": a.parent, "max_model_len": None} for a in self.adapters.values()]


def success(name: str, loaded: bool) -> str:
    """vLLM's plain-text answer to a load or unload that succeeded."""
    return f"Success: LoRA adapter '{name}' {'added' if loaded else 'removed'} successfully."


def load_request(body: Any) -> tuple[str, str, bool]:
    """`LoadLoRAAdapterRequest`'s fields (lora_name, lora_path, load_inplace); a missing or
    mistyped one is the 400 FastAPI's validation gives, param `body.<field>`."""
    obj = _object(body)
    return _text(obj, "lora_name"), _text(obj, "lora_path"), _flag(obj, "load_inplace")


def unload_request(body: Any) -> str:
    """`UnloadLoRAAdapterRequest`'s lora_name."""
    obj = _object(body)
    if obj.get("lora_int_id") is not None and not isinstance(obj["lora_int_id"], int):
        raise WireError(400, "Input should be a valid integer", param="body.lora_int_id")
    return _text(obj, "lora_name")


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise WireError(400, "Input should be a valid dictionary or object", param="body")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    if name not in body:
        raise WireError(400, f"Field required: {name}", param=f"body.{name}")
    value = body[name]
    if not isinstance(value, str):
        raise WireError(400, f"Input should be a valid string: {name}", param=f"body.{name}")
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise WireError(400, f"Input should be a valid boolean: {name}", param=f"body.{name}")
    return value
