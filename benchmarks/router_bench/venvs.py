"""Tool venvs for the peer routers: created on first use, so the peers' pins never meet ours."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from local.procs import BenchError

_INSTALL_TIMEOUT_S = 600


def stamp_name(package: str, pip_args: Sequence[str] = ()) -> str:
    """The marker file of one install: the package, and a digest of the other arguments (a
    requirements file's path, not its contents: change the path or the pin to reinstall)."""
    name = f".installed-{package.replace('==', '-')}"
    if pip_args:
        name += "-" + hashlib.sha256("\0".join(pip_args).encode()).hexdigest()[:12]
    return name


def ensure_venv(root: Path, venv: str, package: str, pip_args: Sequence[str] = ()) -> Path:
    """`root/venv` with `package` (and `pip_args`, e.g. `-r FILE`) installed, created and
    installed when missing; its python."""
    path = root / venv
    python = path / "bin" / "python"
    stamp = path / stamp_name(package, pip_args)
    if stamp.exists():
        return python
    steps = []
    if not python.exists():
        steps.append([sys.executable, "-m", "venv", str(path)])
    steps.append([str(python), "-m", "pip", "install", "-q", package, *pip_args])
    for argv in steps:
        try:
            subprocess.run(argv, check=True, timeout=_INSTALL_TIMEOUT_S, capture_output=True)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            raise BenchError(f"could not install {package} into {path}: {exc}\n"
                             f"{detail.decode(errors='replace')[-2000:]}") from exc
    stamp.touch()
    return python
