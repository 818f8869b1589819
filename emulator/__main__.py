"""`python -m emulator ...`: the `emulate` command alone (used by `EmulatorProcess`)."""

from __future__ import annotations

import typer

from emulator.cli import emulate

if __name__ == "__main__":
    typer.run(emulate)
