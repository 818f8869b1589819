"""`llm-stack:models.<m>.adapters` and `.lora`: parsed once, rendered onto that model's engines,
every mistake refused before any resource under its full stack key with the value and what is
allowed; the test stack `tests/data/stacks/Pulumi.lora.yaml` renders as pinned in tests/golden/lora."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import parse_stack_config
from infra.errors import ConfigError
from infra.serving import engine_args
from infra.stackfile import raw_project_config, read_stack_file
from stack_components import RouterArgs
from stack_components.engine import engine_capacity
from stack_components.router import router_settings

ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = ROOT / "tests" / "data" / "stacks"
GOLDEN = ROOT / "tests" / "golden" / "lora"
SQL_COMMIT = "3f0c1c5e8a5b7d2e4f6a8b0c2d4e6f8a0b2c4d6e"


def _raw() -> dict[str, Any]:
    return copy.deepcopy(raw_project_config(read_stack_file(STACKS_DIR, "lora")))


def _error(raw: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    return err.value


def test_the_test_stack_renders_both_adapters_onto_its_engines() -> None:
    """The parsed adapters become the engine's `LoraArgs`: names, sources, ranks and slots."""
    config = parse_stack_config(_raw())
    model = config.models["llama8b"]
    lora = engine_args(config, "llama8b", model).lora
    assert lora is not None
    assert [(a.name, a.source, a.rank) for a in lora.adapters] == [
        ("sql", f"hf://acme-ml/llama-3.1-8b-sql-lora@{SQL_COMMIT}", 16),
        ("support", "s3://acme-llm-weights/models/adapters/support/v3", 32)]
    assert (lora.slots, lora.cpu_slots, lora.rank) == (2, 2, 32)


def test_a_model_without_adapters_gets_no_lora() -> None:
    """Shipped stacks declare none: their engines render no LoRA flag."""
    raw = _raw()
    del raw["models"]["llama8b"]["adapters"], raw["models"]["llama8b"]["lora"]
    config = parse_stack_config(raw)
    assert engine_args(config, "llama8b", config.models["llama8b"]).lora is None


