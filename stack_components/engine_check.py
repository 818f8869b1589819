"""Check rendered engine containers with vLLM's and LMCache's own code.

The packages are heavy and pinned to the engine image's versions (`versions.py`), so they live
in a tool venv of their own (`.venv-engine`, made by `make install`); `engine_probe.py` runs
there as a subprocess. This module is the thin shell: it turns manifests into cases (pure),
finds the tool venv and runs the probe once for a batch of cases.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack_components.errors import ComponentError

ENGINE_CONTAINER = "vllm"
PYTHON_ENV = "LLMSTACK_ENGINE_PYTHON"
"""Environment variable naming the engine-check venv's python (overrides the default)."""
DEFAULT_VENV = ".venv-engine"
PROBE = Path(__file__).with_name("engine_probe.py")
PROBE_TIMEOUT_S = 600


class EngineCheckError(ComponentError):
    """vLLM or LMCache refused an engine's settings, or the probe could not run."""


@dataclass(frozen=True, kw_only=True)
class EngineCase:
    """One engine container to check: its full command line and its plain env."""

    name: str
    """What the errors are reported against (a file or a stack key)."""
    command: tuple[str, ...]
    """`command` + `args` of the container."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Plain (non-secret) env vars of the container."""

    def to_json(self) -> dict[str, Any]:
        """The probe's input form."""
        return {"name": self.name, "command": list(self.command), "env": dict(self.env)}


@dataclass(frozen=True, kw_only=True)
class ProbeReport:
    """What the probe found."""

    versions: Mapping[str, str]
    """vllm / lmcache / torch versions of the tool venv."""
    errors: Mapping[str, tuple[str, ...]]
    """Errors by case name (empty tuple: the case passed)."""
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """By case name, engine arguments as vLLM parsed them (`engine_probe.REPORTED`; empty for a
    case that failed)."""


def container_case(name: str, container: Mapping[str, Any]) -> EngineCase:
    """A case from a container spec."""
    env = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
    command = (*container.get("command", []), *container.get("args", []))
    return EngineCase(name=name, command=tuple(command), env=env)


def cases_from_manifests(objects: Iterable[tuple[str, Mapping[str, Any]]]) -> list[EngineCase]:
    """Every vLLM container of the Deployments among `(name, object)` pairs."""
    cases = []
    for name, obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            if container.get("name") == ENGINE_CONTAINER:
                cases.append(container_case(name, container))
    return cases


def engine_python(root: Path | None = None) -> Path | None:
    """The tool venv's python: `$LLMSTACK_ENGINE_PYTHON`, else `<root>/.venv-engine/bin/python`
    (root: this checkout); None when neither exists."""
    configured = os.environ.get(PYTHON_ENV)
    if configured:
        return Path(configured)
    base = root or Path(__file__).resolve().parents[1]
    candidate = base / DEFAULT_VENV / "bin" / "python"
    return candidate if candidate.exists() else None


def run_probe(cases: Iterable[EngineCase], python: Path) -> ProbeReport:
    """Run `engine_probe.py` under `python` on every case, in one process."""
    payload = json.dumps([c.to_json() for c in cases])
    env = dict(os.environ, VLLM_TARGET_DEVICE="cpu", VLLM_LOGGING_LEVEL="ERROR", LMCACHE_LOG_LEVEL="ERROR")
    try:
        done = subprocess.run(
            # -P: the probe's own directory (stack_components/, which has an lmcache.py) must not
            # shadow the real `lmcache` package on sys.path
            [str(python), "-P", str(PROBE)], input=payload, capture_output=True, text=True,
            timeout=PROBE_TIMEOUT_S, env=env, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineCheckError(f"the engine check could not run under {python}: {exc}") from exc
    if done.returncode != 0:
        raise EngineCheckError(f"the engine check failed under {python}: {done.stderr[-4000:]}")
    out = json.loads(done.stdout)
    errors = {r["name"]: tuple(r["errors"]) for r in out["results"]}
    values = {r["name"]: dict(r.get("values") or {}) for r in out["results"]}
    return ProbeReport(versions=out["versions"], errors=errors, values=values)
