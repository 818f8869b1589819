"""LoRA adapters on an engine (`stack_components.lora`): the flags rendered, the fetch init
containers, and the rules that refuse what vLLM, LMCache or the model store's role would break."""

from __future__ import annotations

import os
import subprocess

import pytest

from stack_components import LoraAdapter, LoraArgs, LoraRollout, ModelStore, RouterArgs, VllmEngineArgs
from stack_components.engine import engine_capacity
from stack_components.engine_manifests import build_container, build_pod_spec
from stack_components.errors import ArgsError
from stack_components.lora import (
    COMPLETE_MARKER,
    MAX_LORA_RANKS,
    adapter_dir,
    parse_source,
    render_lora_args,
    version_name,
)
from stack_components.router import router_settings
from stack_components.vllm_args import check_extra_args

COMMIT = "0123456789abcdef0123456789abcdef01234567"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
STORE = ModelStore(bucket="acme-llm-weights", prefix="models", region="us-east-1",
                   service_account="llama-model-store", role_arn="arn:aws:iam::111122223333:role/reader")


def _hf(name: str, rank: int = 16, revision: str = COMMIT) -> LoraAdapter:
    return LoraAdapter(name=name, source=f"hf://acme/{name}-lora@{revision}", rank=rank)


def test_sources_parse_into_kind_location_and_revision() -> None:
    """hf:// names a repository at a revision, s3:// a bucket and key prefix (trailing '/' optional)."""
    hf = parse_source("source", f"hf://acme/sql-lora@{COMMIT}")
    assert (hf.kind, hf.location, hf.revision, hf.pinned) == ("hf", "acme/sql-lora", COMMIT, True)
    assert parse_source("source", "hf://acme/sql-lora@main").pinned is False
    s3 = parse_source("source", "s3://acme-llm-weights/models/adapters/sql/")
    assert (s3.kind, s3.location, s3.url) == ("s3", "acme-llm-weights/models/adapters/sql",
                                             "s3://acme-llm-weights/models/adapters/sql/")


@pytest.mark.parametrize("text", ["acme/sql-lora", "hf://acme/sql-lora", "hf://sql@main", "s3://acme-llm-weights",
                                  "s3://acme-llm-weights/../x", "s3://Bad_Bucket/x", "https://hf.co/acme/x"])
def test_a_malformed_source_is_refused_naming_it(text: str) -> None:
    """Anything else than hf://org/repo@revision or s3://bucket/key fails, naming field and value."""
    with pytest.raises(ArgsError) as err:
        LoraAdapter(name="sql", source=text, rank=8)
    assert err.value.field_name == "source" and text in str(err.value) and "hf://" in str(err.value)


@pytest.mark.parametrize(("field", "kwargs"), [
    ("name", {"name": "SQL"}), ("name", {"name": "a" * 41}), ("name", {"name": "-x"}),
    ("rank", {"rank": 0}), ("rank", {"rank": 1024}),
])
def test_an_adapter_with_a_bad_name_or_rank_is_refused(field: str, kwargs: dict) -> None:
    """Names are DNS labels of at most 40 characters (they name an init container); ranks 1..512."""
    with pytest.raises(ArgsError) as err:
        LoraAdapter(**({"name": "sql", "source": f"hf://acme/x@{COMMIT}", "rank": 8} | kwargs))
    assert err.value.field_name == field


def test_slots_default_to_the_adapters_up_to_four_and_rank_to_the_smallest_allowed() -> None:
    """--max-loras: one slot per adapter, at most 4; --max-cpu-loras: every adapter; --max-lora-rank:
    the smallest vLLM allows that holds the largest rank."""
    two = LoraArgs(adapters=(_hf("a", 8), _hf("b", 24)))
    assert (two.slots, two.cpu_slots, two.rank) == (2, 2, 32)
    many = LoraArgs(adapters=tuple(_hf(f"a{i}", 16) for i in range(10)))
    assert (many.slots, many.cpu_slots, many.rank) == (4, 10, 16)
    assert LoraArgs(adapters=(_hf("a", 320),)).rank == 320
    assert all(LoraArgs(adapters=(_hf("a", r),)).rank == r for r in MAX_LORA_RANKS)