def _adapter(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return raw["models"]["llama8b"]["adapters"][name]


@pytest.mark.parametrize(("mutate", "key", "value", "phrase"), [
    (lambda r: _adapter(r, "sql").update(source="hf://acme-ml/sql-lora"),
     "models.llama8b.adapters.sql.source", "hf://acme-ml/sql-lora", "hf://<org>/<repo>@<revision>"),
    (lambda r: _adapter(r, "support").update(rank=64)
     or r["models"]["llama8b"]["lora"].update(maxLoraRank=32),
     "models.llama8b.adapters.support.rank", 64,
     "max_lora_rank (32)"),
    (lambda r: _adapter(r, "sql").update(rank=0), "models.llama8b.adapters.sql.rank", 0, "1"),
    (lambda r: r["models"]["llama8b"]["lora"].update(maxCpuLoras=1), "models.llama8b.lora.maxCpuLoras", 1,
     ">= max_loras (2)"),
    (lambda r: r["models"]["llama8b"]["lora"].update(maxLoraRank=24), "models.llama8b.lora.maxLoraRank", 24,
     "one of 1, 8, 16, 32"),
    (lambda r: _adapter(r, "support").update(source="s3://other-bucket/adapters/support"),
     "models.llama8b.adapters.support.source", "s3://other-bucket/adapters/support",
     "s3://acme-llm-weights/models/"),
    (lambda r: r["models"]["llama8b"]["adapters"].update({"Bad_Name": {"source": "s3://acme-llm-weights/models/x",
                                                                        "rank": 8}}),
     "models.llama8b.adapters.Bad_Name", "Bad_Name", "lowercase letters"),
    (lambda r: r["models"]["llama8b"]["adapters"].update({"llama-8b": {"source": "s3://acme-llm-weights/models/x",
                                                                        "rank": 8}})
     or r["models"]["llama8b"].update(servedName="llama-8b"),
     "models.llama8b.adapters.llama-8b", "llama-8b", "must be unique among served models and adapters"),
    (lambda r: _adapter(r, "sql").update(weight=10), "models.llama8b.adapters.sql.weight", 10,
     "is not a known key"),
    (lambda r: _adapter(r, "sql").update(baseModel="Llama-3.1-8B"), "models.llama8b.adapters.sql.baseModel",
     "Llama-3.1-8B", "Hugging Face id like org/name"),
])
def test_a_bad_adapter_setting_is_refused_under_its_key(mutate, key, value, phrase) -> None:
    """Malformed source, rank over the engine's max or out of range, CPU slots below GPU slots,
    a rank vLLM does not allow, S3 outside the model store's prefix, a name that is no DNS label
    or that a served model already uses, an unknown key: each fails naming key, value and rule."""
    raw = _raw()
    mutate(raw)
    err = _error(raw)
    assert err.key == f"llm-stack:{key}", err
    assert err.value == value and phrase in str(err), err


def test_adapters_with_lmcache_on_are_refused_naming_the_lmcache_switch() -> None:
    """LMCache keys KV without the adapter: a stack serving adapters with LMCache on fails at the
    model's adapters, naming `lmcache.enabled` as the way out."""
    raw = _raw()
    raw["lmcache"] = {"enabled": True, "cpuBufferGiB": 20}
    err = _error(raw)
    assert err.key == "llm-stack:models.llama8b.adapters" and "lmcache.enabled" in str(err), err
    assert err.value == ("sql", "support")


def test_lora_slots_without_adapters_are_refused() -> None:
    """Slots set on a model with no adapters would do nothing: refused, naming the key."""
    raw = _raw()
    del raw["models"]["llama8b"]["adapters"]
    err = _error(raw)
    assert err.key == "llm-stack:models.llama8b.lora" and "only with adapters" in str(err), err


def test_s3_adapters_need_the_model_store() -> None:
    """Without `modelStore` no role reads S3: an s3:// adapter is refused, an hf:// one is not."""
    raw = _raw()
    del raw["modelStore"]
    err = _error(raw)
    assert err.key == "llm-stack:models.llama8b.adapters.support.source" and "model_store" in str(err), err
    del raw["models"]["llama8b"]["adapters"]["support"]
    assert parse_stack_config(raw).models["llama8b"].adapters.keys() == {"sql"}


def test_the_golden_render_shows_the_whole_lora_path() -> None:
    """tests/golden/lora (rendered from the test stack) holds the engine's LoRA flags, one fetch
    init container per adapter after the model-store copy, the ServiceAccount with the role, and
    the router's settings naming the adapters with their base model."""
    deployment = yaml.safe_load((GOLDEN / "kubernetes" / "llm-stack.deployment.llm-llama8b.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == [
        "model-cache-owner", "model-store-sync", "lora-sql", "lora-support", "lora-check"]
    args = pod["containers"][0]["args"]
    at = args.index("--lora-modules")
    assert args[at + 1:at + 3] == [f"sql=/models/lora/hf/acme-ml/llama-3.1-8b-sql-lora/{SQL_COMMIT}",
                                   "support=/models/lora/s3/acme-llm-weights/models/adapters/support/v3"]
    assert "--kv-transfer-config" not in args  # LMCache off
    assert pod["serviceAccountName"] == "llama8b-model-store"


def test_the_lora_golden_is_current(tmp_path) -> None:
    """A fresh `llm-stack render` of the test stack equals tests/golden/lora file for file (else:
    `make render-golden`)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "render", "--stack", "lora",
         "--out", str(tmp_path), "--project-dir", str(STACKS_DIR)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = {p.relative_to(tmp_path): p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    golden = {p.relative_to(GOLDEN): p.read_text() for p in GOLDEN.rglob("*") if p.is_file()}
    assert sorted(fresh) == sorted(golden) and len(golden) > 20
    assert [name for name in fresh if fresh[name] != golden[name]] == []


def test_the_lora_engine_validates_against_the_cluster_schema() -> None:
    """The golden engine Deployment (init containers and all) and ServiceAccount validate strictly
    against the stack's Kubernetes version's schema."""
    import kubernetes_validate

    version = str(parse_stack_config(_raw()).cluster.kubernetes_version)
    checked = 0
    names = ("llm-stack.deployment.llm-llama8b.yaml", "llm-stack.serviceaccount.llama8b-model-store.yaml")
    for name in names:
        obj = yaml.safe_load((GOLDEN / "kubernetes" / name).read_text())
        assert kubernetes_validate.validate(obj, version, strict=True) == version
        checked += 1
    assert checked == 2


S3_V = "s3://acme-llm-weights/models/adapters/support/"


def _rolled(raw: dict[str, Any], v3: int = 90, v4: int = 10) -> dict[str, Any]:
    """The test stack with `support` rolled out over versions v3 and v4."""
    raw["models"]["llama8b"]["adapters"]["support"] = {
        "rank": 32, "versions": {"v3": {"source": S3_V + "v3", "weight": v3},
                                 "v4": {"source": S3_V + "v4", "weight": v4, "rank": 16}}}
    return raw


def test_a_rollout_loads_each_version_and_gives_the_router_its_weights() -> None:
    """`support` with versions v3 (90) and v4 (10): the engines load support--v3 and support--v4
    (each version's own source and rank, the adapter's rank by default); the router's settings
    rewrite `support` by those weights."""
    config = parse_stack_config(_rolled(_raw()))
    args = engine_args(config, "llama8b", config.models["llama8b"])
    assert args.lora is not None
    assert [(a.name, a.source, a.rank) for a in args.lora.adapters][1:] == [
        ("support--v3", S3_V + "v3", 32), ("support--v4", S3_V + "v4", 16)]
    assert args.lora.rollout_table() == {"support": {"support--v3": 90, "support--v4": 10}}
    settings = router_settings(RouterArgs(image="ghcr.io/llm-stack/router:1", namespace="llm",
                                          engines={"llama8b": engine_capacity(args)}))
    assert settings.rollouts == {"support": {"support--v3": 90, "support--v4": 10}}


def _version(raw: dict[str, Any], v: str) -> dict[str, Any]:
    return raw["models"]["llama8b"]["adapters"]["support"]["versions"][v]


@pytest.mark.parametrize(("mutate", "key", "value", "phrase"), [
    (lambda r: _version(r, "v4").update(weight=20), "models.llama8b.adapters.support.versions",
     {"support--v3": 90, "support--v4": 20}, "summing to 100 (they sum to 110)"),
    (lambda r: _version(r, "v3").update(weight=-5) or _version(r, "v4").update(weight=105),
     "models.llama8b.adapters.support.versions.v3.weight", -5, "whole number in 0..100"),
    (lambda r: _version(r, "v3").update(weight=0) or _version(r, "v4").update(weight=0),
     "models.llama8b.adapters.support.versions", {"support--v3": 0, "support--v4": 0}, "summing to 100"),
    (lambda r: _version(r, "v4").update(source="s3://acme-llm-weights/elsewhere/v4"),
     "models.llama8b.adapters.support.versions.v4.source", "s3://acme-llm-weights/elsewhere/v4",
     "s3://acme-llm-weights/models/"),
    (lambda r: _version(r, "v4").update(rank=64) or r["models"]["llama8b"]["lora"].update(maxLoraRank=32),
     "models.llama8b.adapters.support.versions.v4.rank", 64, "max_lora_rank (32)"),
    (lambda r: r["models"]["llama8b"]["adapters"]["support"].update(source=S3_V + "v3"),
     "models.llama8b.adapters.support.source", S3_V + "v3", "or versions instead (not both)"),
    (lambda r: r["models"]["llama8b"]["adapters"]["support"].pop("rank"),
     "models.llama8b.adapters.support.versions.v3.rank", None, "is required"),
    (lambda r: r["models"]["llama8b"]["adapters"]["support"]["versions"].update(
        {"V5": {"source": S3_V + "v5", "weight": 0}}),
     "models.llama8b.adapters.support.versions.V5", "support--V5", "lowercase letters"),
    (lambda r: r["models"]["llama8b"]["adapters"].update({"support--v3": {"source": S3_V + "x", "rank": 8}}),
     "models.llama8b.adapters.support--v3", "support--v3", "must be unique among served models and adapters"),
])
def test_a_bad_rollout_is_refused_under_its_key(mutate, key, value, phrase) -> None:  # type: ignore[no-untyped-def]
    """Weights over 100 or all 0 or negative, a version's source outside the store or rank over
    the engine's, source beside versions, no rank, a version name that is no DNS label, a served
    name taken twice: each fails naming the stack key, the value and the rule."""
    raw = _rolled(_raw())
    mutate(raw)
    err = _error(raw)
    assert err.key == f"llm-stack:{key}", err
    assert err.value == value and phrase in str(err), err


def test_a_model_opted_out_of_lmcache_serves_adapters_beside_lmcache_models() -> None:
    """LMCache on for the stack, `lmcache: false` on the model with adapters: accepted, its engines
    run without LMCache (no connector, no CPU buffer in their memory), a second model keeps it;
    the refusal without the opt-out names the model's `lmcache` key as the way out."""
    raw = _raw()
    raw["lmcache"] = {"enabled": True, "cpuBufferGiB": 20}
    assert "models.llama8b.lmcache: false" in str(_error(copy.deepcopy(raw)))
    raw["models"]["llama8b"]["lmcache"] = False
    plain = copy.deepcopy(raw["models"]["llama8b"])
    del plain["adapters"], plain["lora"], plain["lmcache"]
    raw["models"]["base"] = plain | {"servedName": "base", "maxReplicas": 4, "replicas": 2}
    raw["models"]["llama8b"]["maxReplicas"] = 12
    config = parse_stack_config(raw)
    lora_engine = engine_args(config, "llama8b", config.models["llama8b"])
    base_engine = engine_args(config, "base", config.models["base"])
    assert lora_engine.lora is not None and lora_engine.lmcache is None
    assert base_engine.lmcache is not None and base_engine.lmcache.cpu_buffer_gib == 20
    assert base_engine.memory_gib >= lora_engine.memory_gib + 20


def test_a_base_model_alias_reaches_the_engines_lora_check() -> None:
    """`baseModel` is handed to the `lora-check` init container for that adapter only."""
    raw = _raw()
    _adapter(raw, "sql")["baseModel"] = "meta-llama/Meta-Llama-3.1-8B-Instruct"
    config = parse_stack_config(raw)
    lora = engine_args(config, "llama8b", config.models["llama8b"]).lora
    assert lora is not None
    assert [(a.name, a.base_model) for a in lora.adapters] == [
        ("sql", "meta-llama/Meta-Llama-3.1-8B-Instruct"), ("support", None)]
