"""The deploy workflows' shell steps: the benchmark wait ends on the Job's Complete or Failed
condition (a failed pod the Job retries is not the end) and does not gate on an earlier deploy's
Job; the endpoint check passes when the cluster API answers anything and fails naming the runner
variables when it cannot be reached; both workflows run on the runner those variables choose."""

from __future__ import annotations

import http.server
import os
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / ".github" / "scripts"
WORKFLOWS = ROOT / ".github" / "workflows"

FAKE_KUBECTL = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$KUBECTL_LOG"
case "$*" in
  *"get jobs -l llmstack.io/role=benchmark -o name"*)
    [ "$JOB" = "!" ] && { echo "Unable to connect to the server" >&2; exit 1; }
    [ -n "$JOB" ] && echo "job.batch/$JOB"; exit 0 ;;
  *"creationTimestamp"*) echo "$CREATED" ;;
  *"serving-sha256"*) echo "abc123" ;;
  *'@.type=="Failed"'*) echo "BackoffLimitExceeded" ;;
  *'@.status=="True"'*)
    n=$(( $(cat "$POLLS") + 1 )); echo "$n" > "$POLLS"
    line="$(sed -n "${n}p" "$CONDITIONS")"
    [ -z "$line" ] && line="$(tail -n1 "$CONDITIONS")"
    [ "$line" = "-" ] && line=""
    printf '%s' "$line" ;;
  *) exit 3 ;;
esac
"""


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _wait(tmp_path: Path, conditions: list[str], *, created: str, started: int, job: str = "llm-bench",
          timeout_s: int = 60) -> tuple[subprocess.CompletedProcess[str], dict[str, str], int]:
    _executable(tmp_path / "bin" / "kubectl", FAKE_KUBECTL)
    (tmp_path / "conditions").write_text("\n".join(c or "-" for c in conditions) + "\n")
    (tmp_path / "polls").write_text("0")
    out = tmp_path / "github_output"
    out.write_text("")
    env = os.environ | {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "KUBECTL_LOG": str(tmp_path / "log"),
        "JOB": job, "CREATED": created, "CONDITIONS": str(tmp_path / "conditions"),
        "POLLS": str(tmp_path / "polls"), "BENCH_POLL_S": "0",
    }
    done = subprocess.run(["bash", str(SCRIPTS / "wait-benchmark-job.sh"), "llm", str(started),
                           str(timeout_s), str(out)], env=env, capture_output=True, text=True, timeout=30)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    return done, outputs, int((tmp_path / "polls").read_text())


NEW, BEFORE, AFTER = "2026-12-01T10:00:00Z", 1796119200 - 60, 1796119200 + 60  # 10:00Z -/+ 1 min


def test_wait_outlasts_a_failed_pod_the_job_retries(tmp_path):
    """A pod fails (no terminal condition yet, the Job retries it), then the Job completes: the
    wait succeeds and gates on this run; it polled past the failure."""
    done, outputs, polls = _wait(tmp_path, ["", "", "", "Complete"], created=NEW, started=BEFORE)
    assert done.returncode == 0, done.stderr
    assert outputs == {"job": "llm-bench", "gate": "run"}
    assert polls == 4


def test_wait_fails_on_the_failed_condition_with_its_reason(tmp_path):
    """FailureTarget comes first (Kubernetes 1.31+), then Failed: the wait fails on Failed,
    naming the reason."""
    done, outputs, polls = _wait(tmp_path, ["", "FailureTarget", "FailureTarget Failed"], created=NEW,
                                 started=BEFORE)
    assert done.returncode == 1
    assert "BackoffLimitExceeded" in done.stderr and "gate" not in outputs
    assert polls == 3


def test_a_job_older_than_the_deploy_is_not_gated(tmp_path):
    """The digest did not change, so the Job was not replaced: no wait, gate=skip, and the notice
    names the digest."""
    done, outputs, polls = _wait(tmp_path, ["Failed"], created=NEW, started=AFTER)
    assert done.returncode == 0, done.stderr
    assert outputs == {"job": "llm-bench", "gate": "skip"}
    assert polls == 0 and "abc123" in done.stderr


def test_wait_times_out_and_a_missing_job_fails(tmp_path):
    """A Job that never ends fails at the deadline; no Job at all, or no answer, fails at once
    and says so."""
    done, outputs, polls = _wait(tmp_path, [""], created=NEW, started=BEFORE, timeout_s=0)
    assert done.returncode == 1 and "did not finish in 0s" in done.stderr and polls == 1
    missing, outputs, _ = _wait(tmp_path, ["Complete"], created=NEW, started=BEFORE, job="")
    assert missing.returncode == 1 and "no benchmark Job" in missing.stderr and outputs == {}
    unreachable, outputs, _ = _wait(tmp_path, ["Complete"], created=NEW, started=BEFORE, job="!")
    assert unreachable.returncode == 1 and "could not list the Jobs" in unreachable.stderr and outputs == {}


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[str]:
    """A loopback HTTP server answering 401, as an API server does to an anonymous client."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check(tmp_path: Path, endpoint: str | None) -> subprocess.CompletedProcess[str]:
    missing = "echo 'error: current stack does not have output' >&2; exit 255"
    body = f"echo '{endpoint}'" if endpoint else missing
    _executable(tmp_path / "bin" / "pulumi", f"#!/usr/bin/env bash\n{body}\n")
    env = os.environ | {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "ENDPOINT_CONNECT_TIMEOUT_S": "2"}
    return subprocess.run(["bash", str(SCRIPTS / "check-cluster-endpoint.sh"), "org/dev"], env=env,
                          capture_output=True, text=True, timeout=30)


