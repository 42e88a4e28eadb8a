"""Collection: parametrise benchmark tests over the selected platforms."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType

import pytest

from pytest_hetero.config.models import Platform
from pytest_hetero.decide.scaling import Scale, case_id, scaled_key, scaled_platform
from pytest_hetero.errors import ConfigError, HeteroError
from pytest_hetero.jobs import Benchmark, Shared, case_key, will_skip
from pytest_hetero.markers import MARKER, Declaration, check_json_config, incompatibility, read_marks
from pytest_hetero.session import BENCH_KEY, HeteroSession
from pytest_hetero.workload_check import builtin_config_problem

__all__ = [
    "PARAM",
    "attach_benchmarks",
    "marker_problems",
    "parametrize",
    "references_files",
    "references_files_of",
]

#: The autouse fixture that carries the platform parameter of every benchmark.
PARAM = "_hetero_platform"
#: A benchmark's references live beside its test file.
_REFERENCES = "references.yaml"
#: Bad ``hetero`` marks by test (node id without its case): a usage error once collection ends,
#: for the tests selected only, every one of them listed.
_PROBLEMS_KEY = pytest.StashKey[dict[str, list[str]]]()


def _note_problem(config: pytest.Config, test: str, problem: str) -> None:
    found = config.stash.setdefault(_PROBLEMS_KEY, {}).setdefault(test, [])
    if problem not in found:
        found.append(problem)


def marker_problems(config: pytest.Config, items: Iterable[pytest.Item]) -> list[str]:
    """The problems of the selected tests' ``hetero`` marks (each names its test)."""
    problems = config.stash.get(_PROBLEMS_KEY, {})
    tests = dict.fromkeys(item.nodeid.split("[", 1)[0] for item in items) if problems else {}
    return [problem for test in tests for problem in problems.get(test, ())]


def _declaration(node: pytest.Item | pytest.Function, marks: list[pytest.Mark]) -> Declaration | None:
    """The test's declaration, or None with its problem noted (reported once collection ends)."""
    test = node.nodeid.split("[", 1)[0]  # the test, not one of its cases
    try:
        return read_marks(marks, test)
    except ConfigError as exc:
        _note_problem(node.config, test, str(exc))
        return None


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
    if marks and decl is None:
        return  # a bad mark: reported at the end of collection if the test is selected
    params = []
    for platform in session.platforms:
        if decl is not None and decl.scale is not None:
            params += _scaled_params(decl, decl.scale, platform, session)
            continue
        reason = incompatibility(decl, platform) if decl else None
        params.append(
            pytest.param(platform.name, id=platform.name, marks=[pytest.mark.skip(reason=reason)] if reason else [])
        )
    metafunc.parametrize(PARAM, params, indirect=True)


def _scaled_params(decl: Declaration, scale: Scale, platform: Platform, session: HeteroSession) -> list[object]:
    """One case per count of a scaling sweep; the param is (platform, resource, count)."""
    params: list[object] = []
    for count in scale.counts:
        shaped = scaled_platform(platform, scale.resource, count)
        reason = incompatibility(decl, shaped) or _cannot_span(shaped, session) or _too_few_accelerators(shaped)
        params.append(
            pytest.param(
                (platform.name, scale.resource, count),
                id=scale.case_id(platform.name, count),
                marks=[pytest.mark.skip(reason=reason)] if reason else [],
            )
        )
    return params


def _too_few_accelerators(platform: Platform) -> str | None:
    """Why a node cannot give this many accelerators (more than its ``accelerator.count_per_node``), or None."""
    have, want = platform.accelerator.count_per_node, platform.resources.accelerators_per_node
    if want is None or want <= have:
        return None
    return (
        f"platform {platform.name!r}: {want} accelerators per node asked, its nodes have {have} "
        "(accelerator.count_per_node in the catalogue)"
    )


