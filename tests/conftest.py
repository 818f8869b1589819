"""Suite-wide fixtures. The Pulumi mock runtime is installed per test by an autouse fixture
(never at import time), with preview=False so every output is known and checks can chain."""

from __future__ import annotations

import pytest

from infra.mocks import RecordingMocks, install


@pytest.fixture(autouse=True)
def pulumi_mocks() -> RecordingMocks:
    """A fresh recording mock runtime for every test; tests that build resources use it to
    find what was registered (and assert how many they inspected)."""
    mocks = RecordingMocks()
    install(mocks, project="llm-stack", stack="test")
    return mocks
