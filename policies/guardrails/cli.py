"""`llm-stack guardrails --stack ENV`: the policy pack offline, on the stack rendered under the
mock runtime (or a directory `llm-stack render` wrote); `--pack-config-out` writes the
`--policy-pack-config` file that CI hands `pulumi preview` for the same stack."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def guardrails(
        stack: str = typer.Option(..., "--stack", help="Stack name: a Pulumi.<stack>.yaml in the project."),
        render_dir: str = typer.Option(
            None, "--render-dir", help="Check this `llm-stack render` output instead of rendering the stack."
        ),
        pack_config_out: str = typer.Option(
            None, "--pack-config-out", help="Write the stack's --policy-pack-config JSON here."
        ),
        today: str = typer.Option(None, "--today", help="Judge support windows at this ISO date."),
        project_dir: str = typer.Option(None, "--project-dir", help="Where Pulumi.yaml is."),
    ) -> None:
        """Run the guardrail policy pack on STACK; exit 1 on a mandatory violation."""
        import json
        from pathlib import Path

        from infra.errors import InfraError
        from infra.render import find_project_dir
        from infra.stackfile import read_stack_file
        from policies.guardrails import offline
        from policies.guardrails.config import config_from_mapping
        from policies.guardrails.errors import GuardrailConfigError
        from policies.guardrails.registry import GUARDRAILS

        try:
            root = Path(project_dir) if project_dir else find_project_dir(Path.cwd())
            settings = offline.pack_settings(read_stack_file(root, stack).config)
            if pack_config_out:
                document = offline.policy_pack_config(settings)
                Path(pack_config_out).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
            settings = offline.with_today(settings | ({"today": today} if today else {}))
            if render_dir:
                findings = offline.check_render_dir(Path(render_dir), config_from_mapping(settings))
            else:
                findings = offline.render_findings(root, stack, settings)
        except (InfraError, GuardrailConfigError) as err:
            typer.echo(f"llm-stack guardrails: {err}", err=True)
            raise typer.Exit(2) from None
        mandatory = sum(f.level == "mandatory" for f in findings)
        if findings:
            typer.echo(offline.format_findings(findings))
        typer.echo(
            f"stack {stack}: {len(GUARDRAILS)} policies, {mandatory} mandatory and "
            f"{len(findings) - mandatory} advisory violations"
        )
        if mandatory:
            raise typer.Exit(1)
