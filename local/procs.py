"""Child processes for the benchmark: start in their own process group, wait for readiness
by polling with a deadline, read CPU time and RSS of a whole process tree from /proc, and
stop everything (SIGTERM, then SIGKILL) even on Ctrl-C or failure."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class BenchError(RuntimeError):
    """A benchmark step failed (a process did not start, a run errored)."""


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (bound, read, released)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            out.extend(int(x) for x in task.read_text().split())
    return out


def tree(pid: int) -> list[int]:
    """`pid` and all its live descendants."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(_children(p))
    return pids


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its live descendants, plus what reaped children used."""
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and its live descendants."""
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * _PAGE
    return total


def _program(proc: subprocess.Popen) -> str:
    """The program a child runs (its argv's first word)."""
    args = proc.args
    return str(args[0] if isinstance(args, list | tuple) else args)


def wait_http(url: str, deadline_s: float, proc: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers 200, the process dies, or the deadline passes."""
    end = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{_program(proc)} exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise BenchError(f"{url} not ready after {deadline_s:.0f} s ({last})")


class Processes:
    """Owns the benchmark's child processes; `close` stops all of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "ab") as log:  # the child keeps its own copy
            proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, grace_s: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace_s`."""
        if proc in self.procs:
            self.procs.remove(proc)
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(grace_s)

    def close(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)


@contextlib.contextmanager
def processes(log_dir: Path) -> Iterator[Processes]:
    """A `Processes` whose children are stopped on exit, including on KeyboardInterrupt."""
    log_dir.mkdir(parents=True, exist_ok=True)
    owner = Processes(log_dir)
    try:
        yield owner
    finally:
        owner.close()
