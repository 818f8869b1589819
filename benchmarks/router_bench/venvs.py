"""Tool venvs for the peer routers: created on first use, so the peers' pins never meet ours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from local.procs import BenchError

_INSTALL_TIMEOUT_S = 600


def ensure_venv(root: Path, venv: str, package: str) -> Path:
    """`root/venv` with `package` installed (created and installed when missing); its python."""
    path = root / venv
    python = path / "bin" / "python"
    stamp = path / f".installed-{package.replace('==', '-')}"
    if stamp.exists():
        return python
    steps = []
    if not python.exists():
        steps.append([sys.executable, "-m", "venv", str(path)])
    steps.append([str(python), "-m", "pip", "install", "-q", package])
    for argv in steps:
        try:
            subprocess.run(argv, check=True, timeout=_INSTALL_TIMEOUT_S, capture_output=True)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            raise BenchError(f"could not install {package} into {path}: {exc}\n"
                             f"{detail.decode(errors='replace')[-2000:]}") from exc
    stamp.touch()
    return python
