"""A recording Pulumi mock runtime: runs a program with no engine, no CLI, no cloud, and
records every resource (type, name, parent, inputs with secrets redacted).

Used by `llm-stack render` and by the test suite's autouse fixture. Pure bookkeeping: the
only outputs it invents are ids and the few provider attributes a program reads back
(an EKS cluster's endpoint and CA, a role's ARN), so checks can chain on real outputs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.settings import ROOT

_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SIG_SECRET = "1b47061264138c4ac30d75fd1eb44270"
_SIG_RESOURCE = "5cf8f73096256a8f31e491e813e4eb8e"
REDACTED = "[secret]"


@dataclass
class RecordedResource:
    """One registered resource as the engine would have seen it."""

    type: str
    name: str
    urn: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]  # secrets replaced by REDACTED
    state: dict[str, Any] = field(default_factory=dict)  # inputs + invented outputs (unredacted)
    depends_on: tuple[str, ...] = ()  # URNs it waits for: `depends_on` (components expanded) + input refs


def _redact(value: Any) -> Any:
    """Plain JSON of a serialized property: secrets redacted, resource refs as their URN."""
    if isinstance(value, dict):
        sig = value.get(_SIG_KEY)
        if sig == _SIG_SECRET:
            return REDACTED
        if sig == _SIG_RESOURCE:
            return value.get("urn")
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the mock runtime hands numbers back as floats
    return value


def _invented_outputs(typ: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs a provider computes that programs read back."""
    arn = f"arn:aws:mock:us-east-1:123456789012:{typ.split(':')[-1].lower()}/{name}"
    outputs: dict[str, Any] = {"arn": arn}
    if typ == "aws:eks/cluster:Cluster":
        outputs |= {
            "endpoint": f"https://{name}.eks.mock",
            "certificateAuthority": {"data": "bW9jay1jYQ=="},
            "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.mock/id/{name}"}]}],
            "version": None,
        }
    if typ == "aws:eks/nodeGroup:NodeGroup":
        outputs["resources"] = [{"autoscalingGroups": [{"name": f"eks-{name}-asg"}]}]
    if typ == "aws:ec2/launchTemplate:LaunchTemplate":
        outputs["latestVersion"] = 1
    if typ == "kubernetes:core/v1:Service" and (inputs.get("spec") or {}).get("type") == "LoadBalancer":
        # the address the AWS Load Balancer Controller writes into the Service's status
        host = f"k8s-{name}-0123456789.elb.us-east-1.amazonaws.com"
        outputs["status"] = {"loadBalancer": {"ingress": [{"hostname": host}]}}
    if typ == "aws:ecr/repository:Repository":
        url = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}"
        outputs |= {"registryId": "123456789012", "repositoryUrl": url}
    return outputs


class RecordingMocks(Mocks):
    """Records every resource; answers invokes from a table (or with empty results)."""

    def __init__(self, invokes: Mapping[str, Callable[[dict], Any]] | None = None) -> None:
        self.resources: list[RecordedResource] = []
        self.calls: list[tuple[str, dict]] = []
        self._invokes = dict(invokes or {})
        self._lock = threading.Lock()

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict]:
        named = args.inputs.get("name") if args.typ == "aws:ecr/repository:Repository" else None
        state = dict(args.inputs) | {
            k: v for k, v in _invented_outputs(args.typ, named or args.name, args.inputs).items()
            if k not in args.inputs
        }
        if args.typ == "docker-build:index:Image":  # the pushed digest reference docker-build returns
            state["ref"] = f"{(args.inputs.get('tags') or [args.name])[0]}@sha256:{'0' * 64}"
        state = {k: v for k, v in state.items() if v is not None}
        return f"{args.name}-id", state

    def answer(self, token: str, handler: Callable[[dict], Any]) -> None:
        """Answer invokes of `token` with `handler(args)`: a result dict, or (result, failures)
        with failures as (property, reason) pairs, which the SDK raises as a failed invoke."""
        self._invokes[token] = handler

    def call(self, args: MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        """The invoke's result from the table, else an empty result; no check failures unless
        the handler returns some."""
        self.calls.append((args.token, dict(args.args)))
        handler = self._invokes.get(args.token)
        answer = handler(dict(args.args)) if handler else {}
        return answer if isinstance(answer, tuple) else (answer, [])

    def record(self, entry: RecordedResource) -> None:
        with self._lock:
            self.resources.append(entry)

    def of_type(self, typ: str) -> list[RecordedResource]:
        """Recorded resources of one Pulumi type token, in registration order."""
        return [r for r in self.resources if r.type == typ]


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, plus a record of parent and redacted inputs per resource."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = _redact(json_format.MessageToDict(request.object))
            state = self.resources[response.urn].state if response.urn in self.resources else {}
            self.recording.record(RecordedResource(
                type=request.type, name=request.name, urn=response.urn,
                parent=request.parent or None, custom=bool(request.custom),
                inputs=inputs, state=dict(state), depends_on=tuple(sorted(request.dependencies)),
            ))
        return response


def install(mocks: RecordingMocks, project: str, stack: str) -> None:
    """Point the Pulumi SDK at the recording mocks (preview=False, so outputs are known).

    The SDK keeps its root Stack resource across `set_mocks` calls, with futures bound to the
    event loop it was made on; drop it so each run gets a root on its own, current loop."""
    ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, monitor=RecordingMonitor(mocks)
    )


class _LoopingExecutor(ThreadPoolExecutor):
    """An event loop's default executor whose threads each get an event loop up front, closed
    once the threads have stopped. The SDK's mock monitor runs on these threads and otherwise
    makes a loop in each that nothing closes: a socket left open per thread."""

    def __init__(self) -> None:
        self._thread_loops: list[asyncio.AbstractEventLoop] = []
        self._loops_lock = threading.Lock()
        super().__init__(thread_name_prefix="pulumi-mocks", initializer=self._adopt_loop)

    def _adopt_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        with self._loops_lock:
            self._thread_loops.append(loop)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:  # the threads are gone: nothing runs on their loops any more
            with self._loops_lock:
                loops, self._thread_loops = self._thread_loops, []
            for loop in loops:
                loop.close()


def open_loop() -> asyncio.AbstractEventLoop:
    """A fresh event loop for a program under the mocks, made current (`close_loop` ends it)."""
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_LoopingExecutor())
    asyncio.set_event_loop(loop)
    return loop


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Stop `open_loop`'s executor threads, close their loops, and close `loop`."""
    loop.run_until_complete(loop.shutdown_default_executor())
    asyncio.set_event_loop(None)
    loop.close()


def run_program(
    program: Callable[[], None], *, project: str, stack: str, mocks: RecordingMocks | None = None
) -> RecordingMocks:
    """Run `program` under the recording mocks outside pytest and wait for every RPC."""
    mocks = mocks or RecordingMocks()
    loop = open_loop()
    try:
        install(mocks, project, stack)
        program()
        loop.run_until_complete(pulumi.runtime.stack.wait_for_rpcs())
    finally:
        close_loop(loop)
    return mocks
