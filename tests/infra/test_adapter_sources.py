"""`llm-stack:adapterSources` (`infra.config.adapter_sources`): adapters only from allowed
repositories and buckets, hf:// revisions pinned to a commit where required, and a production
stack serving adapters made to require it; each refusal names the stack key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from infra.config import parse_stack_config
from infra.config.adapter_sources import AdapterSourcesConfig, production_pin_error
from infra.errors import ConfigError
from infra.stackfile import raw_project_config, read_stack_file

STACKS_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "stacks"
SQL = "hf://acme-ml/llama-3.1-8b-sql-lora@3f0c1c5e8a5b7d2e4f6a8b0c2d4e6f8a0b2c4d6e"


def _raw(**sources: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw_project_config(read_stack_file(STACKS_DIR, "lora")))
    if sources:
        raw["adapterSources"] = sources
    return raw


def _error(raw: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    return err.value


def test_sources_under_the_allowed_prefixes_pass() -> None:
    """The test stack's two adapters (an acme-ml repository, the store's adapters prefix) pass an
    allow-list naming the organisation and the prefix, and one naming the repository exactly."""
    for allowed in (["hf://acme-ml/", "s3://acme-llm-weights/models/adapters/"],
                    ["hf://acme-ml/llama-3.1-8b-sql-lora", "s3://acme-llm-weights/models/adapters/support/v3"]):
        config = parse_stack_config(_raw(allowed=allowed, requirePinned=True))
        assert config.adapter_sources.allowed == tuple(allowed)


@pytest.mark.parametrize(("allowed", "key", "value"), [
    (["hf://other-org/", "s3://acme-llm-weights/models/adapters/"],
     "models.llama8b.adapters.sql.source", SQL),
    (["hf://acme-ml/llama-3.1-8b-sql", "s3://acme-llm-weights/"], "models.llama8b.adapters.sql.source", SQL),
    (["hf://acme-ml/", "s3://acme-llm-weights/models/adapters/support/v30"],
     "models.llama8b.adapters.support.source", "s3://acme-llm-weights/models/adapters/support/v3"),
])
def test_a_source_outside_the_allow_list_is_refused(allowed: list[str], key: str, value: str) -> None:
    """Another organisation, a repository whose name only starts like the allowed one, a prefix
    that is not a path prefix: refused under the adapter's source key, naming the list."""
    err = _error(_raw(allowed=allowed))
    assert err.key == f"llm-stack:{key}" and err.value == value and "adapterSources.allowed" in str(err), err


def test_a_branch_is_refused_when_pins_are_required() -> None:
    """`@main` under requirePinned: refused naming the key and the 40-hex rule; without it, accepted."""
    raw = _raw(requirePinned=True)
    raw["models"]["llama8b"]["adapters"]["sql"]["source"] = "hf://acme-ml/llama-3.1-8b-sql-lora@main"
    err = _error(raw)
    assert err.key == "llm-stack:models.llama8b.adapters.sql.source" and "40-hex commit" in str(err), err
    raw["adapterSources"] = {"requirePinned": False}
    assert parse_stack_config(raw).adapter_sources.require_pinned is False


def test_a_version_of_a_rollout_is_checked_under_its_own_key() -> None:
    """A rolled-out adapter's versions are sources too: an unpinned one names its version's key."""
    raw = _raw(requirePinned=True)
    raw["models"]["llama8b"]["adapters"]["sql"] = {"rank": 16, "versions": {
        "v1": {"source": SQL, "weight": 100},
        "v2": {"source": "hf://acme-ml/sql-lora@v2-branch", "weight": 0}}}
    err = _error(raw)
    assert err.key == "llm-stack:models.llama8b.adapters.sql.versions.v2.source", err


def test_a_production_stack_serving_adapters_must_require_pins() -> None:
    """Production + adapters + requirePinned false: an error naming adapterSources.requirePinned;
    not for a staging stack, nor once it is true, nor without adapters."""
    config = parse_stack_config(_raw())
    err = production_pin_error(config, production=True)
    assert err is not None and err.key == "llm-stack:adapterSources.requirePinned"
    assert production_pin_error(config, production=False) is None
    assert production_pin_error(parse_stack_config(_raw(requirePinned=True)), production=True) is None
    raw = _raw()
    del raw["models"]["llama8b"]["adapters"], raw["models"]["llama8b"]["lora"]
    assert production_pin_error(parse_stack_config(raw), production=True) is None


def test_a_malformed_allow_list_entry_is_refused() -> None:
    """An entry with another scheme fails naming its index."""
    with pytest.raises(ConfigError) as err:
        AdapterSourcesConfig(allowed=("https://hf.co/acme",))
    assert err.value.key.endswith("allowed[0]")
    assert _error(_raw(allowed=["gs://x/"])).key == "llm-stack:adapterSources.allowed[0]"