def test_endpoint_check_passes_on_any_http_answer(tmp_path, api_server):
    """A 401 means the API is reachable (no credentials are sent)."""
    done = _check(tmp_path, api_server)
    assert done.returncode == 0, done.stderr
    assert "answers (HTTP 401)" in done.stdout


def test_endpoint_check_fails_naming_the_runner_variables(tmp_path):
    """A refused connection fails with the reason and the variables that pick a runner in the VPC."""
    done = _check(tmp_path, f"http://127.0.0.1:{_closed_port()}")
    assert done.returncode == 1
    assert "cannot reach the cluster API" in done.stderr
    assert "LLMSTACK_RUNNER_LABELS" in done.stderr and "LLMSTACK_CODEBUILD_PROJECT" in done.stderr


def test_endpoint_check_has_nothing_to_check_before_the_first_deploy(tmp_path):
    """No clusterEndpoint output yet: the check passes (pulumi creates the cluster first)."""
    done = _check(tmp_path, None)
    assert done.returncode == 0 and "nothing to check" in done.stdout


RUNS_ON = ("${{ vars.LLMSTACK_CODEBUILD_PROJECT && format('codebuild-{0}-{1}-{2}', "
           "vars.LLMSTACK_CODEBUILD_PROJECT, github.run_id, github.run_attempt) || "
           "fromJSON(vars.LLMSTACK_RUNNER_LABELS || '[\"ubuntu-latest\"]') }}")


@pytest.mark.parametrize(("workflow", "command"), [("preview.yml", "pulumi preview"),
                                                    ("deploy-stack.yml", "pulumi up")])
def test_cloud_workflows_pick_their_runner_and_check_the_endpoint_first(workflow, command):
    """Both cloud workflows run where the repository variables say, and check the endpoint in a
    step before the one that talks to the cluster."""
    (job,) = yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"].values()
    assert job["runs-on"] == RUNS_ON
    scripts = [step.get("run", "") for step in job["steps"]]
    check = next(i for i, s in enumerate(scripts) if "check-cluster-endpoint.sh" in s)
    assert check < next(i for i, s in enumerate(scripts) if command in s)


def test_deploy_gates_only_on_this_deploys_benchmark():
    """The summary fetch and the gate run only when the wait says gate=run; the logs are kept
    whatever the outcome."""
    (job,) = yaml.safe_load((WORKFLOWS / "deploy-stack.yml").read_text())["jobs"].values()
    steps = {step["name"]: step for step in job["steps"] if "name" in step}
    assert "wait-benchmark-job.sh" in steps[next(n for n in steps if n.startswith("Wait for"))]["run"]
    gated = [s for s in steps.values()
             if "bench-gate" in s.get("run", "") or "benchmarkResults" in s.get("run", "")]
    assert len(gated) == 2 and all(s["if"] == "steps.bench.outputs.gate == 'run'" for s in gated)
    assert steps["The benchmark's logs"]["if"].startswith("always()")
