"""Every public input and output of the monitoring component carries a docstring."""

from __future__ import annotations

import ast
import inspect

import pytest

from stack_components.monitoring import Monitoring, MonitoringArgs, PoolLimit, Receiver, ReplicaBounds
from stack_components.monitoring.dashboards.spec import DashboardSpec, PanelSpec, Target
from stack_components.monitoring.helm import ChartPin, PrometheusSettings
from stack_components.monitoring.promql import NamedQuery
from stack_components.monitoring.rules import AlertRule, RuleObjectives

PUBLIC = [Monitoring, MonitoringArgs, PoolLimit, Receiver, ReplicaBounds, DashboardSpec, PanelSpec, Target,
          ChartPin, PrometheusSettings, NamedQuery, AlertRule, RuleObjectives]


def _fields(cls: type) -> tuple[list[str], list[str]]:
    body = ast.parse(inspect.getsource(cls)).body[0].body
    names, missing = [], []
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
            after = body[i + 1] if i + 1 < len(body) else None
            if not (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)):
                missing.append(node.target.id)
    return names, missing


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_fields_and_outputs_are_documented(cls: type) -> None:
    """The class and each annotated field/output is followed by its docstring."""
    names, missing = _fields(cls)
    assert cls.__doc__ and names and not missing, f"{cls.__name__}: {missing}"
