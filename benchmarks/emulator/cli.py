"""`llm-stack emulate` (filled in by the emulator work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """No command yet."""
