"""Collection: parametrise benchmark tests over the selected platforms."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType

import pytest

from pytest_hetero.errors import ConfigError
from pytest_hetero.jobs import Benchmark, case_key, will_skip
from pytest_hetero.markers import MARKER, Declaration, incompatibility, read_marks
from pytest_hetero.session import BENCH_KEY, HeteroSession

__all__ = ["PARAM", "attach_benchmarks", "parametrize", "references_files", "references_files_of"]

#: The autouse fixture that carries the platform parameter of every benchmark.
PARAM = "_hetero_platform"
#: A benchmark's references live beside its test file.
_REFERENCES = "references.yaml"


def _declaration(node: pytest.Item | pytest.Function, marks: list[pytest.Mark]) -> Declaration:
    try:
        return read_marks(marks, node.nodeid.split("[", 1)[0])  # the test, not one of its cases
    except ConfigError as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)  # outside the except: no chained traceback


def _case_marks(definition: pytest.Function) -> bool:
    """Whether some ``pytest.param(..., marks=pytest.mark.hetero(...))`` of the test declares a benchmark."""
    for mark in definition.iter_markers("parametrize"):
        values = mark.args[1] if len(mark.args) > 1 else mark.kwargs.get("argvalues", ())
        for value in values:
            if any(m.name == MARKER for m in getattr(value, "marks", ())):
                return True
    return False


def parametrize(metafunc: pytest.Metafunc, session: HeteroSession) -> None:
    """One case per selected platform; incompatible ones skipped with the reason."""
    marks = list(metafunc.definition.iter_markers(MARKER))
    if not marks and not _case_marks(metafunc.definition):
        return
    # With marks on some cases only, compatibility is decided per case (attach_benchmarks).
    decl = _declaration(metafunc.definition, marks) if marks else None
    params = []
    for platform in session.platforms:
        reason = incompatibility(decl, platform) if decl else None
        params.append(
            pytest.param(platform.name, id=platform.name, marks=[pytest.mark.skip(reason=reason)] if reason else [])
        )
    metafunc.parametrize(PARAM, params, indirect=True)


def attach_benchmarks(items: list[pytest.Item], session: HeteroSession) -> None:
    """Stash each parametrised item's :class:`Benchmark` for the run stages."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or PARAM not in callspec.params:
            continue
        assert isinstance(item, pytest.Function)
        platform = session.catalogue.get(callspec.params[PARAM])
        marks = list(item.iter_markers(MARKER))
        if not marks:
            continue  # a case of a sweep that declares no benchmark: a plain test
        decl = _with_params(item, _declaration(item, marks), callspec.params)
        reason = incompatibility(decl, platform)
        if reason and item.get_closest_marker("skip") is None:
            item.add_marker(pytest.mark.skip(reason=reason))
        item.stash[BENCH_KEY] = Benchmark(
            declaration=decl,
            platform=platform,
            test_key=case_key(item, platform.name),
            references_path=item.path.parent / _REFERENCES,
        )


def _with_params(item: pytest.Function, decl: Declaration, values: dict[str, object]) -> Declaration:
    """The declaration with the sweep's ``params=`` copied into the workload config."""
    if not decl.params:
        return decl
    missing = [name for name in decl.params if name not in values]
    if missing:
        where = item.nodeid.split("[", 1)[0]
        pytest.fail(f"{where}: @pytest.mark.hetero params={missing} are not parametrize arguments", pytrace=False)
    config = {**decl.workload.config, **{name: values[name] for name in decl.params}}
    return dataclasses.replace(decl, workload=dataclasses.replace(decl.workload, config=MappingProxyType(config)))


def references_files(items: Iterable[pytest.Item]) -> list[Path]:
    """The references files the items will use: benchmarks that run, and pytest-benchmark tests."""
    found = []
    for item in items:
        bench = item.stash.get(BENCH_KEY, None)
        if bench is not None and not will_skip(item):
            found.append(bench.references_path)
        elif bench is None and "benchmark" in getattr(item, "fixturenames", ()):
            found.append(item.path.parent / _REFERENCES)
    return list(dict.fromkeys(found))


def references_files_of(rootpath: Path, nodeids: Iterable[str]) -> list[Path]:
    """The references files beside the test files of ``nodeids`` (the xdist controller sees ids, not items)."""
    files = dict.fromkeys((rootpath / nodeid.split("::", 1)[0]).parent / _REFERENCES for nodeid in nodeids)
    return [path for path in files if path.exists()]
