"""`llm-stack bench-gate SUMMARY --stack ENV`: the post-deploy benchmark's summary as Markdown
(for the CI run's summary page) and its bounds from the stack file's `ci:benchmarkBounds`;
exit 1 when the run regressed past one."""

from __future__ import annotations

import typer

BOUNDS_KEY = "ci:benchmarkBounds"


def register(app: typer.Typer) -> None:
    @app.command("bench-gate")
    def bench_gate(
        summary: str = typer.Argument(..., help="The benchmark Job's summary.json."),
        stack: str = typer.Option(..., "--stack", help="Stack whose ci:benchmarkBounds apply."),
        markdown_out: str = typer.Option(
            None, "--markdown-out", help="Also append the report to this file (e.g. $GITHUB_STEP_SUMMARY)."
        ),
        project_dir: str = typer.Option(None, "--project-dir", help="Where Pulumi.yaml is."),
    ) -> None:
        """Print the benchmark summary as a table; exit 1 if it misses a configured bound."""
        import json
        from pathlib import Path

        from bench.gate import GateConfigError, bounds_from_mapping, markdown_table, violations
        from infra.config.load import decode_value
        from infra.errors import InfraError
        from infra.render import find_project_dir
        from infra.stackfile import read_stack_file

        try:
            root = Path(project_dir) if project_dir else find_project_dir(Path.cwd())
            raw = read_stack_file(root, stack).config.get(BOUNDS_KEY)
            bounds = bounds_from_mapping(decode_value(raw) if raw else {})
            document = json.loads(Path(summary).read_text())
        except (InfraError, GateConfigError, OSError, ValueError) as err:
            typer.echo(f"llm-stack bench-gate: {err}", err=True)
            raise typer.Exit(2) from None
        missed = violations(document, bounds)
        report = (
            markdown_table(document)
            + "\n"
            + (
                "**Benchmark gate: passed.**\n"
                if not missed
                else "**Benchmark gate: failed.**\n\n" + "".join(f"- {m}\n" for m in missed)
            )
        )
        typer.echo(report, nl=False)
        if markdown_out:
            with Path(markdown_out).open("a") as f:
                f.write(report)
        if missed:
            raise typer.Exit(1)
