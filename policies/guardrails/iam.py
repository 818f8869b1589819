"""No IAM policy of ours allows every action on every resource. AWS's managed policies (attached
by ARN) are theirs to scope and are not inspected."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from policies.guardrails.config import GuardrailConfig
from policies.guardrails.objects import Resource, mapping, sequence

POLICY_DOCUMENT_PROPS = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
ROLE = "aws:iam/role:Role"


def _document(value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return mapping(value)


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(sequence(value))


def wildcard_statements(document: Any) -> list[int]:
    """Indexes of `Allow` statements granting `*` actions on `*` resources."""
    statements = _document(document).get("Statement")
    statements = [statements] if isinstance(statements, Mapping) else list(sequence(statements))
    return [
        i
        for i, s in enumerate(map(mapping, statements))
        if s.get("Effect") == "Allow"
        and "*" in _as_list(s.get("Action"))
        and "*" in _as_list(s.get("Resource"))
    ]


def _documents(res: Resource) -> Iterator[tuple[str, Any]]:
    prop = POLICY_DOCUMENT_PROPS.get(res.type)
    if prop:
        yield prop, res.props.get(prop)
    if res.type == ROLE:
        for i, inline in enumerate(map(mapping, sequence(res.props.get("inlinePolicies")))):
            yield f"inlinePolicies[{i}]", inline.get("policy")


def check_iam_wildcards(res: Resource, config: GuardrailConfig) -> Iterator[str]:
    """An IAM policy document we write never allows `*` actions on `*` resources."""
    for where, document in _documents(res):
        for index in wildcard_statements(document):
            yield (
                f"{res.label} {where} Statement[{index}] allows every action on every resource; fix: list "
                f"the actions and resource ARNs it needs, or attach an AWS managed policy"
            )
