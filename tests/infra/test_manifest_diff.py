"""`llm-stack diff`: the pure difference of two renders, and the command on two real commits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from infra.manifest_diff import diff_stack, format_markdown, redact_object

ROOT = Path(__file__).resolve().parents[2]


def _obj(name: str, **spec) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": spec})


def _records(*entries) -> str:
    return json.dumps(
        [
            {"urn": f"urn:{t}::{n}", "type": t, "name": n, "parent": None, "custom": True, "inputs": i}
            for t, n, i in entries
        ]
    )


def test_changed_added_and_removed_objects_are_listed_with_a_unified_diff():
    """An object whose YAML changed shows -/+ lines; added and removed ones are named."""
    base = {"kubernetes/a.yaml": _obj("a", x="1"), "kubernetes/gone.yaml": _obj("gone")}
    head = {"kubernetes/a.yaml": _obj("a", x="2"), "kubernetes/new.yaml": _obj("new")}
    d = diff_stack("dev", base, head)
    assert [(c.name, c.status) for c in d.objects] == [
        ("kubernetes/a.yaml", "changed"),
        ("kubernetes/gone.yaml", "removed"),
        ("kubernetes/new.yaml", "added"),
    ]
    assert "-  x: '1'\n+  x: '2'\n" in d.objects[0].diff
    report = format_markdown("main", "HEAD", [d])
    assert "- **dev**: Kubernetes objects 1 changed, 1 added, 1 removed" in report
    assert "```diff" in report and "<code>kubernetes/new.yaml</code> (added)" in report


def test_secret_values_are_redacted_even_if_a_render_left_them():
    """A Secret's data and stringData values never reach the report."""
    secret = yaml.safe_dump(
        {
            "kind": "Secret",
            "metadata": {"name": "s"},
            "stringData": {"token": "hf_real"},
            "data": {"k": "c2VjcmV0"},
        }
    )
    assert "hf_real" not in redact_object(secret) and "c2VjcmV0" not in redact_object(secret)
    d = diff_stack("dev", {}, {"kubernetes/s.yaml": secret})
    assert "hf_real" not in format_markdown("a", "b", [d]) and "[secret]" in d.objects[0].diff


def test_resources_json_is_diffed_by_urn_without_repeating_kubernetes_objects():
    """Cloud resources appear by URN with their inputs; Kubernetes objects only once, as files."""
    base = {
        "resources.json": _records(
            ("aws:eks/nodeGroup:NodeGroup", "gpu", {"scalingConfig": {"maxSize": 1}}),
            ("kubernetes:core/v1:ConfigMap", "cm", {"data": {"a": "1"}}),
        )
    }
    head = {
        "resources.json": _records(
            ("aws:eks/nodeGroup:NodeGroup", "gpu", {"scalingConfig": {"maxSize": 2}}),
            ("kubernetes:core/v1:ConfigMap", "cm", {"data": {"a": "2"}}),
        )
    }
    d = diff_stack("prod", base, head)
    assert [c.name for c in d.resources] == ["urn:aws:eks/nodeGroup:NodeGroup::gpu"]
    assert '-      "maxSize": 1\n+      "maxSize": 2\n' in d.resources[0].diff
    assert format_markdown("a", "b", [diff_stack("dev", base, base)]).count("no change") == 1


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def test_diff_command_renders_two_commits(tmp_path):
    """In a repository with two commits (the benchmark's user count raised in dev), `llm-stack diff
    BASE HEAD --stack dev` shows exactly the benchmark Job changing, and exits 1 with --exit-code."""
    repo = tmp_path / "repo"
    for rel in subprocess.run(
        ["git", "-C", str(ROOT), "ls-files"], check=True, capture_output=True, text=True
    ).stdout.split():
        if (ROOT / rel).is_file() and not rel.startswith("tests/"):
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repo / rel)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    stack_file = repo / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("    users: 16\n", "    users: 24\n", 1))
    _git(repo, "commit", "-q", "-am", "head: more benchmark users")
    cmd = [
        sys.executable,
        "-c",
        "from cli import main; main()",
        "diff",
        "HEAD~1",
        "HEAD",
        "--stack",
        "dev",
        "--repo",
        str(repo),
        "--exit-code",
        "--out",
        str(tmp_path / "diff.md"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    report = (tmp_path / "diff.md").read_text()
    assert report == done.stdout
    assert "- **dev**: Kubernetes objects 1 changed, 0 added, 0 removed" in report
    assert "<code>kubernetes/llm-stack.job.llm-bench.yaml</code> (changed)" in report
    assert "-        - '16'\n+        - '24'\n" in report
