"""The program run the way the Pulumi CLI runs it: working directory = `main`'s directory from
Pulumi.yaml, `__main__.py` executed by `runpy.run_path(".")`; every build path it hands to
docker-build exists from there."""

from __future__ import annotations

import runpy
from pathlib import Path

import pulumi
import pytest
import yaml
from pulumi.runtime.config import set_all_config

from infra.stackfile import read_stack_file

ROOT = Path(__file__).resolve().parents[2]


def cli_pwd_main(root: Path, main: str | None) -> tuple[Path, str]:
    """The CLI's rule (pulumi/pulumi `pkg/engine/project.go`, `getPwdMain`): a directory `main`
    becomes the working directory and the entry point is "."; a file `main` runs from its parent."""
    if not main:
        return root, "."
    path = (root / main).resolve()
    return (path, ".") if path.is_dir() else (path.parent, path.name)


def test_cli_rule_puts_our_program_in_infra():
    """Our Pulumi.yaml's `main: infra/` makes infra/ the working directory, so a path relative to
    the working directory is not relative to the repository."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert cli_pwd_main(ROOT, project["main"]) == (ROOT / "infra", ".")
    assert not (ROOT / "infra" / "router" / "Dockerfile").exists()  # where `context: "."` pointed


@pytest.mark.parametrize("root_directory", [None, str(ROOT)], ids=["sdk-placeholder", "cli-root-directory"])
def test_program_from_mains_directory_builds_from_existing_paths(pulumi_mocks, monkeypatch, root_directory):
    """Run as the CLI does (chdir to `main`, run `.`; with and without the CLI's --root_directory):
    each docker-build Image's context is the project root and its Dockerfile exists, as resolved
    from that working directory (where the provider resolves them too)."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    pwd, entry = cli_pwd_main(ROOT, project["main"])
    stack_file = read_stack_file(ROOT, "dev")
    set_all_config(dict(stack_file.config), list(stack_file.secret_keys))
    if root_directory is not None:  # as pulumi-language-python-exec's --root_directory sets it
        monkeypatch.setattr(pulumi.runtime.settings.SETTINGS, "root_directory", root_directory)
    monkeypatch.chdir(pwd)

    def program() -> None:  # what pulumi-language-python-exec runs; its globals are not returned
        runpy.run_path(entry, run_name="__main__")

    try:
        pulumi.runtime.test(program)()
    finally:
        set_all_config({}, [])
    images = pulumi_mocks.of_type("docker-build:index:Image")
    assert len(images) == 2  # router and benchmark
    for image in images:
        context = (pwd / image.inputs["context"]["location"]).resolve()
        dockerfile = (pwd / image.inputs["dockerfile"]["location"]).resolve()
        assert context == ROOT, image.inputs
        assert dockerfile.is_file() and dockerfile.parent.parent == ROOT, image.inputs
        assert (context / ".dockerignore").is_file()
