"""pytest-hetero's hooks. State lives in :class:`HeteroSession` under ``config.stash``."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_hetero import hookspec
from pytest_hetero.backends.base import Backend
from pytest_hetero.backends.registry import get_backend_class
from pytest_hetero.check.references import VerdictKind
from pytest_hetero.collection import (
    attach_benchmarks,
    marker_problems,
    parametrize,
    references_files,
    references_files_of,
)
from pytest_hetero.config.models import Platform
from pytest_hetero.dry_run import render_dry_run
from pytest_hetero.errors import HeteroError
from pytest_hetero.fixtures import _hetero_platform, hetero_platform, hetero_result, hetero_run
from pytest_hetero.interrupts import Interrupts
from pytest_hetero.lifecycle import ReportCollector, build_session, record_for_report
from pytest_hetero.markers import MARKER, MARKER_HELP
from pytest_hetero.options import add_options
from pytest_hetero.pybench import fixture_stats
from pytest_hetero.reporting.junit import junit_properties, junit_write_failed
from pytest_hetero.results import BenchmarkResult
from pytest_hetero.session import BENCH_KEY, RESULT_KEY, SESSION_KEY, HeteroSession
from pytest_hetero.stages import benchmark_fixture_result

__all__ = ["_hetero_platform", "hetero_platform", "hetero_result", "hetero_run"]

#: --hetero-costs: energy and cost per result (pytest_hetero.decide).
pytest_plugins = ["pytest_hetero.decide.plugin"]

_INTERRUPTS = pytest.StashKey[Interrupts]()
_COLLECTOR_NAME = "hetero-report-collector"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: {MARKER_HELP}")
    config.hook.pytest_hetero_register(config=config)
    try:
        hetero = build_session(config)
    except HeteroError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SESSION_KEY] = hetero
    # SIGTERM unwinds like Ctrl-C; a second signal only hurries the clean-up (see interrupts.py).
    interrupts = config.stash[_INTERRUPTS] = Interrupts(lambda: hetero.used_backends)
    interrupts.install()
    config.pluginmanager.register(ReportCollector(hetero, interrupts), _COLLECTOR_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    interrupts = config.stash.get(_INTERRUPTS, None)
    if interrupts is not None:
        interrupts.cleaning_up()
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.shutdown()  # idempotent; covers runs that never reached sessionfinish
        session.release()  # the reports are written: not walked by pytest's garbage collections at exit
        del config.stash[SESSION_KEY]
    if interrupts is not None:
        interrupts.restore()
        del config.stash[_INTERRUPTS]
    collector = config.pluginmanager.get_plugin(_COLLECTOR_NAME)
    if collector is not None:
        config.pluginmanager.unregister(collector)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
    """pytest's JUnit writer failing (a full disk) skips the hooks after it: say so, write the other reports."""
    try:
        return (yield)
    except OSError as exc:
        hetero = session.config.stash.get(SESSION_KEY, None)
        if hetero is None or not junit_write_failed(session.config, exc, hetero.problems):
            raise
        collector = session.config.pluginmanager.get_plugin(_COLLECTOR_NAME)
        if collector is not None:
            collector.pytest_sessionfinish(session, exitstatus)
        return None


@pytest.hookimpl(trylast=True)
def pytest_hetero_make_backend(platform: Platform, config: pytest.Config) -> Backend:
    return get_backend_class(platform.backend.kind)(platform)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize(metafunc, metafunc.config.stash[SESSION_KEY])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    hetero: HeteroSession = config.stash[SESSION_KEY]
    attach_benchmarks(items, hetero)
    hetero.note_collection(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    hetero: HeteroSession = session.config.stash[SESSION_KEY]
    problems = marker_problems(session.config, session.items)
    if problems:  # bad marks of the selected tests, every one: a usage error before any job
        _refuse(session, hetero, "invalid @pytest.mark.hetero:\n  " + "\n  ".join(problems))
        return
    if not hetero.is_worker:  # under xdist the controller checks (pytest_xdist_node_collection_finished)
        _check_inputs(hetero, references_files(session.items))
    if hetero.options.dry_run:
        render_dry_run(session, hetero)
    elif not session.config.getoption("collectonly"):
        hetero.plan(session.items)


def _refuse(session: pytest.Session, hetero: HeteroSession, problem: str) -> None:
    """A usage error; an xdist worker cannot raise one, so it reports a collection error and runs nothing."""
    if not hetero.is_worker:
        raise pytest.UsageError(problem)
    session.config.hook.pytest_collectreport(report=pytest.CollectReport(session.nodeid, "failed", problem, []))
    for item in session.items:
        item.add_marker(pytest.mark.skip(reason="not run: invalid @pytest.mark.hetero in this run"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's controller: deal a collection with benchmarks out up front, so workers submit ahead."""
    from pytest_hetero.xdist_scheduling import make_scheduler  # only under xdist

    return make_scheduler(config, log, config.stash[SESSION_KEY].xdist_dir)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """pytest-xdist's controller collects nothing: it checks the files beside the workers' tests."""
    hetero: HeteroSession = node.config.stash[SESSION_KEY]
    _check_inputs(hetero, references_files_of(node.config.rootpath, ids))


def _check_inputs(hetero: HeteroSession, references: list[Path]) -> None:
    """Broken references or an unknown baseline: a usage error before any job is submitted."""
    try:
        hetero.check_inputs(references)
    except HeteroError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A dry run renders benchmark cases; their bodies have nothing to assert on."""
    dry = pyfuncitem.config.stash[SESSION_KEY].options.dry_run
    return True if dry and BENCH_KEY in pyfuncitem.stash else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    result = item.stash.get(RESULT_KEY, None)
    if result is not None and result.error is not None:
        pytest.fail(result.error, pytrace=False)
    outcome = yield
    metadata = fixture_stats(item) if result is None else None
    if metadata is not None:  # a pytest-benchmark test: its statistics are checked like any metric
        result = benchmark_fixture_result(item.config.stash[SESSION_KEY], item, metadata)
        item.stash[RESULT_KEY] = result
        item.user_properties.extend(junit_properties(result))
        if result.error is not None:
            pytest.fail(result.error, pytrace=False)
    if result is not None:
        _fail_on_performance(result)
    return outcome


def _fail_on_performance(result: BenchmarkResult) -> None:
    failed = result.failure_messages()
    if failed:
        pytest.fail("performance check failed: " + "\n  ".join(failed), pytrace=False)
    expected = [v.message for v in result.verdicts if v.kind is VerdictKind.XFAIL]
    if expected:
        pytest.xfail("; ".join(expected))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    record = record_for_report(item, report)
    if record is not None:
        report.hetero_record = record  # type: ignore[attr-defined]  # travels to the xdist controller
    return report