def test_rank_above_the_configured_max_is_refused_naming_the_adapter() -> None:
    """An adapter's rank above `max_lora_rank` fails at the adapter's index (vLLM would fail to load it)."""
    with pytest.raises(ArgsError) as err:
        LoraArgs(adapters=(_hf("a", 8), _hf("b", 64)), max_lora_rank=32)
    assert err.value.field_name == "lora.adapters[1].rank" and "32" in err.value.allowed


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"max_lora_rank": 24}, "lora.max_lora_rank"),
    ({"max_loras": 4, "max_cpu_loras": 2}, "lora.max_cpu_loras"),
    ({"max_loras": 0}, "lora.max_loras"),
])
def test_slot_settings_vllm_refuses_are_refused_first(kwargs: dict, field: str) -> None:
    """A rank vLLM does not allow, fewer CPU than GPU slots, zero slots: refused with the field."""
    with pytest.raises(ArgsError) as err:
        LoraArgs(adapters=(_hf("a"), _hf("b")), **kwargs)
    assert err.value.field_name == field


def test_duplicate_adapter_names_are_refused() -> None:
    """Clients select an adapter by name: two with one name cannot both be served."""
    with pytest.raises(ArgsError, match="once"):
        LoraArgs(adapters=(_hf("a"), _hf("a", 8)))


def test_flags_name_every_adapter_at_its_cache_directory() -> None:
    """The rendered flags: LoRA on, the slots, the rank, and `name=path` per adapter."""
    legal = LoraAdapter(name="legal", source="s3://b-1/models/legal/v2", rank=8)
    lora = LoraArgs(adapters=(_hf("sql"), legal))
    assert render_lora_args(lora, "/models") == [
        "--enable-lora", "--max-loras", "2", "--max-cpu-loras", "2", "--max-lora-rank", "16",
        "--lora-modules",
        f"sql=/models/lora/hf/acme/sql-lora/{COMMIT}", "legal=/models/lora/s3/b-1/models/legal/v2"]


def test_a_new_revision_lands_in_a_new_directory() -> None:
    """Changing an adapter's revision never reuses the old files (the completion marker is per directory)."""
    old = adapter_dir("/models", parse_source("s", f"hf://acme/sql@{COMMIT}"))
    new = adapter_dir("/models", parse_source("s", "hf://acme/sql@" + "f" * 40))
    assert old != new and old.startswith("/models/lora/hf/acme/sql/")


