"""`llm-stack`: one root registering every tool's commands, and leaving out a tool an image does
not carry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

import cli

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["render", "diff", "bench-gate", "router", "emulate", "demo", "autoscale", "guardrails", "bench"]


def test_every_tool_registers_its_commands_in_help_order() -> None:
    """The full install registers each tool's commands, in the table's order."""
    assert list(get_command(cli.build_app()).commands) == COMMANDS  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", cli.COMMAND_MODULES)
def test_each_command_module_is_one_file_of_the_tree(module: str) -> None:
    """Every entry of the table is a module of this repository (a typo would drop a command)."""
    assert cli.carried(module)
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file()


def test_a_tool_the_install_does_not_carry_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a package absent (as in an image that carries only `bench`), the others still register."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("no_such_package.cli", "router.no_such_cli", "bench.cli"))
    assert list(get_command(cli.build_app()).commands) == ["bench"]  # type: ignore[attr-defined]


def test_argv_from_source_picks_the_trees_own_root(tmp_path: Path) -> None:
    """Another commit's tree runs its own root: cli/ where it exists, else infra/cli.py (before the move)."""
    old = tmp_path / "old"
    (old / "infra").mkdir(parents=True)
    (old / "infra" / "cli.py").write_text("def main():\n    print('old root')\n")
    (old / "infra" / "__init__.py").write_text("")
    done = subprocess.run(cli.argv_from_source(old), capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "old root"
    new = cli.argv_from_source(ROOT)
    assert new[0] == sys.executable and "from cli import main" in new[-1]
