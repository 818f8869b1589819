"""`llm-stack emulate`, `bench` and `demo`: each registered by its own module."""

from __future__ import annotations

import importlib

import typer

_MODULES = ("emulator.cli", "bench.cli", "local.demo.cli", "local.autoscale.cli")


def register(app: typer.Typer) -> None:
    """Register every benchmarks command on the root app."""
    for module in _MODULES:
        importlib.import_module(module).register(app)
