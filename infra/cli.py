"""`llm-stack`: one console script; each package contributes its own commands.

Every command module imports only `typer` at top level and defers heavy imports (pulumi,
aiohttp, matplotlib) into the command body, so `llm-stack --help` stays fast.
"""

from __future__ import annotations

import importlib

import typer

# (module, function) pairs; each module exposes `register(app: typer.Typer) -> None`.
_COMMAND_MODULES = (
    "infra.render_cli",  # render
    "infra.diff_cli",  # diff
    "infra.ci_cli",  # bench-gate
    "router.cli",  # router
    "benchmarks.cli",  # emulate, bench, demo, autoscale (from emulator/, bench/, local/)
    "policies.guardrails.cli",  # guardrails
)


def build_app() -> typer.Typer:
    """The Typer app with every package's commands registered."""
    app = typer.Typer(
        name="llm-stack",
        help="vLLM + LMCache serving stack: render, route, emulate, benchmark, demo.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for module in _COMMAND_MODULES:
        importlib.import_module(module).register(app)
    return app


def main() -> None:
    """Console-script entry point."""
    build_app()()
