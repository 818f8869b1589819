"""The routers under test, as pure launch specs: a name, how to build its command line for
given engine URLs and port, and which tool venv (if any) holds it.

Peers come from PyPI into their own venvs (`venvs.ensure_venv`), pinned so a rerun measures
the same thing: sglang-router (Rust; `cache_aware` is its prefix-tree policy) and,
optionally, vllm-router (its fork). Ours is `llm-stack router` from this checkout; "ours on
granian" is the same app (`granian_app`) served by granian, a Rust ASGI server, from a tool venv
holding granian and the router image's pinned dependencies (issue 22: the router's own cost).
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
GRANIAN_PACKAGE = "granian==2.8.9"
GRANIAN_VENV = ".venv-granian"
GRANIAN_TARGET = "benchmarks.router_bench.granian_app:app"
ROUTER_REQUIREMENTS = "router/requirements.txt"  # the router image's pins, for the granian venv
GRANIAN_HEAD_BYTES = 64 * 1024  # router.shell.server.MAX_HEAD_BYTES, as granian's HTTP/1 buffer


@dataclass(frozen=True, kw_only=True)
class RouterSpec:
    """One router configuration to benchmark."""

    name: str  # row label, e.g. "ours prefix w1"
    argv: Callable[[Sequence[str], int, int, Path], list[str]]  # (engine urls, port, metrics port, workdir)
    files: tuple[tuple[str, str], ...] = ()  # (name, text) written into the workdir before the start
    venv: str | None = None  # tool venv directory (relative to the repo root), None: ours
    package: str | None = None  # what to pip install into `venv`
    pip_args: tuple[str, ...] = ()  # more `pip install` arguments for `venv` (e.g. `-r FILE`)
    # variables set for the process on top of the benchmark's own: (engine urls, workdir) -> vars
    environ: Callable[[Sequence[str], Path], dict[str, str]] | None = None
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


def granian_environ(config: Path, engines: Sequence[str], policy: str, gpu_tokens: int) -> dict[str, str]:
    """The variables `granian_app.settings_from_env` reads: what `ours` passes as flags."""
    from benchmarks.router_bench.granian_app import ENV_PREFIX

    return {ENV_PREFIX + "CONFIG": str(config), ENV_PREFIX + "ENGINES": ",".join(engines),
            ENV_PREFIX + "MODEL": MODEL, ENV_PREFIX + "POLICY": policy,
            ENV_PREFIX + "ENGINE_CAPACITY_TOKENS": str(gpu_tokens)}


def ours_on_granian(root: Path, policy: str, workers: int, gpu_tokens: int, cpu_tokens: int, *,
                    label: str = "ours granian") -> RouterSpec:
    """Our app (this checkout, `--working-dir` puts it on the import path) served by granian:
    the ASGI interface, uvloop, HTTP/1.1 only (as uvicorn), no websockets (uvicorn's `ws="none"`),
    the read buffer at our 64 KiB head limit (hyper refuses a longer head with 431), the
    settings from the environment. Flags: granian 2.8 `granian/cli.py`."""
    config = f"{label.replace(' ', '-')}-{policy}-w{workers}.json"
    exe = str(root / GRANIAN_VENV / "bin" / "granian")

    def argv(_engines: Sequence[str], port: int, _metrics: int, _workdir: Path) -> list[str]:
        return [exe, "--interface", "asgi", "--loop", "uvloop", "--http", "1", "--no-ws",
                "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
                "--http1-buffer-size", str(GRANIAN_HEAD_BYTES), "--log-level", "warning",
                "--working-dir", str(root), "--factory", GRANIAN_TARGET]

    def environ(engines: Sequence[str], workdir: Path) -> dict[str, str]:
        return granian_environ(workdir / config, engines, policy, gpu_tokens)

    text = json.dumps({"default_cpu_cache_tokens": cpu_tokens, "log_level": "warning"})
    return RouterSpec(name=f"{label} {policy} w{workers}", argv=argv, files=((config, text),),
                      venv=GRANIAN_VENV, package=GRANIAN_PACKAGE,
                      pip_args=("-r", str(root / ROUTER_REQUIREMENTS)), environ=environ,
                      workers=workers, policy=policy)
