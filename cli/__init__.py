"""`llm-stack`: one console script for the whole project; each tool contributes its commands
from its own package (one `cli.py` per tool, exposing `register(app)`).

Every command module imports only `typer` at top level and defers heavy imports (pulumi,
aiohttp, matplotlib) into the command body, so `llm-stack --help` stays fast. An image carries
only its own tools (the benchmark image: `bench`), so the root registers the tools whose package
the install carries and leaves the others out.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import typer

# Each module exposes `register(app: typer.Typer) -> None`; the order is the help's order.
COMMAND_MODULES = (
    "infra.render_cli",  # render
    "infra.diff_cli",  # diff
    "infra.ci_cli",  # bench-gate
    "router.cli",  # router
    "emulator.cli",  # emulate
    "bench.cli",  # bench, bench plot
    "local.demo.cli",  # demo
    "local.autoscale.cli",  # autoscale
    "policies.guardrails.cli",  # guardrails
)


def carried(module: str) -> bool:
    """Whether this install carries `module` (its top-level package first, so that a package
    an image leaves out is not imported to find out)."""
    top = module.split(".", 1)[0]
    return importlib.util.find_spec(top) is not None and importlib.util.find_spec(module) is not None


def build_app() -> typer.Typer:
    """The Typer app with the commands of every tool this install carries."""
    app = typer.Typer(
        name="llm-stack",
        help="vLLM + LMCache serving stack: render, route, emulate, benchmark, demo.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for module in COMMAND_MODULES:
        if carried(module):
            importlib.import_module(module).register(app)
    return app


def main() -> None:
    """Console-script entry point."""
    build_app()()


def argv_from_source(tree: Path) -> list[str]:
    """The command line that runs `llm-stack` from another source tree (a `git archive` of
    another commit), that tree's packages first on the import path. Trees from before the root
    moved here keep it at infra/cli.py."""
    root = "cli" if (tree / "cli" / "__init__.py").is_file() else "infra.cli"
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); from {root} import main; main()"
    return [sys.executable, "-c", code]
