"""Collection: parametrise benchmark tests over the selected platforms."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from pytest_hetero.errors import ConfigError
from pytest_hetero.jobs import Benchmark, case_key, will_skip
from pytest_hetero.markers import MARKER, Declaration, incompatibility, read_marker
from pytest_hetero.session import BENCH_KEY, HeteroSession

__all__ = ["PARAM", "attach_benchmarks", "parametrize", "references_files", "references_files_of"]

#: The autouse fixture that carries the platform parameter of every benchmark.
PARAM = "_hetero_platform"
#: A benchmark's references live beside its test file.
_REFERENCES = "references.yaml"


def _declaration(node: pytest.Item | pytest.Function, marker: pytest.Mark) -> Declaration:
    try:
        return read_marker(marker, node.nodeid.split("[", 1)[0])  # the test, not one of its cases
    except ConfigError as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)  # outside the except: no chained traceback


def parametrize(metafunc: pytest.Metafunc, session: HeteroSession) -> None:
    """One case per selected platform; incompatible ones skipped with the reason."""
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    decl = _declaration(metafunc.definition, marker)
    params = []
    for platform in session.platforms:
        reason = incompatibility(decl, platform)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(platform.name, id=platform.name, marks=marks))
    metafunc.parametrize(PARAM, params, indirect=True)


def attach_benchmarks(items: list[pytest.Item], session: HeteroSession) -> None:
    """Stash each parametrised item's :class:`Benchmark` for the run stages."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or PARAM not in callspec.params:
            continue
        marker = item.get_closest_marker(MARKER)
        assert marker is not None and isinstance(item, pytest.Function)
        platform = session.catalogue.get(callspec.params[PARAM])
        item.stash[BENCH_KEY] = Benchmark(
            declaration=_declaration(item, marker),
            platform=platform,
            test_key=case_key(item, platform.name),
            references_path=item.path.parent / _REFERENCES,
        )


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
