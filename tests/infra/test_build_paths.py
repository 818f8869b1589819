"""Build paths: the project root from the CLI's root directory or the nearest Pulumi.yaml, the
context and Dockerfile relative to the working directory, a missing Dockerfile refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.aws.build_paths import BuildPathError, build_paths, project_root

ROOT = Path(__file__).resolve().parents[2]


def test_root_directory_from_the_cli_wins():
    """The CLI's --root_directory is the root, whatever the working directory."""
    assert project_root(str(ROOT), Path("/")) == ROOT


@pytest.mark.parametrize("cwd", [ROOT, ROOT / "infra", ROOT / "infra" / "aws"])
@pytest.mark.parametrize("given", [None, "", "root_directory", "infra"])
def test_root_is_the_nearest_pulumi_yaml_at_or_above_the_working_directory(cwd, given):
    """No usable root directory (none; the mock runtime's placeholder "root_directory"; a relative
    path): the nearest directory holding Pulumi.yaml."""
    assert project_root(given, cwd) == ROOT


def test_no_pulumi_yaml_is_an_error(tmp_path):
    """Outside any project: an error naming the directory searched."""
    with pytest.raises(BuildPathError, match=str(tmp_path)):
        project_root(None, tmp_path)


@pytest.mark.parametrize(("cwd", "context"),
                         [(ROOT, "."), (ROOT / "infra", ".."), (ROOT / "infra" / "aws", "../..")])
def test_paths_are_relative_to_the_working_directory(cwd, context):
    """From the root (render) `.`; from infra/ (the CLI) `..`; both point at the same files."""
    paths = build_paths(ROOT, cwd, "router/Dockerfile")
    assert (paths.context, paths.dockerfile) == (context, f"{context}/router/Dockerfile")
    assert (cwd / paths.dockerfile).resolve() == ROOT / "router" / "Dockerfile"


def test_a_missing_dockerfile_fails_naming_the_path(tmp_path):
    """A root without the Dockerfile (the package installed without its sources): a clear error."""
    (tmp_path / "Pulumi.yaml").write_text("name: x\n")
    with pytest.raises(BuildPathError, match=r"router/Dockerfile does not exist.*router\.image"):
        build_paths(tmp_path, tmp_path, "router/Dockerfile")
