"""The demo's one exception: a bad plan, a piece that did not start, a run that failed."""

from __future__ import annotations


class DemoError(RuntimeError):
    """The demo cannot run or failed; the message says which part and why."""
