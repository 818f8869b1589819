"""LoRA adapters through the real router on loopback fake engines: listed in `/v1/models` with
their parent, routed only to engines that hold them, a request naming no model served by the
base model, the prefix policy keeping an adapter's cache apart from the base model's."""

from __future__ import annotations

from collections import Counter

from contracts import PATH_CHAT, PATH_MODELS
from router.routing.base import Decision, EngineState, RouteRequest
from router.routing.policies.prefix import PrefixPolicy
from tests.router.fake_engine import FakeEngine
from tests.router.harness import json_session, run, running, settings_for, until


def _chat(model: str | None, text: str = "hello") -> dict:
    body: dict = {"messages": [{"role": "user", "content": text}]}
    return body | ({"model": model} if model else {})


def test_adapters_are_listed_with_their_parent_and_routed_to_engines_holding_them() -> None:
    """Engine a lists adapter `sql`, engine b does not (mid-rollout): `/v1/models` lists the base
    model, `sql` (parent m, root as a reports it) and the configured `legal` (parent m); every
    `sql` request goes to a, base requests to either; `legal` has no candidate; an unknown name is a 404."""
    async def body() -> None:
        a, b = FakeEngine(model="m", name="a"), FakeEngine(model="m", name="b")
        a.adapters = ["sql"]
        for engine in (a, b):
            await engine.start()
        settings = settings_for([a.url, b.url], adapters={"sql": "m", "legal": "m"})
        async with running(settings) as (app, url), json_session() as s:
            await until(lambda: len(app.health._models_known) == 2)
            async with s.get(url + PATH_MODELS) as r:
                cards = {c["id"]: c for c in (await r.json())["data"]}
            assert sorted(cards) == ["legal", "m", "sql"]
            assert cards["sql"]["parent"] == "m" and cards["sql"]["root"] == "/models/lora/sql"
            assert cards["legal"]["parent"] == "m" and cards["m"]["parent"] is None
            served: Counter[str] = Counter()
            for model in ["sql", "m"] * 4:
                async with s.post(url + PATH_CHAT, json=_chat(model)) as r:
                    assert r.status == 200
                    served[f"{model}@{(await r.json())['engine']}"] += 1
            assert served["sql@a"] == 4 and "sql@b" not in served
            assert served["m@a"] + served["m@b"] == 4
            assert [body["model"] for body in a.bodies].count("sql") == 4
            assert all(body["model"] == "m" for body in b.bodies)
            # configured but listed by no engine: no candidate (held, as a model whose engines are out)
            assert app.registry.candidates("legal") == [] and app.registry.is_known("legal")
            async with s.post(url + PATH_CHAT, json=_chat("nosuch")) as r:
                assert r.status == 404
        for engine in (a, b):
            await engine.stop()
    run(body())


def test_a_request_naming_no_model_goes_to_the_one_base_model_despite_its_adapters() -> None:
    """vLLM serves a request without `model` with its base model: adapters do not make the
    router ask for a model."""
    async def body() -> None:
        engine = FakeEngine(model="m", name="a")
        engine.adapters = ["sql", "legal"]
        await engine.start()
        async with running(settings_for([engine.url], adapters={"sql": "m"})) as (app, url), \
                json_session() as s:
            await until(lambda: app.registry.is_adapter("legal"))
            async with s.post(url + PATH_CHAT, json=_chat(None)) as r:
                assert r.status == 200
            assert engine.bodies[-1].get("model") in (None, "m")
        await engine.stop()
    run(body())


class RecordingPrefix(PrefixPolicy):
    """The real prefix policy, keeping each decision's request flag, outcome and engine."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, bool, str, str]] = []

    def select(self, request: RouteRequest, engines) -> Decision:  # type: ignore[no-untyped-def]
        decision = super().select(request, engines)
        engine: EngineState = decision.engine
        self.seen.append((request.model, request.adapter, decision.outcome, engine.id))
        return decision


def test_the_prefix_policy_keeps_an_adapters_cache_apart_from_the_base_models() -> None:
    """Through the router with the real prefix policy: a long prompt sent under adapter `sql`
    is a cache hit for the next `sql` request on the same engine, and not a hit for the same
    prompt under the base model (vLLM keys cached blocks by adapter)."""
    async def body() -> None:
        engines = [FakeEngine(model="m", name=n) for n in ("a", "b", "c")]
        for engine in engines:
            engine.adapters = ["sql"]
            await engine.start()
        policy = RecordingPrefix()
        settings = settings_for([e.url for e in engines], adapters={"sql": "m"})
        prompt = "You are a SQL assistant. " * 600  # ~15k bytes: far past placement_tokens
        async with running(settings, policy=policy) as (app, url), json_session() as s:
            await until(lambda: len(app.health._models_known) == 3)
            for model in ("sql", "sql", "m"):
                async with s.post(url + PATH_CHAT, json=_chat(model, prompt)) as r:
                    assert r.status == 200
        first, second, base = policy.seen
        assert first[:3] == ("sql", True, "new") and second[:3] == ("sql", True, "cache_hit")
        assert second[3] == first[3]
        assert base[:3] == ("m", False, "new")
        for engine in engines:
            await engine.stop()
    run(body())
