"""Where an image's build context and Dockerfile are, as the Pulumi CLI runs the program (pure).

With a directory `main` in Pulumi.yaml (ours: `main: infra/`), the CLI runs the program, and
starts its providers, with that directory as the working directory, not the project's root:

- `getPwdMain` (pulumi/pulumi `pkg/engine/project.go`): "if maininfo.IsDir() { pwd = main;
  main = "." }";
- the Python language host passes that pwd as `--pwd` (`constructArguments`,
  `sdk/python/cmd/pulumi-language-python/main.go`), and `pulumi-language-python-exec` does
  `os.chdir(args.pwd)` before `runpy.run_path(".")`;
- providers are started in the same directory (`newPlugin(ctx, ctx.Pwd, ...)` in
  `sdk/go/common/resource/plugin/provider_plugin.go`), so docker-build resolves a relative
  context or Dockerfile against `infra/`.

So a build path is made from the project's root, then written relative to the working
directory (`..` under the CLI, `.` for `llm-stack render` run from the root): the path stays
the same on every checkout, and a stack's state does not change with where it was cloned.
The root is Pulumi's root directory (`pulumi.get_root_directory()`, which the CLI passes as
`--root_directory`) when it is a directory holding `Pulumi.yaml`, else (the mock runtime leaves
the SDK's placeholder, the literal "root_directory") the nearest directory at or above the
working directory that holds `Pulumi.yaml`, as the CLI itself looks for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from infra.errors import InfraError

PROJECT_FILE = "Pulumi.yaml"


class BuildPathError(InfraError):
    """An image cannot be built: no project root, or its Dockerfile is not in this checkout."""


@dataclass(frozen=True, kw_only=True)
class BuildPaths:
    """An image's build inputs, relative to the program's working directory (POSIX)."""

    context: str
    """The build context: the project root (`.` or `..`)."""
    dockerfile: str
    """The Dockerfile, e.g. `../router/Dockerfile`."""


def project_root(root_directory: str | None, cwd: Path) -> Path:
    """The project's root: `root_directory` when it is an absolute path holding Pulumi.yaml (the
    CLI's), else the nearest of `cwd` and its parents holding one; a `BuildPathError` when none."""
    given = Path(root_directory or ".")
    if given.is_absolute() and (given / PROJECT_FILE).is_file():
        return given.resolve()
    start = cwd.resolve()
    for candidate in (start, *start.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    raise BuildPathError(f"no {PROJECT_FILE} in {start} or its parents: the images are built from the "
                         "project's root (run `pulumi up` inside the project)")


def build_paths(root: Path, cwd: Path, dockerfile: str) -> BuildPaths:
    """The context (`root`) and `root/dockerfile`, relative to `cwd`; a `BuildPathError` naming
    the path when the Dockerfile is not there (e.g. the package installed without its sources)."""
    path = root / dockerfile
    if not path.is_file():
        raise BuildPathError(f"cannot build the image: {path} does not exist (the images are built from "
                             "a checkout of this repository; or set llm-stack:router.image / "
                             "llm-stack:benchmark.image to a pushed image)")
    context = Path(os.path.relpath(root, cwd.resolve())).as_posix()
    return BuildPaths(context=context, dockerfile=f"{context}/{Path(dockerfile).as_posix()}")