def _cannot_span(platform: Platform, session: HeteroSession) -> str | None:
    """Why a backend cannot give this many nodes (no way to start a command on each), or None."""
    if platform.resources.nodes <= 1:
        return None
    try:
        if session.backend_for(platform).launch_context().rendezvous is not None:
            return None
    except HeteroError:
        return None  # an unusable backend: its own error, when the case runs, says why

    return (
        f"platform {platform.name!r}: its {platform.backend.kind} backend cannot span {platform.resources.nodes} nodes"
    )


def _platform_of(value: object, session: HeteroSession) -> Platform:
    """The case's platform: a catalogue name, or (name, resource, count) of a scaling sweep."""
    if isinstance(value, tuple):
        name, resource, count = value
        return scaled_platform(session.catalogue.get(name), resource, count)
    return session.catalogue.get(str(value))


def attach_benchmarks(items: list[pytest.Item], session: HeteroSession) -> None:
    """Stash each parametrised item's :class:`Benchmark` for the run stages.

    Cases of one test share most of what is looked up for them (their marks, declaration, platform,
    verdict on the platform, references file): each is looked up once (10,000 cases collect in about
    the time of 10,000 plain tests).
    """
    seen = _Seen(session)
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or PARAM not in callspec.params:
            continue
        assert isinstance(item, pytest.Function)
        value = callspec.params[PARAM]
        found = seen.declaration(item)
        decl = found and _with_params(item, found, callspec.params)
        if decl is None or not seen.config_checked(item, decl):
            continue
        platform = seen.platform(value)
        reason = seen.incompatibility(decl, platform)
        if reason and item.get_closest_marker("skip") is None:
            item.add_marker(pytest.mark.skip(reason=reason))
        references = seen.references(item.path)
        item.stash[BENCH_KEY] = Benchmark(
            declaration=decl,
            platform=platform,
            test_key=_case_key(item, value, seen.file_name(item.path)),
            references_path=references,
            shared=seen.shared(decl, platform, references),
        )


class _Seen:
    """What :func:`attach_benchmarks` looked up already, by the cases that share it."""

    def __init__(self, session: HeteroSession) -> None:
        self.session = session
        # The marks of a case: its own (the function's and its parameters') and its parents', the same for
        # every case of one class or module: looked up once per parent and set of own marks.
        self._marks: dict[tuple[int, tuple[int, ...]], tuple[list[pytest.Mark], tuple[int, ...]]] = {}
        self._declarations: dict[tuple[int, str, tuple[int, ...]], Declaration | None] = {}
        self._platforms: dict[object, Platform] = {}
        self._checked: dict[int, tuple[Declaration, bool]] = {}
        self._reasons: dict[tuple[int, int], tuple[Declaration, Platform, str | None]] = {}
        self._references: dict[Path, Path] = {}
        self._names: dict[Path, str] = {}
        self._shared: dict[tuple[int, int, Path], tuple[Declaration, Platform, Shared]] = {}

    def declaration(self, item: pytest.Function) -> Declaration | None:
        """The test's declaration (None: not a benchmark, or a mark that says nothing runnable)."""
        marks_key = (id(item.parent), tuple(map(id, item.own_markers)))
        found = self._marks.get(marks_key)
        if found is None:
            marks = list(item.iter_markers(MARKER))
            found = self._marks[marks_key] = (marks, tuple(map(id, marks)))
        marks, ids = found
        if not marks:
            return None  # a case of a sweep that declares no benchmark: a plain test
        key = (id(item.parent), item.originalname, ids)
        if key not in self._declarations:
            self._declarations[key] = _declaration(item, marks)
        return self._declarations[key]

    def config_checked(self, item: pytest.Function, decl: Declaration) -> bool:
        known = self._checked.get(id(decl))
        if known is None or known[0] is not decl:  # the declaration itself is kept: its id is not reused
            known = self._checked[id(decl)] = (decl, _config_checked(item, decl))
        return known[1]

    def platform(self, value: object) -> Platform:
        found = self._platforms.get(value)
        if found is None:
            found = self._platforms[value] = _platform_of(value, self.session)
        return found

    def incompatibility(self, decl: Declaration, platform: Platform) -> str | None:
        known = self._reasons.get((id(decl), id(platform)))
        if known is None or known[0] is not decl or known[1] is not platform:
            known = self._reasons[(id(decl), id(platform))] = (decl, platform, incompatibility(decl, platform))
        return known[2]

    def shared(self, decl: Declaration, platform: Platform, references: Path) -> Shared:
        """One :class:`Shared` for the cases of one declaration on one platform (fingerprints taken once)."""
        key = (id(decl), id(platform), references)
        known = self._shared.get(key)
        if known is None or known[0] is not decl or known[1] is not platform:
            known = self._shared[key] = (decl, platform, Shared())
        return known[2]

    def file_name(self, test_file: Path) -> str:
        found = self._names.get(test_file)
        if found is None:
            found = self._names[test_file] = test_file.name
        return found

    def references(self, test_file: Path) -> Path:
        found = self._references.get(test_file)
        if found is None:
            found = self._references[test_file] = test_file.parent / _REFERENCES
        return found


