"""The layers, read from the imports: the router's pure core (`router.routing`) never imports its
I/O shell (`router.shell`) nor anything that does I/O; the deploy-time packages learn shared
names from `contracts`, not from the router; `contracts` needs only the standard library; and
no shipped package imports a measurement script (`benchmarks`)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "router" / "routing"
# Modules that do or wait on I/O, read a clock, or share state across threads.
IO_MODULES = frozenset({
    "aiohttp", "asyncio", "fastapi", "http", "httptools", "logging", "multiprocessing", "os", "pathlib",
    "prometheus_client", "signal", "socket", "ssl", "starlette", "subprocess", "threading", "time",
    "urllib", "uvicorn", "uvloop", "yaml",
})
DEPLOY_TIME = ("stack_components", "infra", "policies")
SHIPPED = ("cli", "contracts", "infra", "stack_components", "router", "policies", "bench", "emulator",
           "local")


def imported_modules(path: Path, root: Path = ROOT) -> Iterator[str]:
    """Every module `path` imports, at any depth (function bodies included); relative imports
    resolved against the file's package under `root`."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            yield base


def _modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def test_core_imports_neither_the_shell_nor_io() -> None:
    """No module under router/routing imports router.shell, or an I/O, clock or thread module."""
    modules = _modules(CORE)
    assert len(modules) >= 12, [m.name for m in modules]  # the walk saw the core
    found = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in modules
        for name in imported_modules(path)
        if name.startswith("router.shell") or name.split(".")[0] in IO_MODULES
    }
    assert not found, sorted(found)


def test_the_walk_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The import walk is live: a function-level `from router.shell...` and a relative import are seen."""
    fake = tmp_path / "router" / "routing" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("import time\ndef f():\n    from router.shell.proxy import Proxy\nfrom . import cost\n")
    assert sorted(imported_modules(fake, tmp_path)) == ["router.routing", "router.shell.proxy", "time"]


def test_deploy_time_code_does_not_import_the_router_for_names() -> None:
    """stack_components, infra and policies import no router module but its settings (which
    they render) and its policy registry (which validates a stack's policy params)."""
    allowed = ("router.settings", "router.routing.policies.registry")
    checked = 0
    found = set()
    for top in DEPLOY_TIME:
        for path in _modules(ROOT / top):
            checked += 1
            found |= {f"{path.relative_to(ROOT)}: {name}" for name in imported_modules(path)
                      if name.split(".")[0] == "router" and name not in allowed}
    assert checked > 100 and not found, (checked, sorted(found))


def test_contracts_need_only_the_standard_library() -> None:
    """Every image carries `contracts` cheaply: it imports the standard library and itself only."""
    modules = _modules(ROOT / "contracts")
    found = {f"{path.relative_to(ROOT)}: {name}" for path in modules for name in imported_modules(path)
             if name.split(".")[0] not in sys.stdlib_module_names | {"contracts", "__future__"}}
    assert len(modules) >= 2 and not found, sorted(found)


def test_shipped_packages_import_no_measurement_script() -> None:
    """Product (the CLI, components, router, benchmark, emulator, local stack) never imports
    `benchmarks`, where the measurements that print figures live; the reverse is fine."""
    modules = [path for top in SHIPPED for path in _modules(ROOT / top)]
    found = {f"{path.relative_to(ROOT)}: {name}" for path in modules for name in imported_modules(path)
             if name.split(".")[0] == "benchmarks"}
    assert len(modules) > 200 and not found, sorted(found)
