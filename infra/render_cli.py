"""`llm-stack render --stack ENV --out DIR`: the program for ENV under the mock runtime, written out."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def render(
        stack: str = typer.Option(..., "--stack", help="Stack name: a Pulumi.<stack>.yaml in the project."),
        out: str = typer.Option(..., "--out", help="Directory for kubernetes/*.yaml and resources.json."),
        project_dir: str = typer.Option(None, "--project-dir", help="Where Pulumi.yaml is (default: found "
                                        "from the current directory)."),
    ) -> None:
        """Run the Pulumi program for STACK under the mock runtime and write what it creates."""
        from pathlib import Path

        from infra.errors import InfraError
        from infra.render import find_project_dir, render_stack

        try:
            root = Path(project_dir) if project_dir else find_project_dir(Path.cwd())
            summary = render_stack(root, stack, Path(out))
        except InfraError as err:
            typer.echo(f"llm-stack render: {err}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"rendered stack {stack}: {summary.kubernetes_objects} Kubernetes objects, "
                   f"{summary.resources} resources -> {out}")
        for line in summary.notes:
            typer.echo(f"  {line}")