def _case_key(item: pytest.Function, value: object, file_name: str) -> str:
    """The case's reference and history key; a sweep's count is part of it."""
    if isinstance(value, tuple):
        name, resource, count = value
        return scaled_key(case_key(item, case_id(name, resource, count), file_name), resource, count)
    return case_key(item, str(value), file_name)


def _config_checked(item: pytest.Function, decl: Declaration) -> bool:
    """Whether a built-in workload accepts the case's config; its problem noted when not."""
    problem = builtin_config_problem(decl.workload)
    if problem is not None:
        where = f"{item.nodeid}: @pytest.mark.hetero(workload={decl.workload.name!r}) config"
        _note_problem(item.config, item.nodeid.split("[", 1)[0], f"{where}: {problem}")
    return problem is None


def _with_params(item: pytest.Function, decl: Declaration, values: dict[str, object]) -> Declaration | None:
    """The declaration with the sweep's ``params=`` copied into the workload config (None: noted problem)."""
    if not decl.params:
        return decl
    test = item.nodeid.split("[", 1)[0]
    missing = [name for name in decl.params if name not in values]
    if missing:
        _note_problem(item.config, test, f"{test}: @pytest.mark.hetero params={missing} are not parametrize arguments")
        return None
    swept = {name: values[name] for name in decl.params}
    try:
        check_json_config(swept, item.nodeid)  # the workload reads them as JSON: no str() of an object
    except ConfigError as exc:
        _note_problem(item.config, test, str(exc))
        return None
    config = {**decl.workload.config, **swept}
    return dataclasses.replace(decl, workload=dataclasses.replace(decl.workload, config=MappingProxyType(config)))


def references_files(items: Iterable[pytest.Item]) -> list[Path]:
    """The references files the items will use: benchmarks that run, and pytest-benchmark tests."""
    found = []
    for item in items:
        bench = item.stash.get(BENCH_KEY, None)
        if bench is not None and bench.references_path in found:
            continue  # found already: whether this case runs too makes no difference
        if bench is not None and not will_skip(item):
            found.append(bench.references_path)
        elif bench is None and "benchmark" in getattr(item, "fixturenames", ()):
            found.append(item.path.parent / _REFERENCES)
    return list(dict.fromkeys(found))


def references_files_of(rootpath: Path, nodeids: Iterable[str]) -> list[Path]:
    """The references files beside the test files of ``nodeids`` (the xdist controller sees ids, not items)."""
    files = dict.fromkeys((rootpath / nodeid.split("::", 1)[0]).parent / _REFERENCES for nodeid in nodeids)
    return [path for path in files if path.exists()]
