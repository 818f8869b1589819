"""Static discovery: the engines listed in the settings, with their capacities."""

from __future__ import annotations

from router.routing.engines import EngineSpec
from router.settings import RouterSettings


def static_specs(settings: RouterSettings) -> list[EngineSpec]:
    """One spec per listed engine; capacities default to the settings' defaults."""
    return [
        EngineSpec(
            url=engine.url.rstrip("/"),
            gpu_cache_tokens=engine.gpu_cache_tokens or settings.default_gpu_cache_tokens,
            cpu_cache_tokens=engine.cpu_cache_tokens or settings.default_cpu_cache_tokens,
            models=frozenset((engine.model,)) if engine.model else frozenset(),
        )
        for engine in settings.engines
    ]
