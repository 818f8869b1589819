"""LoRA adapters on an engine: which adapters it serves, the vLLM flags that load them, and the
init containers that put their files into the node's model cache. Pure builders over frozen values.

What vLLM 0.33.0 does (read in its source, `.venv-engine`):

- `vllm/config/lora.py` `LoRAConfig`: `max_lora_rank` is one of 1, 8, 16, 32, 64, 128, 256, 320,
  512 (default 16); `max_loras` (adapters in one batch, i.e. GPU slots) >= 1, default 1;
  `max_cpu_loras` (adapters kept in host memory) defaults to `max_loras` and must be >= it.
  `vllm/engine/arg_utils.py` builds it only with `--enable-lora`, and passes `--max-cpu-loras`
  only when > 0.
- `--lora-modules` (`vllm/entrypoints/common/cli_args.py`, `LoRAParserAction`): `name=path`
  items (an item holding a ',' is read as JSON instead). At start the server loads every one
  (`OpenAIServingModels.init_static_loras`, `vllm/entrypoints/openai/models/serving.py`) and
  raises when one fails: a bad adapter fails the engine's start, not a request.
- `/v1/models` lists every loaded adapter as a card with `root` = its path and `parent` = the
  served base model name (`show_available_models`); a request naming the adapter as `model` is
  served with it (`vllm/entrypoints/serve/engine/serving.py`, `_check_model`).
- Adapters beyond `max_cpu_loras` are evicted from host memory least-recently-used and read
  again from their path when asked for (`vllm/lora/worker_manager.py`,
  `LRUCacheWorkerLoRAManager.add_adapter`), so the files must stay on the node.
- `vllm:lora_requests_info{max_lora, running_lora_adapters, waiting_lora_adapters}`
  (`vllm/v1/metrics/loggers.py`): a gauge set to the current time, one series per label set,
  the adapters comma-joined; the newest series is the current state.

Decision: adapters are declared at deploy time and loaded with `--lora-modules` from files an
init container copies into the model cache; not runtime loading (`POST /v1/load_lora_adapter`)
and not the filesystem resolver plugin (`VLLM_PLUGINS=lora_filesystem_resolver`,
`VLLM_LORA_RESOLVER_CACHE_DIR`). Why:

1. Both other paths need `VLLM_ALLOW_RUNTIME_LORA_UPDATING`: the resolver is only consulted
   under it (`_check_model`), and it also mounts the load/unload endpoints, which vLLM logs as
   "should ONLY be used for local development" (`vllm/entrypoints/serve/lora/api_router.py`).
   Those endpoints take any path on the engine's port, without authentication, and the setting
   is refused with more than one API server (`vllm/entrypoints/cli/serve.py`).
2. The filesystem resolver (`vllm/plugins/lora_resolvers/filesystem_resolver.py`) serves an
   adapter only when its `adapter_config.json` names `base_model_name_or_path` equal to the
   engine's `model_config.model`, i.e. the model *path*: with the S3 model store that is the
   local directory (`model_store.local_model_dir`), which no adapter names, so every adapter
   would answer 404.
3. A resolved adapter appears in `/v1/models` only after its first request, so the router
   could not learn which engines serve it; a static one is listed from the start.

The cost: declaring, changing or removing an adapter changes the engine's command, so
`pulumi up` rolls the engines (a drained rolling update, `drain.py`).

Weighted rollouts (`LoraRollout`): a stable name clients send, split by weight over versions,
each version loaded as an adapter of its own named `<name>--<version>` (`version_name`). The
split is the router's (`RouterSettings.rollouts`, `router.routing.rollout`), so changing
weights changes only the router's settings: the routers roll (drained), the engines do not.
Every declared version is loaded, weight 0 included: a version leaving the split stays loaded
while routers that still send to it drain, and is removed (an engine rollout) by a later
change that deletes it from the config.

LMCache: LMCache 0.5.6 keys its CPU-tier chunks by (model name, world size, worker, token-chunk
hash, KV dtype, request tags) (`lmcache/v1/token_database.py`, `CacheEngineKey`) and its
`LMCacheConnectorV1` adapter passes no LoRA identity (`lmcache/integration/vllm/vllm_v1_adapter.py`),
while vLLM's own prefix cache adds the adapter to every block hash (`vllm/v1/core/kv_cache_utils.py`,
`_gen_lora_extra_hash_keys`). An engine with adapters and LMCache would hand one adapter's KV to
another on the same prompt prefix, so `VllmEngineArgs` refuses the two together.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from router.settings import SettingsError, check_rollout_weights
from stack_components import _validate as v
from stack_components import kube
from stack_components.errors import ArgsError
from stack_components.model_store import ModelStore
from stack_components.versions import VENV_BIN

MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""vLLM 0.33's allowed `--max-lora-rank` values (`vllm/config/lora.py`, `MaxLoRARanks`)."""
DEFAULT_MAX_LORAS = 4
"""GPU adapter slots when not set: at most this many (fewer when fewer adapters are declared)."""
LOCAL_SUBDIR = "lora"
"""Under the model cache's mount path: `<mount>/lora/hf/<org>/<repo>/<revision>` and
`<mount>/lora/s3/<bucket>/<key>`."""
COMPLETE_MARKER = ".llm-stack-complete"
"""Written into an adapter's directory after a full copy: its presence skips the copy."""
LORA_FLAGS = ("--enable-lora", "--no-enable-lora", "--max-loras", "--max-cpu-loras", "--max-lora-rank",
              "--lora-modules")
