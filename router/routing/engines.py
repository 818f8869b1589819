"""The live set of engines: who they are, what they serve, whether they are in rotation.

Discovery replaces the set (`replace`), health checks flip `healthy`, the metrics scraper
updates waiting/running, the proxy counts in-flight. The healthy candidates per model are
cached as a list and rebuilt only when something changes, so the hot path does one dict
lookup. The policy is told whenever the set of engine ids changes; listeners
(`add_listener`: the hold queue) whenever the candidates change in any way.

LoRA adapters are models of their own here: an engine serves an adapter when its `/v1/models`
lists it (vLLM lists each loaded adapter with `parent` = its base model), so requests naming an
adapter go only to engines that hold it. The settings name the stack's adapters with their base
model (`RouterSettings.adapters`), so they are accepted, listed and routed to engines whose
models are not known yet before any engine has answered; the cards add adapters loaded later.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from router.routing.base import EngineState
from router.routing.kv.feed import KvView


@dataclass(frozen=True, kw_only=True)
class EngineSpec:
    """An engine as discovery sees it."""

    url: str
    gpu_cache_tokens: int
    cpu_cache_tokens: int = 0
    models: frozenset[str] = frozenset()  # empty: not known yet (learned from /v1/models)


class EngineRegistry:
    """Engines keyed by base URL, plus the models each serves."""

    def __init__(self, *, default_models: Collection[str] = (), adapters: Mapping[str, str] | None = None,
                 on_change: Callable[[Collection[str]], None] | None = None) -> None:
        self.states: dict[str, EngineState] = {}
        self._models: dict[str, frozenset[str]] = {}
        self._parents: dict[str, str] = dict(adapters or {})  # adapter -> base model, configured or learned
        self._default_models = frozenset(default_models) | frozenset(self._parents)
        self._on_change = on_change
        self._by_model: dict[str, list[EngineState]] = {}
        self._any: list[EngineState] = []
        self._known: frozenset[str] = frozenset(self._default_models)
        self._members: dict[str, int] = {}  # model -> engines serving it, in rotation or not
        self._listeners: list[Callable[[], None]] = []
        self.cards: dict[str, Mapping[str, Any]] = {}  # model -> what an engine's card said of it
        self.kv: KvView | None = None
        """The engines' own KV-cache residency, from their events (None: not subscribed)."""

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every change of the candidates (set, health, models)."""
        self._listeners.append(listener)

    # --- changes ------------------------------------------------------------------------
    def replace(self, specs: Iterable[EngineSpec]) -> tuple[list[str], list[str]]:
        """Make the set exactly `specs`; returns (added, removed) engine URLs."""
        wanted = {s.url: s for s in specs}
        removed = [url for url in self.states if url not in wanted]
        for url in removed:
            del self.states[url]
            self._models.pop(url, None)
        added = []
        for url, spec in wanted.items():
            state = self.states.get(url)
            if state is None:
                added.append(url)
                self.states[url] = EngineState(id=url, gpu_cache_tokens=spec.gpu_cache_tokens,
                                               cpu_cache_tokens=spec.cpu_cache_tokens)
            else:
                state.gpu_cache_tokens, state.cpu_cache_tokens = spec.gpu_cache_tokens, spec.cpu_cache_tokens
            if spec.models or url not in self._models:
                self._models[url] = spec.models
        if added or removed:
            self._rebuild()
            if self._on_change is not None:
                self._on_change(tuple(self.states))
        return added, removed

    def set_healthy(self, url: str, healthy: bool) -> bool:
        """Flip an engine in or out of rotation; True when that changed anything."""
        state = self.states.get(url)
        if state is None or state.healthy == healthy:
            return False
        state.healthy = healthy
        self._rebuild()
        return True

    def set_models(self, url: str, models: Collection[str], *,
                   cards: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Record the models an engine reports serving (and what its `/v1/models` cards say
        of them: root, parent, max_model_len)."""
        if cards:
            self.cards.update(cards)
            self._parents.update({model: card["parent"] for model, card in cards.items()
                                  if isinstance(card.get("parent"), str) and card["parent"] != model})
        frozen = frozenset(models)
        if url in self.states and self._models.get(url) != frozen:
            self._models[url] = frozen
            self._rebuild()

    def _rebuild(self) -> None:
        by_model: dict[str, list[EngineState]] = {}
        anything: list[EngineState] = []
        known: set[str] = set(self._default_models)
        members: dict[str, int] = {}
        for url, state in self.states.items():
            models = self._models.get(url) or self._default_models
            known.update(models)
            for model in models:
                members[model] = members.get(model, 0) + 1
            if not state.healthy:
                continue
            if not models:
                anything.append(state)
            for model in models:
                by_model.setdefault(model, []).append(state)
        for model in by_model:
            by_model[model].extend(anything)
        self._by_model, self._any, self._known = by_model, anything, frozenset(known)
        self._members = members
        for listener in self._listeners:
            listener()

    # --- queries (hot path) -------------------------------------------------------------
    def candidates(self, model: str) -> list[EngineState]:
        """Healthy engines serving `model` (engines whose models are unknown serve any)."""
        found = self._by_model.get(model)
        return found if found is not None else self._any

    def is_known(self, model: str) -> bool:
        """False only when the served models are known and `model` is not among them."""
        return not self._known or model in self._known or bool(self._any)

    def parent(self, model: str) -> str | None:
        """The base model of the LoRA adapter `model`; None for a base model (or one not known)."""
        return self._parents.get(model)

    def is_adapter(self, model: str) -> bool:
        """Whether `model` names a LoRA adapter (configured, or listed with a parent by an engine)."""
        return model in self._parents

    def base_models(self) -> list[str]:
        """`served_models` without the adapters: what serves a request that names no model."""
        return [m for m in self.served_models() if m not in self._parents]

    def served_models(self) -> list[str]:
        """The configured models plus those any known engine reports, in rotation or not,
        sorted: what the router accepts (and holds while no engine can take it)."""
        return sorted(self._known)

    def members(self, model: str) -> int:
        """Engines serving `model`, in rotation or not (those whose models are unknown count)."""
        unknown = sum(1 for url in self.states if not (self._models.get(url) or self._default_models))
        return self._members.get(model, 0) + unknown

    def healthy_count(self) -> int:
        return sum(1 for s in self.states.values() if s.healthy)
