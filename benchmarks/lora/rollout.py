"""`python -m benchmarks.lora.rollout [--quick]`: a weighted LoRA rollout 90/10 -> 0/100 under
load, made as `pulumi up` makes it, and the answers that were not 2xx (target: 0).

On loopback: emulated engines (`emulator.runner.EmulatorProcess`), two serving the adapter
version `sql--v1` and two `sql--v2`, each under that name (the emulator here serves one model
name per engine; vLLM would list both versions on every engine, with the base model as
`parent`); two router processes (`python -m router`) whose settings rewrite the stable name
`sql` 90/10 over the versions (`RouterSettings.rollouts`). Users stream multi-round chats
(`x-user-id`, one conversation each) to the routers in turn, as the router Service spreads
them. The rollout: two routers start with the 0/100 settings, the client's target list
switches to them once they answer /health (the Service's endpoints change), the old ones get
SIGTERM after a pre-stop pause and drain their open streams. Both versions stay loaded
throughout (the first step of retiring v1; the second, removing it, is an engine rollout).

Prints `ROLLOUT requests N non_2xx K v2_share_before B v2_share_after A in_flight_at_sigterm F
router_exits E` (the shares from the routers' `llmstack_router_requests_total{model=...}`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.chaos.cluster import metric_sum
from contracts import HEADER_USER_ID, PATH_CHAT, PATH_HEALTH, PATH_METRICS, ROUTER_IN_FLIGHT, ROUTER_REQUESTS
from emulator.runner import EmulatorProcess
from local.autoscale.loop import wait_until
from local.procs import Processes, free_ports, processes

BASE = "base"
VERSIONS = ("sql--v1", "sql--v2")
BEFORE = {"sql--v1": 90, "sql--v2": 10}
AFTER = {"sql--v1": 0, "sql--v2": 100}
DONE = b"data: [DONE]"


@dataclass(frozen=True)
class Plan:
    """How long and how hard."""

    users: int = 48
    soak_s: float = 10.0  # load before the rollout, and again after it
    answer_tokens: int = 64  # about 0.8 s of decode per answer: streams are open at SIGTERM
    time_scale: float = 1.0  # the emulator's durations, scaled
    drain_s: float = 20.0
    prestop_s: float = 0.2  # shorter than a stream, so the old routers drain open ones

    @classmethod
    def quick(cls) -> Plan:
        return cls(users=32, soak_s=3.0)  # users 26 and 27 are on v2 at 90/10


@dataclass
class Tally:
    """The answers: how many, how many not a whole 200 stream, and why (the first few)."""

    requests: int = 0
    non_2xx: int = 0
    errors: list[str] = field(default_factory=list)

    def record(self, ok: bool, why: str) -> None:
        self.requests += 1
        if not ok:
            self.non_2xx += 1
            self.errors.append(why)


def _settings(engines: Sequence[str], rollout: dict[str, int], plan: Plan) -> dict[str, Any]:
    return {"engines": [{"url": u} for u in engines], "models": [BASE],
            "adapters": dict.fromkeys(VERSIONS, BASE), "rollouts": {"sql": rollout},
            "policy": {"kind": "least_load", "params": {}}, "host": "127.0.0.1", "drain_s": plan.drain_s,
            "log_level": "warning",
            "health": {"interval_s": 0.2, "timeout_s": 1.0, "unhealthy_after": 3, "healthy_after": 1,
                       "metrics_interval_s": 0.5}}


class Routers:
    """Router processes by settings file."""

    def __init__(self, procs: Processes, workdir: Path) -> None:
        self.procs, self.workdir = procs, workdir
        self._names = itertools.count()

    async def start(self, session: aiohttp.ClientSession, settings: dict[str, Any]) -> tuple[str, Any]:
        name = f"router-{next(self._names)}"
        config = self.workdir / f"{name}.json"
        config.write_text(json.dumps(settings))
        (port,) = free_ports(1)
        argv = [sys.executable, "-m", "router", "--config", str(config), "--port", str(port)]
        proc = self.procs.start(name, argv)
        url = f"http://127.0.0.1:{port}"

        async def ready() -> bool:
            async with session.get(url + PATH_HEALTH) as resp:
                body = await resp.json()
            return resp.status == 200 and body.get("healthy_engines") == len(settings["engines"])
        await wait_until(ready, 30, name)
        return url, proc

    async def stop(self, proc: Any, grace_s: float) -> int | None:
        await asyncio.to_thread(self.procs.stop, proc, grace_s)
        return proc.returncode


async def _metrics(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url + PATH_METRICS) as resp:
        return await resp.text()


def _by_version(texts: Sequence[str]) -> dict[str, float]:
    return {v: sum(metric_sum(t, ROUTER_REQUESTS, f'model="{v}"') or 0.0 for t in texts) for v in VERSIONS}


async def _user(session: aiohttp.ClientSession, targets: list[str], user: int, stop: asyncio.Event,
                tally: Tally, plan: Plan) -> None:
    """One conversation, round after round, to the router the target list gives next."""
    history: list[dict[str, str]] = [{"role": "user", "content": f"user {user}: question 0"}]
    turn = user
    while not stop.is_set():
        turn += 1
        url = targets[turn % len(targets)]
        body = {"model": "sql", "messages": history, "stream": True, "max_tokens": plan.answer_tokens}
        try:
            async with session.post(url + PATH_CHAT, json=body, headers={HEADER_USER_ID: f"u{user}"}) as resp:
                data = await resp.read()
                ok = resp.status == 200 and data.rstrip().endswith(DONE) and b'"model":"sql"' in data
                tally.record(ok, f"{resp.status} {data[-200:]!r}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            tally.record(False, f"{type(exc).__name__}: {exc}")
        history = [*history, {"role": "assistant", "content": "answer"},
                   {"role": "user", "content": f"question {turn}"}][-9:]
        history[0] = {"role": "user", "content": f"user {user}: question 0"}


async def _rollout(procs: Processes, workdir: Path, plan: Plan) -> dict[str, Any]:
    args = ["--time-scale", str(plan.time_scale), "--default-max-tokens", str(plan.answer_tokens)]
    with EmulatorProcess(2, base_port=0, args=[*args, "--model", VERSIONS[0]]) as v1, \
            EmulatorProcess(2, base_port=0, args=[*args, "--model", VERSIONS[1]]) as v2:
        engines = [*v1.urls, *v2.urls]
        routers = Routers(procs, workdir)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            old = [await routers.start(session, _settings(engines, BEFORE, plan)) for _ in range(2)]
            targets = [url for url, _ in old]
            tally, stop = Tally(), asyncio.Event()
            users = [asyncio.ensure_future(_user(session, targets, u, stop, tally, plan))
                     for u in range(plan.users)]
            await asyncio.sleep(plan.soak_s)
            new = [await routers.start(session, _settings(engines, AFTER, plan)) for _ in range(2)]
            targets[:] = [url for url, _ in new]  # the Service's endpoints: new requests go to new routers
            await asyncio.sleep(plan.prestop_s)  # the old pods' preStop: requests already routed arrive
            before = [await _metrics(session, url) for url, _ in old]
            in_flight = sum(metric_sum(t, ROUTER_IN_FLIGHT) or 0.0 for t in before)
            exits = await asyncio.gather(*(routers.stop(proc, plan.drain_s + 5) for _, proc in old))
            mark = _by_version([await _metrics(session, url) for url, _ in new])
            await asyncio.sleep(plan.soak_s)
            stop.set()
            await asyncio.gather(*users)
            after = _by_version([await _metrics(session, url) for url, _ in new])
    old_split, new_split = _by_version(before), {v: after[v] - mark[v] for v in VERSIONS}
    return {"requests": tally.requests, "non_2xx": tally.non_2xx,
            "v2_share_before": _share(old_split), "v2_share_after": _share(new_split),
            "in_flight_at_sigterm": int(in_flight), "router_exits": list(exits),
            "failures": tally.errors[:5]}


def _share(split: dict[str, float]) -> float:
    total = sum(split.values())
    return round(split[VERSIONS[1]] / total, 3) if total else 0.0


def run(quick: bool) -> dict[str, Any]:
    """One rollout under load; the figures as a dict (`non_2xx` is the target, 0)."""
    plan = Plan.quick() if quick else Plan()
    work = Path(tempfile.mkdtemp(prefix="llm-stack-lora-rollout-"))
    started = time.monotonic()
    with processes(work / "logs") as procs:
        result = asyncio.run(_rollout(procs, work, plan))
    return {**result, "wall_s": round(time.monotonic() - started, 1), "logs": str(work / "logs")}


def line(result: dict[str, Any]) -> str:
    """The benchmark's printed line."""
    return (f"ROLLOUT 90/10->0/100 requests {result['requests']} non_2xx {result['non_2xx']} "
            f"v2_share_before {result['v2_share_before']} v2_share_after {result['v2_share_after']} "
            f"in_flight_at_sigterm {result['in_flight_at_sigterm']} router_exits "
            f"{','.join(str(e) for e in result['router_exits'])}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lora.rollout",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a short run (about 20 s)")
    args = p.parse_args(argv)
    result = run(args.quick)
    print(line(result))
    for failure in result["failures"]:
        print("  not 2xx:", failure, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