"""The vLLM flags this module renders (managed: `extra_args` may not set them)."""

VERSION_SEPARATOR = "--"
"""Between a rollout's stable name and its version in the served adapter name: `sql--v2`."""

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
_HF = re.compile(r"^hf://(?P<repo>[\w.-]+/[\w.-]+)@(?P<revision>[\w.-]+)$")
_S3 = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\s]+?)/?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

# `$1` repo, `$2` revision, `$3` destination (positional: nothing from the config is spliced
# into the code); huggingface_hub's `snapshot_download` into a local directory skips files it
# already has, so a copy cut short by a restart resumes; the marker is written last.
HF_FETCH_CODE = (
    "import pathlib, sys\n"
    "from huggingface_hub import snapshot_download\n"
    "repo, revision, dest = sys.argv[1:4]\n"
    f"marker = pathlib.Path(dest, {COMPLETE_MARKER!r})\n"
    "if marker.exists():\n"
    "    print('adapter cached in', dest); sys.exit(0)\n"
    "snapshot_download(repo_id=repo, revision=revision, local_dir=dest)\n"
    "marker.touch()\n"
)
S3_FETCH_SCRIPT = (
    'set -eu; if [ -f "$2/' + COMPLETE_MARKER + '" ]; then echo "adapter cached in $2"; exit 0; fi; '
    'mkdir -p "$2"; aws s3 sync --no-progress --only-show-errors "$1" "$2"; '
    'touch "$2/' + COMPLETE_MARKER + '"'
)

# `$1` the engine's model id, `$2` its `--max-lora-rank`, then per adapter `name dir trained_on`
# (trained_on "" = the model id). Runs after the fetches, before vLLM starts: each adapter's
# `adapter_config.json` must exist, its rank (the largest of `r` and `rank_pattern`, as vLLM 0.33's
# `PEFTHelper.validate_legal` computes it, `vllm/lora/peft_helper.py`) fit the engine's slots, and
# the base model it names (`base_model_name_or_path`, a repository id; a local training path is
# not compared) be the engine's model. vLLM itself checks the rank only when it loads the adapter
# at start, and never the base model: an adapter of another model would load and answer garbage.
LORA_CHECK_CODE = (
    "import json, os, re, sys\n"
    "model, max_rank, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3:]\n"
    "repo_id = re.compile(r'^[\\w.-]+/[\\w.-]+$')\n"
    "failed = []\n"
    "for name, path, trained_on in zip(rest[0::3], rest[1::3], rest[2::3]):\n"
    "    try:\n"
    "        with open(os.path.join(path, 'adapter_config.json')) as f:\n"
    "            cfg = json.load(f)\n"
    "    except (OSError, ValueError) as err:\n"
    "        failed.append(f'adapter {name}: no readable adapter_config.json in {path} ({err})')\n"
    "        continue\n"
    "    rank = max([int(cfg.get('r') or 0), *map(int, (cfg.get('rank_pattern') or {}).values())])\n"
    "    if rank > max_rank:\n"
    "        failed.append(f'adapter {name}: rank {rank} (adapter_config.json r/rank_pattern) is more '\n"
    "                      f'than the engine\\'s --max-lora-rank {max_rank}: declare its rank as {rank}')\n"
    "    base = cfg.get('base_model_name_or_path')\n"
    "    wanted = trained_on or model\n"
    "    if isinstance(base, str) and repo_id.match(base.strip()):\n"
    "        if base.strip().lower() != wanted.lower():\n"
    "            failed.append(f'adapter {name}: trained on {base}, this engine serves {model}: serve it '\n"
    "                          f'on a model of its base, or set its baseModel to {base} if that is '\n"
    "                          f'another name of {model}')\n"
    "    else:\n"
    "        print(f'adapter {name}: base model {base!r} is not a repository id, not compared')\n"
    "    print(f'adapter {name}: rank {rank}, base {base!r}')\n"
    "for line in failed:\n"
    "    print(line, file=sys.stderr)\n"
    "sys.exit(1 if failed else 0)\n"
)


