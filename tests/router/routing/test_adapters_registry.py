"""LoRA adapters as first-class models in the engine registry (pure): configured ones known before
any engine answers, learned ones from the engines' `/v1/models` cards with their `parent`, and
routed only to the engines that list them."""

from __future__ import annotations

import pytest

from router.routing.engines import EngineRegistry, EngineSpec
from router.settings import RouterSettings, SettingsError, StaticEngine

BASE = "meta-llama/Llama-3.1-8B-Instruct"


def _registry(**kwargs) -> EngineRegistry:
    registry = EngineRegistry(default_models=(BASE,), adapters={"sql": BASE}, **kwargs)
    registry.replace([EngineSpec(url="http://a", gpu_cache_tokens=1000),
                      EngineSpec(url="http://b", gpu_cache_tokens=1000)])
    return registry


def _cards(*adapters: str) -> dict[str, dict]:
    cards: dict[str, dict] = {BASE: {"root": BASE}}
    cards |= {name: {"root": f"/models/lora/{name}", "parent": BASE} for name in adapters}
    return cards


def test_a_configured_adapter_is_known_listed_and_routed_before_any_engine_answers() -> None:
    """Before `/v1/models` is read, a configured adapter is accepted, listed, named an adapter of
    its base, and served by every engine whose models are not known yet."""
    registry = _registry()
    assert registry.is_known("sql") and registry.is_adapter("sql") and registry.parent("sql") == BASE
    assert registry.served_models() == sorted([BASE, "sql"]) and registry.base_models() == [BASE]
    assert {e.id for e in registry.candidates("sql")} == {"http://a", "http://b"}
    assert not registry.is_adapter(BASE) and registry.parent(BASE) is None


def test_an_adapter_goes_only_to_the_engines_that_list_it() -> None:
    """Once engines report their models, an adapter's candidates are the engines listing it (one
    that lacks it would answer 404), the base model's are all of them."""
    registry = _registry()
    registry.set_models("http://a", _cards("sql"), cards=_cards("sql"))
    registry.set_models("http://b", _cards(), cards=_cards())
    assert [e.id for e in registry.candidates("sql")] == ["http://a"]
    assert {e.id for e in registry.candidates(BASE)} == {"http://a", "http://b"}
    registry.set_healthy("http://a", False)
    assert registry.candidates("sql") == [] and registry.members("sql") == 1


def test_an_adapter_an_engine_lists_is_learned_with_its_parent() -> None:
    """An adapter no setting names becomes known as an adapter of the parent its card names."""
    registry = _registry()
    registry.set_models("http://a", _cards("sql", "legal"), cards=_cards("sql", "legal"))
    assert registry.is_adapter("legal") and registry.parent("legal") == BASE
    assert "legal" in registry.served_models() and "legal" not in registry.base_models()
    assert [e.id for e in registry.candidates("legal")] == ["http://a"]


def test_a_card_without_a_parent_or_naming_itself_is_no_adapter() -> None:
    """vLLM's base-model card has `parent: null`; a card whose parent is itself is no adapter."""
    registry = EngineRegistry()
    registry.replace([EngineSpec(url="http://a", gpu_cache_tokens=1000)])
    cards = {"x": {"root": "x"}, "y": {"root": "y", "parent": "y"}}
    registry.set_models("http://a", cards, cards=cards)
    assert not registry.is_adapter("x") and not registry.is_adapter("y")
    assert registry.base_models() == ["x", "y"]


def test_router_settings_check_the_adapters_against_the_models() -> None:
    """An adapter must name a configured base model and must not reuse a base model's name;
    the settings round-trip through their file form."""
    engines = (StaticEngine(url="http://a"),)
    ok = RouterSettings(engines=engines, models=(BASE,), adapters={"sql": BASE})
    assert RouterSettings.from_dict(ok.to_dict()).adapters == {"sql": BASE}
    with pytest.raises(SettingsError) as err:
        RouterSettings(engines=engines, models=(BASE,), adapters={"sql": "other"})
    assert err.value.field_name == "adapters.sql" and BASE in str(err.value)
    with pytest.raises(SettingsError):
        RouterSettings(engines=engines, models=(BASE,), adapters={BASE: BASE})
    assert RouterSettings(engines=engines, adapters={"sql": "anything"}).adapters  # models unknown: any base
