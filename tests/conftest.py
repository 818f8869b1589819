"""Suite-wide fixtures. The Pulumi mock runtime is installed per test (never at import time),
with preview=False so every output is known and checks can chain; `tests/infra` and
`tests/stack_components` make it autouse in their own conftest."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pulumi
import pytest

from infra.mocks import RecordingMocks, close_loop, install, open_loop


@pytest.fixture(autouse=True, scope="session")
def _engine_check_runs_once() -> Iterator[None]:
    """Programs run under the mocks skip the vLLM/LMCache probe (a subprocess importing vLLM);
    tests/stack_components/test_engine_check.py runs it once over every stack instead."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LLMSTACK_ENGINE_CHECK", "off")
    yield
    mp.undo()


@pytest.fixture
def pulumi_mocks() -> Iterator[RecordingMocks]:
    """A fresh recording mock runtime on a fresh event loop; tests that build resources use it
    to find what was registered (and assert how many they inspected).

    The loop is the test's own (asyncio tests elsewhere leave the main thread with none), and
    it is drained of the SDK's pending RPCs before it closes, so nothing leaks into the next test."""
    loop = open_loop()
    mocks = RecordingMocks()
    install(mocks, project="llm-stack", stack="test")
    yield mocks
    try:
        loop.run_until_complete(asyncio.wait_for(pulumi.runtime.stack.wait_for_rpcs(), timeout=30))
    finally:
        close_loop(loop)
