"""Fixtures for the infra tests: the shipped stack files as raw config, a program runner under
the suite's recording mocks, and one real `llm-stack render` per environment per session."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime.config import set_all_config

from infra.mocks import RecordingMocks
from infra.stackfile import STACKS, StackFile, parse_stack_yaml, raw_project_config, read_stack_file

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"

@pytest.fixture(autouse=True)
def _mock_runtime(pulumi_mocks: RecordingMocks) -> RecordingMocks:
    """Every test here runs under the suite's recording Pulumi mocks."""
    return pulumi_mocks


def stack_raw(stack: str) -> dict[str, Any]:
    """The `llm-stack:` keys of a shipped stack, as `parse_stack_config` takes them (a fresh copy)."""
    return copy.deepcopy(raw_project_config(read_stack_file(ROOT, stack)))


@pytest.fixture
def raw() -> Callable[[str], dict[str, Any]]:
    """A fresh, mutable copy of a shipped stack's raw config."""
    return stack_raw


@pytest.fixture
def run_program(pulumi_mocks: RecordingMocks) -> Iterator[Callable[[StackFile], RecordingMocks]]:
    """Run `infra.program.main` with a stack's config under the suite's recording mocks."""
    from infra.program import main

    def run(stack_file: StackFile) -> RecordingMocks:
        set_all_config(dict(stack_file.config), list(stack_file.secret_keys))
        pulumi.runtime.test(lambda: main())()
        return pulumi_mocks

    yield run
    set_all_config({}, [])


def stack_file_from(document: dict[str, Any]) -> StackFile:
    """A `StackFile` from an in-memory Pulumi.<stack>.yaml document."""
    return parse_stack_yaml(document)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`llm-stack render --stack ENV` for every environment, once per session, as the CLI runs
    (subprocesses in parallel: each gets its own mock runtime); its stderr beside, `ENV.stderr`."""
    out = tmp_path_factory.mktemp("render")
    cli = [sys.executable, "-c", "from cli import main; main()"]
    procs = {env: subprocess.Popen([*cli, "render", "--stack", env, "--out", str(out / env)], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for env in STACKS}
    for env, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=90)
        assert proc.returncode == 0, f"render {env} failed:\n{stdout}\n{stderr}"
        (out / f"{env}.stderr").write_text(stderr)  # what the program logged (warnings)
    return {env: out / env for env in STACKS}
