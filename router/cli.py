"""`llm-stack router`: run the prefix-aware router from flags, environment, and/or a file."""

from __future__ import annotations

from typing import Annotated

import typer

_ENV = "LLMSTACK_ROUTER_"


def _opt(help_: str, env: str) -> typer.models.OptionInfo:
    return typer.Option(help=help_, envvar=_ENV + env, show_default=False)


def register(app: typer.Typer) -> None:
    @app.command(name="router")
    def router_command(
        engines: Annotated[str | None, _opt("Engine base URLs, comma-separated.", "ENGINES")] = None,
        engines_file: Annotated[str | None, _opt("File of engine targets (Prometheus file_sd shape), "
                                                 "re-read when it changes.", "ENGINES_FILE")] = None,
        model: Annotated[str | None, _opt("Served model name(s), comma-separated.", "MODEL")] = None,
        policy: Annotated[str | None, _opt("Routing policy: prefix, session, least_load, round_robin.",
                                           "POLICY")] = None,
        host: Annotated[str | None, _opt("Listen address (default 0.0.0.0).", "HOST")] = None,
        port: Annotated[int | None, _opt("Listen port (default 8080).", "PORT")] = None,
        workers: Annotated[int | None, _opt("Worker processes sharing the port.", "WORKERS")] = None,
        engine_capacity_tokens: Annotated[int | None, _opt("Each engine's GPU KV capacity in tokens.",
                                                           "ENGINE_CAPACITY_TOKENS")] = None,
        api_keys_file: Annotated[str | None, _opt("File of accepted API keys, one per line.",
                                                  "API_KEYS_FILE")] = None,
        config: Annotated[str | None, _opt("Settings file (JSON or YAML); flags override it.",
                                           "CONFIG")] = None,
    ) -> None:
        """Run the prefix-aware router."""
        from router.settings import SettingsError, build_settings
        from router.shell.workers import run, setup_logging

        try:
            settings = build_settings(config, engines=engines, engines_file=engines_file, model=model,
                                      policy=policy, host=host, port=port, workers=workers,
                                      api_keys_file=api_keys_file,
                                      engine_capacity_tokens=engine_capacity_tokens)
            _check_policy(settings.policy)
        except SettingsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        setup_logging(settings.log_level)
        raise typer.Exit(run(settings))


def _check_policy(policy: object) -> None:
    """Fail at the edge, before any process starts, on an unknown policy or bad params."""
    from router.routing.policies.registry import build_policy

    build_policy(policy)  # type: ignore[arg-type]
