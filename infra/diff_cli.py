"""`llm-stack diff BASE HEAD`: render each environment at two commits (each commit's own code,
under the mock runtime: no cloud credentials) and print the difference as Markdown.

The I/O shell around `infra.manifest_diff`: `git archive` each commit into a temporary
directory, run that tree's `llm-stack render` there (its own `infra` package first on the path),
read what it wrote, diff."""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli import argv_from_source

if TYPE_CHECKING:
    from infra.manifest_diff import StackDiff

RENDER_TIMEOUT_S = 600


class DiffError(Exception):
    """A commit that cannot be checked out or rendered."""


def export_tree(repo: Path, rev: str, dest: Path) -> None:
    """The files of commit `rev` of `repo`, written under `dest`."""
    proc = subprocess.Popen(
        ["git", "-C", str(repo), "archive", "--format=tar", rev],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
        archive.extractall(dest, filter="data")
    if proc.wait() != 0:
        raise DiffError(
            f"git archive {rev} failed: {proc.stderr.read().decode().strip() if proc.stderr else ''}"
        )


def render_tree(tree: Path, stack: str, out: Path) -> dict[str, str]:
    """Render `stack` with the code in `tree`; relative path -> text of what it wrote."""
    if not (tree / f"Pulumi.{stack}.yaml").is_file():
        return {}
    done = subprocess.run(
        [
            *argv_from_source(tree),
            "render",
            "--stack",
            stack,
            "--out",
            str(out),
            "--project-dir",
            str(tree),
        ],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise DiffError(f"render of {stack} in {tree.name} failed:\n{done.stderr.strip()[-2000:]}")
    return {p.relative_to(out).as_posix(): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}


def stacks_of(tree: Path) -> list[str]:
    """The stacks a tree ships a `Pulumi.<stack>.yaml` for."""
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in tree.glob("Pulumi.*.yaml"))


def diff_commits(repo: Path, base: str, head: str, stacks: list[str] | None) -> list[StackDiff]:
    """Every stack's difference between commits `base` and `head`."""
    from infra.manifest_diff import diff_stack

    with tempfile.TemporaryDirectory(prefix="llm-stack-diff-") as tmp:
        root = Path(tmp)
        trees = {side: root / side for side in ("base", "head")}
        for side, rev in (("base", base), ("head", head)):
            export_tree(repo, rev, trees[side])
        names = stacks or sorted(set(stacks_of(trees["base"])) | set(stacks_of(trees["head"])))
        return [
            diff_stack(
                stack,
                render_tree(trees["base"], stack, root / f"base-{stack}"),
                render_tree(trees["head"], stack, root / f"head-{stack}"),
            )
            for stack in names
        ]


def register(app: typer.Typer) -> None:
    @app.command()
    def diff(
        base: str = typer.Argument(..., help="Base commit (any git revision)."),
        head: str = typer.Argument("HEAD", help="Head commit."),
        stack: Annotated[
            list[str] | None, typer.Option("--stack", help="Only these stacks (repeatable; default: all).")
        ] = None,
        repo: str = typer.Option(".", "--repo", help="The git repository."),
        out: str = typer.Option(None, "--out", help="Also write the report to this file."),
        exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when anything differs."),
    ) -> None:
        """Render every environment at BASE and HEAD offline and print what changes, as Markdown."""
        from infra.manifest_diff import format_markdown

        try:
            diffs = diff_commits(Path(repo).resolve(), base, head, stack or None)
        except (DiffError, subprocess.TimeoutExpired) as err:
            typer.echo(f"llm-stack diff: {err}", err=True)
            raise typer.Exit(2) from None
        report = format_markdown(base, head, diffs)
        typer.echo(report, nl=False)
        if out:
            Path(out).write_text(report)
        if exit_code and not all(d.empty for d in diffs):
            raise typer.Exit(1)