@dataclass(frozen=True, kw_only=True)
class AdapterSource:
    """Where an adapter's files come from: a Hugging Face repository at a revision, or an S3 prefix."""

    kind: Literal["hf", "s3"]
    """`hf` or `s3`."""
    location: str
    """`org/repo` (hf) or `bucket/key` (s3, no trailing '/')."""
    revision: str | None = None
    """The repository revision (hf only)."""

    @property
    def pinned(self) -> bool:
        """An S3 prefix, or a Hugging Face revision that is a full commit hash (a branch moves)."""
        return self.kind == "s3" or bool(_COMMIT.match(self.revision or ""))

    @property
    def url(self) -> str:
        """`hf://org/repo@revision` or `s3://bucket/key/`."""
        return f"hf://{self.location}@{self.revision}" if self.kind == "hf" else f"s3://{self.location}/"


def parse_source(field: str, text: str) -> AdapterSource:
    """`hf://org/repo@revision` or `s3://bucket/key` as an `AdapterSource`; `ArgsError` naming
    `field` otherwise."""
    hf = _HF.match(text) if isinstance(text, str) else None
    if hf:
        return AdapterSource(kind="hf", location=hf["repo"], revision=hf["revision"])
    s3 = _S3.match(text) if isinstance(text, str) else None
    parts = s3["key"].split("/") if s3 else [""]
    if s3 and all(p and p not in (".", "..") for p in parts):
        return AdapterSource(kind="s3", location=f"{s3['bucket']}/{s3['key']}")
    v.require(False, field, text, "must be hf://<org>/<repo>@<revision> or s3://<bucket>/<key prefix>")
    raise AssertionError  # unreachable: require raised


@dataclass(frozen=True, kw_only=True)
class LoraAdapter:
    """One adapter an engine serves: clients send its name as `model`."""

    name: str
    """The name clients request (a DNS label of at most 40 characters: it also names the init
    container that fetches it)."""
    source: str
    """`hf://<org>/<repo>@<revision>` or `s3://<bucket>/<key prefix>`."""
    rank: int
    """The adapter's LoRA rank (`r` in its `adapter_config.json`); at most the engine's `max_lora_rank`."""
    base_model: str | None = None
    """The base model its `adapter_config.json` names when that is another name of the engine's
    model (a renamed repository); None: the engine's model id (`LORA_CHECK_CODE` compares them)."""

    def __post_init__(self) -> None:
        v.require(isinstance(self.name, str) and bool(_NAME.match(self.name)), "name", self.name,
                  "must be 1-40 lowercase letters, digits or '-', starting and ending with a letter or digit")
        parse_source("source", self.source)
        v.int_in("rank", self.rank, 1, MAX_LORA_RANKS[-1])
        alias = self.base_model
        v.require(alias is None or (isinstance(alias, str) and bool(_REPO_ID.match(alias))),
                  "base_model", alias, "must be a Hugging Face id like org/name")

    @property
    def parsed_source(self) -> AdapterSource:
        """The source, parsed."""
        return parse_source("source", self.source)


def version_name(name: str, version: str) -> str:
    """The served adapter name of version `version` of rollout `name`: `sql--v2`."""
    return f"{name}{VERSION_SEPARATOR}{version}"


