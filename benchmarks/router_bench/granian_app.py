"""The router's app for an ASGI server other than ours: `granian --factory ...granian_app:app`.

granian (a Rust ASGI server, benchmarked against our uvicorn-based server in issue 22) imports
its target by name and calls it with no arguments, so the settings come from the environment,
under the same variable names `llm-stack router` reads its flags from (`LLMSTACK_ROUTER_*`,
`router/cli.py`): a settings file plus the engines, model, policy and engine capacity. The
host, port and worker count are the server's own flags. The app is the same `RouterApp` that
`llm-stack router` serves; the server runs its lifespan (discovery, health checks, scraping).

Only the benchmark uses this: granian is not one of the router's dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.settings import RouterSettings, SettingsError, build_settings

ENV_PREFIX = "LLMSTACK_ROUTER_"  # router/cli.py's `_ENV`
_TEXT = ("engines", "engines_file", "model", "policy", "api_keys_file")
_INTEGER = ("engine_capacity_tokens",)


def settings_from_env(environ: Mapping[str, str]) -> RouterSettings:
    """The router settings that `llm-stack router` would build from these variables alone."""
    overrides: dict[str, Any] = {name: environ.get(ENV_PREFIX + name.upper()) for name in _TEXT}
    for name in _INTEGER:
        var = ENV_PREFIX + name.upper()
        raw = environ.get(var)
        if raw is not None:
            try:
                overrides[name] = int(raw)
            except ValueError:
                raise SettingsError(var, raw, "must be an integer (a token count, e.g. 400000)") from None
    return build_settings(environ.get(ENV_PREFIX + "CONFIG"), **overrides)


def app() -> Any:
    """granian's factory: the `RouterApp` for the settings in `os.environ`, logging set up as
    `llm-stack router` sets it."""
    import os

    from router.shell.app import create_app
    from router.shell.workers import MULTIPROC_ENV, setup_logging

    settings = settings_from_env(os.environ)
    setup_logging(settings.log_level)
    # several granian workers share one prometheus-client directory, as ours do (workers.py)
    return create_app(settings, metrics_dir=os.environ.get(MULTIPROC_ENV))
