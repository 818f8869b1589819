"""`llm-stack router` (filled in by the router work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command(name="router")
    def router_command() -> None:
        """Run the prefix-aware router."""
        typer.echo("llm-stack router: not built yet", err=True)
        raise typer.Exit(2)
