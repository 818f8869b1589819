"""The routers under test, as pure launch specs: a name, how to build its command line for
given engine URLs and port, and which tool venv (if any) holds it.

Peers come from PyPI into their own venvs (`venvs.ensure_venv`), pinned so a rerun measures
the same thing: sglang-router (Rust; `cache_aware` is its prefix-tree policy) and,
optionally, vllm-router (its fork). Ours is `llm-stack router` from this checkout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.router_bench.fake_engine import MODEL

SGLANG_PACKAGE = "sglang-router==0.3.2"
VLLM_ROUTER_PACKAGE = "vllm-router==0.1.17"
SGLANG_VENV = ".venv-sglang"
VLLM_ROUTER_VENV = ".venv-vllm-router"


@dataclass(frozen=True, kw_only=True)
class RouterSpec:
    """One router configuration to benchmark."""

    name: str  # row label, e.g. "ours prefix w1"
    argv: Callable[[Sequence[str], int, int, Path], list[str]]  # (engine urls, port, metrics port, workdir)
    files: tuple[tuple[str, str], ...] = ()  # (name, text) written into the workdir before the start
    venv: str | None = None  # tool venv directory (relative to the repo root), None: ours
    package: str | None = None  # what to pip install into `venv`
    health_path: str = "/health"
    workers: int = 1
    policy: str = ""


def _llm_stack() -> str:
    return str(Path(sys.executable).with_name("llm-stack"))


def _from_source(src: Path) -> list[str]:
    """`llm-stack` run from another source tree (e.g. `git archive` of an older commit),
    ahead of this checkout on the import path: the "before" row of a side-by-side run."""
    from cli import argv_from_source

    return argv_from_source(src)


def ours(policy: str, workers: int, gpu_tokens: int, cpu_tokens: int, *,
         source: Path | None = None, label: str = "ours") -> RouterSpec:
    """`llm-stack router` with `policy` and `workers` processes; each engine's cache capacity
    (GPU + LMCache CPU tier, which bounds the prefix index) comes from a settings file.
    `source`: run the router from that source tree instead of this checkout."""
    config = f"{label}-{policy}-w{workers}.json"
    launcher = _from_source(source) if source is not None else [_llm_stack()]

    def argv(engines: Sequence[str], port: int, _metrics: int, workdir: Path) -> list[str]:
        return [*launcher, "router", "--config", str(workdir / config), "--engines", ",".join(engines),
                "--model", MODEL, "--policy", policy, "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--engine-capacity-tokens", str(gpu_tokens)]

    text = json.dumps({"default_cpu_cache_tokens": cpu_tokens, "log_level": "warning"})
    return RouterSpec(name=f"{label} {policy} w{workers}", argv=argv, files=((config, text),),
                      workers=workers, policy=policy)


def sglang(root: Path, policy: str = "cache_aware") -> RouterSpec:
    """sglang-router's launcher (`python -m sglang_router.launch_router`)."""
    python = str(root / SGLANG_VENV / "bin" / "python")

    def argv(engines: Sequence[str], port: int, metrics: int, _workdir: Path) -> list[str]:
        return [python, "-m", "sglang_router.launch_router", "--worker-urls", *engines,
                "--policy", policy, "--host", "127.0.0.1", "--port", str(port),
                "--prometheus-host", "127.0.0.1", "--prometheus-port", str(metrics),
                "--log-level", "warn"]

    return RouterSpec(name=f"sglang {policy}", argv=argv, venv=SGLANG_VENV, package=SGLANG_PACKAGE,
                      policy=policy)


def vllm_router(root: Path, policy: str = "cache_aware") -> RouterSpec:
    """vllm-router's CLI (a fork of sglang-router)."""
    exe = str(root / VLLM_ROUTER_VENV / "bin" / "vllm-router")

    def argv(engines: Sequence[str], port: int, metrics: int, _workdir: Path) -> list[str]:
        return [exe, "--worker-urls", *engines, "--policy", policy, "--host", "127.0.0.1",
                "--port", str(port), "--prometheus-host", "127.0.0.1", "--prometheus-port", str(metrics),
                "--log-level", "warning"]

    return RouterSpec(name=f"vllm-router {policy}", argv=argv, venv=VLLM_ROUTER_VENV,
                      package=VLLM_ROUTER_PACKAGE, policy=policy)
