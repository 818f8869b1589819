"""The difference between two renders of a stack (what `llm-stack render` writes), as Markdown
a reviewer reads in a pull-request comment: Kubernetes objects added, removed and changed (a
unified diff of their YAML), then every other resource of `resources.json` by URN.

Pure: it takes the files' text and returns text. Secret payloads are redacted again here, so a
render made by an older commit (or by hand) cannot leak one into a comment."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from infra.mocks import REDACTED

K8S_PREFIX = "kubernetes/"
SECRET_FIELDS = ("data", "stringData")


@dataclass(frozen=True, kw_only=True)
class Change:
    """One object or resource that differs."""

    name: str
    """File name (`kubernetes/<ns>.<kind>.<name>.yaml`) or resource URN."""
    status: str
    """`added`, `removed` or `changed`."""
    diff: str
    """Unified diff (base -> head)."""


@dataclass(frozen=True, kw_only=True)
class StackDiff:
    """What changes in one stack between two renders."""

    stack: str
    objects: list[Change] = field(default_factory=list)
    """Kubernetes objects."""
    resources: list[Change] = field(default_factory=list)
    """Other resources (cloud resources, Helm releases, components, providers)."""

    @property
    def empty(self) -> bool:
        return not self.objects and not self.resources


def redact_object(text: str) -> str:
    """A Kubernetes YAML document with every Secret's data values replaced by the redaction mark."""
    obj = yaml.safe_load(text)
    if not isinstance(obj, dict) or obj.get("kind") != "Secret":
        return text
    for key in SECRET_FIELDS:
        if isinstance(obj.get(key), dict):
            obj[key] = {k: REDACTED for k in obj[key]}
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, width=120)


def _unified(base: str, head: str, name: str) -> str:
    lines = difflib.unified_diff(
        base.splitlines(keepends=True),
        head.splitlines(keepends=True),
        fromfile=f"base/{name}",
        tofile=f"head/{name}",
        n=3,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _status(base: str | None, head: str | None) -> str:
    return "added" if base is None else "removed" if head is None else "changed"


def diff_texts(base: Mapping[str, str], head: Mapping[str, str]) -> list[Change]:
    """Every name whose text differs between two maps of name -> text, sorted by name."""
    changes = []
    for name in sorted(set(base) | set(head)):
        old, new = base.get(name), head.get(name)
        if old != new:
            changes.append(
                Change(name=name, status=_status(old, new), diff=_unified(old or "", new or "", name))
            )
    return changes


def _resource_texts(records_json: str | None) -> dict[str, str]:
    """URN -> the resource's JSON, for every resource that is not a Kubernetes object file."""
    from infra.render import NOT_MANIFESTS

    out = {}
    for rec in json.loads(records_json) if records_json else []:
        typ: str = rec.get("type", "")
        if typ.startswith("kubernetes:") and not typ.startswith(NOT_MANIFESTS) and rec.get("custom"):
            continue  # shown as a Kubernetes object
        body = {k: rec.get(k) for k in ("type", "name", "parent", "inputs")}
        out[rec.get("urn", "")] = json.dumps(body, indent=2, sort_keys=True) + "\n"
    return out


def diff_stack(stack: str, base: Mapping[str, str], head: Mapping[str, str]) -> StackDiff:
    """The difference of two renders given as relative path -> text (`kubernetes/*.yaml`,
    `resources.json`)."""

    def objects(files: Mapping[str, str]) -> dict[str, str]:
        return {k: redact_object(v) for k, v in files.items() if k.startswith(K8S_PREFIX)}

    return StackDiff(
        stack=stack,
        objects=diff_texts(objects(base), objects(head)),
        resources=diff_texts(
            _resource_texts(base.get("resources.json")), _resource_texts(head.get("resources.json"))
        ),
    )


def _counts(changes: list[Change]) -> str:
    parts = [f"{sum(c.status == s for c in changes)} {s}" for s in ("changed", "added", "removed")]
    return ", ".join(parts)


def _section(title: str, changes: list[Change]) -> list[str]:
    lines = [f"#### {title}: {_counts(changes)}", ""]
    for change in changes:
        lines += [
            f"<details><summary><code>{change.name}</code> ({change.status})</summary>",
            "",
            "```diff",
            change.diff.rstrip("\n"),
            "```",
            "",
            "</details>",
            "",
        ]
    return lines


def format_markdown(base: str, head: str, diffs: list[StackDiff]) -> str:
    """The whole report: a summary line per stack, then each stack's changes."""
    lines = [f"### `llm-stack diff {base} {head}`", ""]
    for d in diffs:
        summary = (
            "no change"
            if d.empty
            else (f"Kubernetes objects {_counts(d.objects)}; other resources {_counts(d.resources)}")
        )
        lines.append(f"- **{d.stack}**: {summary}")
    lines.append("")
    for d in (d for d in diffs if not d.empty):
        lines += [f"### {d.stack}", ""]
        lines += _section("Kubernetes objects", d.objects) if d.objects else []
        lines += _section("Other resources (resources.json)", d.resources) if d.resources else []
    return "\n".join(lines).rstrip("\n") + "\n"
