"""The benchmark's exception tree: every failure the CLI translates into a clear message."""

from __future__ import annotations


class BenchError(Exception):
    """Base of every error the multi-round QA benchmark raises on purpose."""


class ConfigError(BenchError, ValueError):
    """A flag or config field holds a value the benchmark cannot run with."""


class EndpointError(BenchError):
    """The endpoint under test is unreachable or does not serve what was asked."""


class InputFileError(BenchError):
    """An input file (ShareGPT JSON, a run directory) is missing or malformed."""


class PlotError(BenchError):
    """Plotting was asked for without matplotlib (the `plot` extra: pip install 'llm-stack[plot]')."""
