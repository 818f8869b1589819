"""`pulumi up` / `llm-stack render`: check every engine's command line and LMCache settings with
vLLM's and LMCache's own code (the `.venv-engine` tool venv) before any resource is created, and
report a refusal under the model's stack key (`llm-stack:models.llama8b.extraArgs`).

`LLMSTACK_ENGINE_CHECK`: `auto` (default: check when the tool venv exists, else warn), `required`
(fail without it), `off` (skip; the test suite runs the check itself, once, over every stack).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from infra.errors import NAMESPACE, ConfigError
from stack_components import VllmEngineArgs
from stack_components.engine_check import container_case, engine_python, run_probe
from stack_components.engine_manifests import build_container
from stack_components.versions import LMCACHE_VERSION, VLLM_VERSION

MODE_ENV = "LLMSTACK_ENGINE_CHECK"
MODES = ("auto", "required", "off")


def check_mode() -> str:
    """The configured mode (read from the environment at the program's edge)."""
    mode = os.environ.get(MODE_ENV, "auto")
    if mode not in MODES:
        raise ConfigError(MODE_ENV, mode, f"must be one of {', '.join(MODES)}")
    return mode


def validate_engines(models: Mapping[str, VllmEngineArgs], warn: Callable[[str], None]) -> int:
    """Check every model's engine container; returns how many were checked (0 when skipped)."""
    mode = check_mode()
    if mode == "off":
        return 0
    python = engine_python()
    if python is None:
        message = (f"vLLM {VLLM_VERSION} / LMCache {LMCACHE_VERSION} tool venv not found "
                   "(run `make install`): engine flags and LMCache settings were not checked by "
                   "vLLM and LMCache")
        if mode == "required":
            raise ConfigError(MODE_ENV, mode, message)
        warn(message)
        return 0
    cases = [container_case(key, build_container(args)) for key, args in models.items()]
    report = run_probe(cases, python)
    for key, errors in report.errors.items():
        if errors:
            raise ConfigError(f"{NAMESPACE}:models.{key}.extraArgs", list(models[key].extra_args),
                              f"(or the engine settings) are refused by vLLM {VLLM_VERSION} / LMCache "
                              f"{LMCACHE_VERSION}: {'; '.join(errors)}")
    return len(cases)
