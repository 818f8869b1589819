"""`llm-stack demo` (filled in by the router issue's demo work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(out: str = typer.Option("demo-out", "--out")) -> None:
        """The whole stack locally: emulated engines, router, Prometheus, benchmark sweep."""
        typer.echo("llm-stack demo: not built yet (lands with the router issue)", err=True)
        raise typer.Exit(0)
