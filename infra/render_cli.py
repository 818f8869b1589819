"""`llm-stack render` (filled in by the foundation work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def render(stack: str = typer.Option(..., "--stack"), out: str = typer.Option(..., "--out")) -> None:
        """Run the Pulumi program for STACK under the mock runtime and write what it creates."""
        raise typer.Exit(_not_built("render"))


def _not_built(name: str) -> int:
    typer.echo(f"llm-stack {name}: not built yet", err=True)
    return 2
