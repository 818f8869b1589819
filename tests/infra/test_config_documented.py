"""Every stack-config key is documented: each config dataclass field carries a docstring."""

from __future__ import annotations

import ast
import dataclasses
import inspect

import pytest

from infra.config import adapter_sources, cluster, models, pools, services, stack

MODULES = (adapter_sources, cluster, models, pools, services, stack)


def _documented_fields(cls: type) -> set[str]:
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    return {
        node.target.id for node, after in zip(body, body[1:], strict=False)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and _is_docstring(after)
    }


def _is_docstring(node: ast.stmt) -> bool:
    value = node.value if isinstance(node, ast.Expr) else None
    return isinstance(value, ast.Constant) and isinstance(value.value, str)


CLASSES = [cls for module in MODULES for _, cls in inspect.getmembers(module, inspect.isclass)
           if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_field_has_a_docstring(cls):
    """The class and each of its fields has a docstring (the config reference lives in the code)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    assert cls.__doc__ and fields
    assert fields - _documented_fields(cls) == set()


def test_all_config_sections_are_checked():
    """The documentation check covers every config section class."""
    expected = {"ClusterConfig", "EksConfig", "NodePoolConfig", "ModelConfig", "LmcacheConfig",
                "RouterConfig", "BenchmarkConfig", "StackConfig"}
    assert {c.__name__ for c in CLASSES} >= expected