def test_the_engine_fetches_each_adapter_before_vllm_starts() -> None:
    """One init container per adapter, after the model-store copy: S3 with the store's image,
    region and role (the pod's ServiceAccount), Hugging Face with the engine image and the token;
    each writes into the model cache and skips a complete copy."""
    lora = LoraArgs(adapters=(_hf("sql"), LoraAdapter(name="legal", source="s3://acme-llm-weights/models/legal/v2",
                                                       rank=8)))
    from stack_components import SecretRef

    args = VllmEngineArgs(model=MODEL, lmcache=None, lora=lora, model_store=STORE,
                          hf_token=SecretRef(name="hf-token", key="token"))
    pod = build_pod_spec("llm-llama", args)
    names = [c["name"] for c in pod["initContainers"]]
    assert names == ["model-store-sync", "lora-sql", "lora-legal", "lora-check"]
    sql, legal, check = pod["initContainers"][1:]
    assert sql["image"] == args.image and sql["command"][-3:] == [
        "acme/sql-lora", COMMIT, f"/models/lora/hf/acme/sql-lora/{COMMIT}"]
    assert COMPLETE_MARKER in sql["command"][2]
    token = next(e for e in sql["env"] if e["name"] == "HF_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}
    assert legal["image"] == STORE.image and legal["command"][-2:] == [
        "s3://acme-llm-weights/models/legal/v2/", "/models/lora/s3/acme-llm-weights/models/legal/v2"]
    assert {"name": "AWS_REGION", "value": "us-east-1"} in legal["env"]
    assert pod["serviceAccountName"] == STORE.service_account
    assert check["image"] == args.image and check["command"][3:] == [
        MODEL, "16", "sql", f"/models/lora/hf/acme/sql-lora/{COMMIT}", "",
        "legal", "/models/lora/s3/acme-llm-weights/models/legal/v2", ""]
    for init in (sql, legal, check):
        assert {"name": "model-cache", "mountPath": "/models"} in init["volumeMounts"]
        assert init["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_container_renders_lora_flags_before_extra_args() -> None:
    """The LoRA flags follow the managed ones and precede the user's extra args."""
    args = VllmEngineArgs(model=MODEL, lmcache=None, lora=LoraArgs(adapters=(_hf("sql"),)),
                          extra_args=("--enable-chunked-prefill",))
    rendered = build_container(args)["args"]
    assert rendered.index("--enable-lora") < rendered.index("--enable-chunked-prefill")
    assert rendered[rendered.index("--lora-modules") + 1].startswith("sql=/models/lora/hf/")


def test_lora_flags_in_extra_args_are_refused() -> None:
    """The component owns the LoRA flags: extra args setting one are refused, naming the item."""
    for flag in ("--enable-lora", "--max_loras=2", "--lora-modules"):
        with pytest.raises(ArgsError) as err:
            check_extra_args(["--enable-chunked-prefill", flag])
        assert err.value.field_name == "extra_args[1]"


def test_lora_with_lmcache_is_refused() -> None:
    """LMCache keys KV without the adapter: an engine with both is refused, naming the adapters."""
    with pytest.raises(ArgsError) as err:
        VllmEngineArgs(model=MODEL, lora=LoraArgs(adapters=(_hf("sql"),)))
    assert err.value.field_name == "lora" and "LMCache" in err.value.allowed


def test_an_adapter_named_as_the_served_model_is_refused() -> None:
    """vLLM refuses an adapter that reuses a served base model's name."""
    with pytest.raises(ArgsError) as err:
        VllmEngineArgs(model=MODEL, served_model_name="sql", lmcache=None,
                       lora=LoraArgs(adapters=(_hf("sql"),)))
    assert err.value.field_name == "lora.adapters"


def test_s3_adapters_need_the_model_store_and_its_prefix() -> None:
    """S3 adapters are read by the model store's role: refused without a store, or outside its prefix."""
    outside = LoraArgs(adapters=(LoraAdapter(name="x", source="s3://acme-llm-weights/other/x", rank=8),))
    with pytest.raises(ArgsError, match="model_store"):
        VllmEngineArgs(model=MODEL, lmcache=None, lora=outside)
    with pytest.raises(ArgsError) as err:
        VllmEngineArgs(model=MODEL, lmcache=None, lora=outside, model_store=STORE)
    assert err.value.field_name == "lora.adapters[0].source"
    assert "s3://acme-llm-weights/models/" in err.value.allowed


def test_the_capacity_names_the_adapters_for_the_router() -> None:
    """The engine's capacity carries its adapters (the router's settings are built from it)."""
    lora = LoraArgs(adapters=(_hf("sql"), _hf("chat")))
    cap = engine_capacity(VllmEngineArgs(model=MODEL, served_model_name="llama", lmcache=None, lora=lora))
    assert cap.adapters == ("sql", "chat") and cap.served_model_name == "llama"
    assert engine_capacity(VllmEngineArgs(model=MODEL)).adapters == ()


def _engine_python() -> str:
    """The engine-check venv's python: the image's vLLM, huggingface_hub and Python."""
    from pathlib import Path

    from stack_components.engine_check import engine_python

    python = engine_python(Path(__file__).resolve().parents[2])
    assert python is not None, "run `make install` (.venv-engine)"
    return str(python)


def _run_fetch(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)


def test_the_hf_fetch_runs_on_the_images_huggingface_hub(tmp_path) -> None:
    """The Hugging Face init container's code, run by the engine-check venv's python (the image's
    vLLM and so its huggingface_hub): a complete directory is left alone; otherwise it calls
    `snapshot_download` with arguments that version accepts (offline here: it fails with the hub's
    own offline error, not a TypeError) and writes no marker."""
    from stack_components.lora import HF_FETCH_CODE

    python = _engine_python()
    env = dict(os.environ, HF_HUB_OFFLINE="1", HOME=str(tmp_path), HF_HOME=str(tmp_path / "hf"))
    done = tmp_path / "done"
    done.mkdir()
    (done / COMPLETE_MARKER).touch()
    cached = _run_fetch([python, "-c", HF_FETCH_CODE, "acme/sql-lora", COMMIT, str(done)], env)
    assert cached.returncode == 0 and "adapter cached in" in cached.stdout, cached.stderr[-2000:]
    fresh = tmp_path / "fresh"
    failed = _run_fetch([python, "-c", HF_FETCH_CODE, "acme/sql-lora", COMMIT, str(fresh)], env)
    assert failed.returncode != 0 and "TypeError" not in failed.stderr
    assert "LocalEntryNotFoundError" in failed.stderr, failed.stderr[-2000:]
    assert not (fresh / COMPLETE_MARKER).exists()


def test_the_s3_fetch_syncs_then_marks_and_skips_a_complete_copy(tmp_path) -> None:
    """The S3 init container's script under /bin/sh with a stand-in `aws` on PATH: it syncs the
    source into the directory, writes the marker last, and a second run does not sync again."""
    from stack_components.lora import S3_FETCH_SCRIPT

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "aws.log"
    aws = bin_dir / "aws"
    aws.write_text(f'#!/bin/sh\necho "$@" >> {log}\ntouch "$6/adapter_config.json"\n')
    aws.chmod(0o755)
    dest = tmp_path / "cache" / "lora" / "s3" / "b" / "k"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    command = ["/bin/sh", "-c", S3_FETCH_SCRIPT, "lora-fetch", "s3://b/k/", str(dest)]
    for _ in range(2):
        done = _run_fetch(command, env)
        assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == [f"s3 sync --no-progress --only-show-errors s3://b/k/ {dest}"]
    assert (dest / COMPLETE_MARKER).exists() and (dest / "adapter_config.json").exists()


def _rollout_args(weights: dict[str, int]) -> LoraArgs:
    return LoraArgs(adapters=(_hf("sql--v1"), _hf("sql--v2"), _hf("chat")),
                    rollouts=(LoraRollout(name="sql", weights=weights),))


def test_a_rollout_loads_every_version_and_hands_its_weights_to_the_router() -> None:
    """Versions are adapters of their own, all rendered in --lora-modules (a 0-weight version
    too: it stays loaded while routers drain); the capacity carries the weights the router's
    settings hold, and the served names come from `version_name`."""
    lora = _rollout_args({version_name("sql", "v1"): 0, version_name("sql", "v2"): 100})
    flags = render_lora_args(lora, "/models")
    modules = flags[flags.index("--lora-modules") + 1:]
    assert [m.split("=", 1)[0] for m in modules] == ["sql--v1", "sql--v2", "chat"]
    cap = engine_capacity(VllmEngineArgs(model=MODEL, served_model_name="llama", lmcache=None, lora=lora))
    assert cap.rollouts == {"sql": {"sql--v1": 0, "sql--v2": 100}}
    settings = router_settings(RouterArgs(image="ghcr.io/llm-stack/router:1", namespace="llm",
                                          engines={"llama": cap}))
    assert settings.rollouts == {"sql": {"sql--v1": 0, "sql--v2": 100}}
    assert settings.adapters["sql--v2"] == "llama" and "sql" not in settings.adapters


@pytest.mark.parametrize(("build", "field", "says"), [
    (lambda: LoraRollout(name="sql", weights={"sql--v1": 90, "sql--v2": 20}), "weights", "summing to 100"),
    (lambda: LoraRollout(name="sql", weights={"sql--v1": -1, "sql--v2": 101}), "weights.sql--v1", "0..100"),
    (lambda: LoraRollout(name="SQL", weights={"sql--v1": 100}), "name", "lowercase"),
    (lambda: _rollout_args({"sql--v1": 50, "sql--v3": 50}), "lora.rollouts[0].weights.sql--v3",
     "one of the adapters"),
    (lambda: LoraArgs(adapters=(_hf("sql"), _hf("sql--v1")),
                      rollouts=(LoraRollout(name="sql", weights={"sql--v1": 100}),)),
     "lora.rollouts[0].name", "differ from every adapter"),
])
def test_a_bad_rollout_is_refused_naming_the_field(build, field: str, says: str) -> None:  # type: ignore[no-untyped-def]
    """Weights are the router's rule (whole percentages summing to 100); versions must be adapters."""
    with pytest.raises(ArgsError, match=says) as err:
        build()
    assert err.value.field_name == field


def _check(tmp_path, adapters: dict[str, dict | None], *, max_rank: int = 16,
           trained_on: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the engine's `lora-check` code with the engine-check venv's python (the image's)."""
    import json

    from stack_components.lora import LORA_CHECK_CODE

    argv = [_engine_python(), "-c", LORA_CHECK_CODE, MODEL, str(max_rank)]
    for name, config in adapters.items():
        path = tmp_path / name
        path.mkdir(parents=True)
        if config is not None:
            (path / "adapter_config.json").write_text(json.dumps(config))
        argv += [name, str(path), (trained_on or {}).get(name, "")]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_the_lora_check_passes_adapters_of_this_model_within_the_rank(tmp_path) -> None:
    """Same base (any case), a local training path (not comparable), a renamed base declared
    as `base_model`: all pass."""
    done = _check(tmp_path, {
        "sql": {"r": 16, "base_model_name_or_path": MODEL.lower()},
        "local": {"r": 8, "base_model_name_or_path": "/workspace/llama-3.1-8b"},
        "renamed": {"r": 8, "base_model_name_or_path": "meta-llama/Meta-Llama-3.1-8B-Instruct"}},
        trained_on={"renamed": "meta-llama/Meta-Llama-3.1-8B-Instruct"})
    assert done.returncode == 0, done.stderr
    assert "adapter local: base model '/workspace/llama-3.1-8b' is not a repository id" in done.stdout


def test_the_lora_check_stops_the_pod_naming_each_wrong_adapter(tmp_path) -> None:
    """Another base model, a rank above the engine's (in `rank_pattern` too), no config: one
    message per adapter and a non-zero exit, so the pod never starts vLLM with them."""
    done = _check(tmp_path, {
        "mistral": {"r": 8, "base_model_name_or_path": "mistralai/Mistral-7B-v0.1"},
        "wide": {"r": 8, "rank_pattern": {"q_proj": 32}, "base_model_name_or_path": MODEL},
        "empty": None})
    assert done.returncode == 1
    errors = done.stderr.splitlines()
    assert errors[0].startswith("adapter mistral: trained on mistralai/Mistral-7B-v0.1, this engine serves "
                                + MODEL)
    assert errors[1].startswith("adapter wide: rank 32 (adapter_config.json r/rank_pattern) is more than "
                                "the engine's --max-lora-rank 16")
    assert errors[2].startswith("adapter empty: no readable adapter_config.json in ")


def test_the_lora_checks_rank_verdict_is_vllms(tmp_path) -> None:
    """The rank rule agrees with vLLM 0.33's own `PEFTHelper.validate_legal` on the same files
    (run in .venv-engine, one process): refused by one exactly when refused by the other."""
    configs = [{"r": 16}, {"r": 32}, {"r": 8, "rank_pattern": {"q_proj": 64}},
               {"r": 16, "rank_pattern": {"v_proj": 8}}]
    base = {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"], "bias": "none",
            "base_model_name_or_path": MODEL}
    ours = []
    for i, config in enumerate(configs):
        ours.append(_check(tmp_path / str(i), {"a": base | config}, max_rank=16).returncode == 0)
    probe = ("import sys\nfrom vllm.lora.peft_helper import PEFTHelper\n"
             "from vllm.config.lora import LoRAConfig\n"
             "for path in sys.argv[1:]:\n"
             "    h = PEFTHelper.from_local_dir(path, max_position_embeddings=None)\n"
             "    try:\n        h.validate_legal(LoRAConfig(max_lora_rank=16)); print('ok')\n"
             "    except ValueError:\n        print('refused')\n")
    paths = [str(tmp_path / str(i) / "a") for i in range(len(configs))]
    theirs = subprocess.run([_engine_python(), "-c", probe, *paths], capture_output=True, text=True,
                            timeout=180, check=False)
    assert theirs.returncode == 0, theirs.stderr[-2000:]
    assert theirs.stdout.split() == ["ok" if ok else "refused" for ok in ours]
    assert ours == [True, False, False, True]
