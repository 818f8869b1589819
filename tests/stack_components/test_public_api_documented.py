"""Every public input (Args field) and output (component attribute) carries a docstring."""

from __future__ import annotations

import ast
import inspect

import stack_components as sc

DOCUMENTED = [
    sc.SecretRef,
    sc.Toleration,
    sc.Placement,
    sc.ModelCacheVolume,
    sc.ModelSpec,
    sc.GpuSpec,
    sc.LMCacheArgs,
    sc.VllmEngineArgs,
    sc.EngineCapacity,
    sc.RouterArgs,
    sc.LMCacheServerArgs,
    sc.BenchmarkJobArgs,
    sc.LLMStackArgs,
    sc.StackContext,
    sc.VllmEngine,
    sc.Router,
    sc.LMCacheServer,
    sc.BenchmarkJob,
    sc.LLMStack,
]


def _undocumented(cls: type) -> tuple[int, list[str]]:
    body = ast.parse(inspect.getsource(cls)).body[0].body
    names = [
        (i, s.target.id)
        for i, s in enumerate(body)
        if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
    ]
    missing = [
        name
        for i, name in names
        if not (
            i + 1 < len(body)
            and isinstance(body[i + 1], ast.Expr)
            and isinstance(body[i + 1].value, ast.Constant)
            and isinstance(body[i + 1].value.value, str)
        )
    ]
    return len(names), missing


def test_every_field_and_output_has_a_docstring() -> None:
    """Each annotated attribute of the public classes is followed by its docstring."""
    counted = 0
    for cls in DOCUMENTED:
        count, missing = _undocumented(cls)
        assert cls.__doc__ and not missing, f"{cls.__name__}: {missing}"
        counted += count
    assert counted > 120


def test_public_names_are_exported() -> None:
    """`__all__` lists only names the package defines."""
    assert all(hasattr(sc, name) for name in sc.__all__)
    assert {"VllmEngine", "Router", "LMCacheServer", "BenchmarkJob", "LLMStack"} <= set(sc.__all__)