@dataclass(frozen=True, kw_only=True)
class LoraRollout:
    """A stable adapter name clients send, split by weight over versions that the engine serves
    as adapters of their own; the router picks one per conversation (`router.routing.rollout`)."""

    name: str
    """The stable name clients send as `model` (the same rule as an adapter's name)."""
    weights: Mapping[str, int] = field(default_factory=dict)
    """Version (a served adapter name, see `version_name`) -> percent of new conversations:
    whole numbers summing to 100; 0 keeps a version loaded and sends it nothing new."""

    def __post_init__(self) -> None:
        v.require(isinstance(self.name, str) and bool(_NAME.match(self.name)), "name", self.name,
                  "must be 1-40 lowercase letters, digits or '-', starting and ending with a letter or digit")
        try:
            check_rollout_weights("weights", self.weights)
        except SettingsError as err:  # the router's rule, under this field
            raise ArgsError(err.field_name, err.value, err.allowed) from None


@dataclass(frozen=True, kw_only=True)
class LoraArgs:
    """The adapters of one engine and vLLM's LoRA slots."""

    adapters: tuple[LoraAdapter, ...]
    """The adapters, loaded at the engine's start (`--lora-modules`)."""
    max_loras: int | None = None
    """Adapters in one batch (GPU slots, `--max-loras`); None: `min(len(adapters), DEFAULT_MAX_LORAS)`."""
    max_cpu_loras: int | None = None
    """Adapters kept in host memory (`--max-cpu-loras`, >= max_loras); None: every adapter."""
    max_lora_rank: int | None = None
    """`--max-lora-rank`, one of `MAX_LORA_RANKS`; None: the smallest that holds every adapter's rank."""
    rollouts: tuple[LoraRollout, ...] = ()
    """Stable names split over versions, each version one of `adapters` (in one rollout only)."""

    def __post_init__(self) -> None:
        v.require(isinstance(self.adapters, tuple) and bool(self.adapters), "lora.adapters", self.adapters,
                  "must be a non-empty tuple of LoraAdapter")
        names = [a.name for a in self.adapters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        v.require(not dupes, "lora.adapters", dupes, "must name each adapter once")
        if self.max_loras is not None:
            v.int_in("lora.max_loras", self.max_loras, 1, 256)
        if self.max_cpu_loras is not None:
            v.require(isinstance(self.max_cpu_loras, int) and self.slots <= self.max_cpu_loras <= 4096,
                      "lora.max_cpu_loras", self.max_cpu_loras,
                      f"must be an integer >= max_loras ({self.slots}) and <= 4096 (vLLM's LoRAConfig)")
        if self.max_lora_rank is not None:
            v.one_of("lora.max_lora_rank", self.max_lora_rank, MAX_LORA_RANKS)
        for i, adapter in enumerate(self.adapters):
            v.require(adapter.rank <= self.rank, f"lora.adapters[{i}].rank", adapter.rank,
                      f"must be <= the engine's max_lora_rank ({self.rank})")
        self._check_rollouts(names)

    def _check_rollouts(self, names: list[str]) -> None:
        v.require(isinstance(self.rollouts, tuple) and all(isinstance(r, LoraRollout) for r in self.rollouts),
                  "lora.rollouts", self.rollouts, "must be a tuple of LoraRollout")
        owner: dict[str, str] = {}
        for i, rollout in enumerate(self.rollouts):
            v.require(rollout.name not in names and rollout.name not in owner.values(),
                      f"lora.rollouts[{i}].name", rollout.name,
                      "must differ from every adapter's and every other rollout's name")
            for version in rollout.weights:
                v.require(version in names and version not in owner, f"lora.rollouts[{i}].weights.{version}",
                          version, "must name one of the adapters, in one rollout only")
                owner[version] = rollout.name

    @property
    def slots(self) -> int:
        """`--max-loras`."""
        return self.max_loras or min(len(self.adapters), DEFAULT_MAX_LORAS)

    @property
    def cpu_slots(self) -> int:
        """`--max-cpu-loras`."""
        return self.max_cpu_loras or max(len(self.adapters), self.slots)

    @property
    def rank(self) -> int:
        """`--max-lora-rank`."""
        if self.max_lora_rank is not None:
            return self.max_lora_rank
        top = max(a.rank for a in self.adapters)
        return next(r for r in MAX_LORA_RANKS if r >= top)

    def names(self) -> tuple[str, ...]:
        """The adapters' names, as declared."""
        return tuple(a.name for a in self.adapters)

    def rollout_table(self) -> dict[str, dict[str, int]]:
        """The rollouts as the router's settings hold them: stable name -> {version: weight}."""
        return {r.name: dict(r.weights) for r in self.rollouts}


def adapter_dir(mount_path: str, source: AdapterSource) -> str:
    """Where an adapter's files land in the model cache (a new source, a new directory: a
    changed revision never reuses the old files)."""
    if source.kind == "hf":
        return posixpath.join(mount_path, LOCAL_SUBDIR, "hf", source.location, source.revision or "")
    return posixpath.join(mount_path, LOCAL_SUBDIR, "s3", source.location)


def render_lora_args(lora: LoraArgs, mount_path: str) -> list[str]:
    """vLLM's LoRA flags: slots, rank and every adapter as `name=path` (paths hold no ',')."""
    modules = [f"{a.name}={adapter_dir(mount_path, a.parsed_source)}" for a in lora.adapters]
    return ["--enable-lora", "--max-loras", str(lora.slots), "--max-cpu-loras", str(lora.cpu_slots),
            "--max-lora-rank", str(lora.rank), "--lora-modules", *modules]


def check_s3_sources(lora: LoraArgs, store: ModelStore | None) -> None:
    """S3 adapters are read by the model store's role: only under its bucket and prefix."""
    for i, adapter in enumerate(lora.adapters):
        source = adapter.parsed_source
        if source.kind != "s3":
            continue
        v.require(store is not None, f"lora.adapters[{i}].source", adapter.source,
                  "must be an hf:// source when the engine has no model_store (no role reads S3)")
        assert store is not None
        root = f"{store.bucket}/{store.prefix}/"
        v.require(source.location.startswith(root), f"lora.adapters[{i}].source", adapter.source,
                  f"must lie under s3://{root} (what the model store's read-only role may read)")


def fetch_init_containers(lora: LoraArgs, *, image: str, store: ModelStore | None, mount_path: str,
                          hf_token: tuple[str, str] | None) -> list[dict[str, Any]]:
    """One init container per adapter copying it into the model cache unless already complete:
    S3 with the model store's AWS CLI image and role, the Hugging Face hub with the engine image's
    `huggingface_hub` (and the token Secret `(name, key)` when given)."""
    out = []
    for adapter in lora.adapters:
        source = adapter.parsed_source
        dest = adapter_dir(mount_path, source)
        if source.kind == "s3":
            assert store is not None  # check_s3_sources
            out.append(_init(f"lora-{adapter.name}", store.image,
                             ["/bin/sh", "-c", S3_FETCH_SCRIPT, "lora-fetch", source.url, dest],
                             kube.plain_env({"AWS_REGION": store.region, "HOME": "/tmp"}), mount_path))
            continue
        env = kube.plain_env({"HOME": "/tmp", "HF_HUB_DISABLE_TELEMETRY": "1"})
        if hf_token is not None:
            env.append(kube.secret_env("HF_TOKEN", *hf_token))
        command = [f"{VENV_BIN}/python3", "-c", HF_FETCH_CODE, source.location, source.revision or "", dest]
        out.append(_init(f"lora-{adapter.name}", image, command, env, mount_path))
    return out


def check_init_container(lora: LoraArgs, *, image: str, model: str, mount_path: str) -> dict[str, Any]:
    """After the fetches: every adapter's files checked against the engine (`LORA_CHECK_CODE`),
    so a wrong adapter stops the pod's start with a message naming it, before vLLM loads it."""
    command = [f"{VENV_BIN}/python3", "-c", LORA_CHECK_CODE, model, str(lora.rank)]
    for adapter in lora.adapters:
        command += [adapter.name, adapter_dir(mount_path, adapter.parsed_source), adapter.base_model or ""]
    return _init("lora-check", image, command, kube.plain_env({"HOME": "/tmp"}), mount_path)


def _init(name: str, image: str, command: list[str], env: list[dict[str, Any]],
          mount_path: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "env": env,
        "resources": kube.resources(cpu=1.0, memory_gib=1.0),
        "securityContext": kube.container_security_context(read_only_root=True),
        "volumeMounts": [{"name": "model-cache", "mountPath": mount_path},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
