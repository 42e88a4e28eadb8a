"""Session start and end: build the session, gather records, write reports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hetero.backends.registry import get_backend_class
from pytest_hetero.check.verdicts import not_judged_notes
from pytest_hetero.config.loader import builtin_catalogue, load_catalogue
from pytest_hetero.config.models import Catalogue
from pytest_hetero.contention import refresh_contention
from pytest_hetero.errors import ConfigError, HeteroError, UnavailableError
from pytest_hetero.fingerprint import unpaired_notes
from pytest_hetero.handover import hand_over, take_over
from pytest_hetero.host_fingerprint import host_fingerprint
from pytest_hetero.interrupts import Interrupts, mend_traceback
from pytest_hetero.isolation import group_conflicts
from pytest_hetero.jobs import Benchmark
from pytest_hetero.launchers import get_launcher
from pytest_hetero.metrics import Metric
from pytest_hetero.options import read_options
from pytest_hetero.pybench import benchmark_json, commit_info
from pytest_hetero.reporting.json_report import build_report, write_report
from pytest_hetero.reporting.terminal import summary_lines
from pytest_hetero.results import BenchmarkResult, ResultRecord
from pytest_hetero.selection import select_platforms
from pytest_hetero.session import BENCH_KEY, RESULT_KEY, SESSION_KEY, HeteroSession

if TYPE_CHECKING:  # loaded only when a run keeps history (--hetero-history)
    from pytest_hetero.history import HistoryStore

__all__ = ["EXIT_PERFORMANCE", "ReportCollector", "build_session", "outcome_of", "record_for_report"]


def build_session(config: pytest.Config) -> HeteroSession:
    """Load the catalogue, select platforms, check their backends and launchers."""
    options = read_options(config)
    try:
        options.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--hetero-output-dir {options.output_dir}: cannot create it: {exc.strerror or exc}") from exc
    catalogue = _catalogue(options.platforms_file)
    platforms = select_platforms(catalogue, options.selectors)
    hetero = HeteroSession(config, options, catalogue, platforms)
    for platform in platforms:
        get_launcher(platform)
        try:
            hetero.backend_for(platform)
        except UnavailableError as exc:
            raise ConfigError(f"platform {platform.name!r} ({platform.source}): {exc}") from None
    conflicts = group_conflicts({p.name: hetero.backend_for(p).resource_group for p in platforms})
    if conflicts:
        raise ConfigError("; ".join(conflicts))
    return hetero


def _catalogue(path: Path | None) -> Catalogue:
    builtin = builtin_catalogue()
    if path is None:
        return builtin
    loaded = load_catalogue(path)
    # The built-in 'local' stays available unless the file defines its own.
    extra = tuple(p for p in builtin.platforms if p.name not in loaded.names())
    return Catalogue(platforms=loaded.platforms + extra, source=loaded.source)


def outcome_of(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xpassed" if report.passed else "xfailed"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    return "skipped" if report.skipped else "passed"


def record_for_report(item: pytest.Item, report: pytest.TestReport) -> ResultRecord | None:
    """The JSON record of a benchmark item, on the report that ends it."""
    bench = item.stash.get(BENCH_KEY, None)
    result = item.stash.get(RESULT_KEY, None)
    ends = report.when == "call" or (report.when == "setup" and not report.passed)
    session = item.config.stash.get(SESSION_KEY, None)
    if (bench is None and result is None) or not ends or session is None:
        return None
    if result is None:
        assert bench is not None
        result = _not_run(bench, item, report)
    else:  # the record carries it from here: let it go with the test (every full collection walks what lives)
        del item.stash[RESULT_KEY]
    return session.make_record(item, result, outcome_of(report))


def _not_run(bench: Benchmark, item: pytest.Item, report: pytest.TestReport) -> BenchmarkResult:
    """The record of a benchmark skipped (or failed) before its workload ran."""
    result = BenchmarkResult(item.nodeid, bench.test_key, bench.platform, bench.declaration.workload, "")
    result.references_file = str(bench.references_path)
    result.fingerprints = bench.fingerprints  # what it would have measured: a report valid against its schema
    if report.skipped and isinstance(report.longrepr, tuple):
        result.skip_reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    return result


#: Exit status when every failure is a performance verdict (reference band, regression).
EXIT_PERFORMANCE = 6


def is_performance_failure(record: ResultRecord | None) -> bool:
    """A failure that ran fine but measured out of band (not an error of any stage)."""
    if record is None or record["error"] is not None:
        return False
    missed = any(v["verdict"] in ("fail", "missing", "regression") for v in record["verdicts"])
    judged = {v["metric"] for v in record["verdicts"]}
    return missed or any(c["verdict"] == "regression" and c["metric"] not in judged for c in record["comparisons"])


class ReportCollector:
    """Registered as a plugin: gathers records where reports arrive (the xdist controller too)."""

    def __init__(self, hetero: HeteroSession, interrupts: Interrupts | None = None) -> None:
        self.hetero = hetero
        self.interrupts = interrupts or Interrupts()
        self.failures = {"performance": 0, "other": 0}

    @pytest.hookimpl(trylast=True)  # after other plugins' (a conftest's too): they see the record on the report
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "hetero_record", None)
        if report.failed:
            self.failures["performance" if is_performance_failure(record) else "other"] += 1
        if record is not None and not self.hetero.is_worker:
            self.hetero.add_record(record)
            # Held by the session alone from here, so it goes when the session ends, before pytest's full
            # garbage collections at exit (the reports stay alive for the terminal summary: each collection
            # would walk every record again).
            del report.hetero_record

    @pytest.hookimpl(tryfirst=True)  # before the terminal formats it
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        mend_traceback(excinfo.value)  # raised by a signal: possibly at an instruction with no line

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist: every worker shares the controller's run id and run directory."""
        node.workerinput["hetero_run_id"] = self.hetero.run_id

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.TESTS_FAILED and not self.failures["other"] and self.failures["performance"]:
            session.exitstatus = EXIT_PERFORMANCE
        self.interrupts.cleaning_up()  # a signal now must not cut the clean-up or the reports short
        finish_session(self.hetero, int(session.exitstatus))
        if self.hetero.problems and session.exitstatus in (pytest.ExitCode.OK, EXIT_PERFORMANCE):
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR  # a requested report or the history is missing

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.hetero.is_worker:
            return
        for problem in self.hetero.problems:  # shown even under -q
            terminalreporter.write_line(f"pytest-hetero: {problem}", red=True)
        for leftover in self.hetero.leftovers:
            terminalreporter.write_line(f"pytest-hetero: left behind: {leftover}", red=True)
        if self.hetero.config.get_verbosity() < 0:
            return
        if self.hetero.records:
            terminalreporter.write_sep("=", "pytest-hetero summary")
            for line in summary_lines(self.hetero.records, verbose=self.hetero.config.get_verbosity() > 0):
                terminalreporter.write_line(line)
        records = self.hetero.records
        for note in [*not_judged_notes(records), *unpaired_notes(records), *self.hetero.notes]:
            terminalreporter.write_line(note)


def finish_session(hetero: HeteroSession, exit_status: int) -> None:
    """Cancel leftovers, then (controller only) update references, write reports, store history."""
    hetero.interrupted = exit_status == pytest.ExitCode.INTERRUPTED
    hetero.shutdown()
    if hetero.is_worker:
        hand_over(hetero)  # what no test report carries: interrupted cases, cancelled jobs, leftovers
        return
    take_over(hetero)
    # Every window is closed now, the workers' too: what ran beside each record, final.
    refresh_contention([record["contention"] for record in hetero.records], hetero.scheduler.isolation.ledger)
    if hetero.options.update_references:
        _update_references(hetero)
    if hetero.options.json_path is None and hetero.options.benchmark_json_path is None and hetero.history is None:
        return  # no report asked for: its provenance (machine info runs a cpuinfo subprocess) is not worth making
    report = build_report(
        run_id=hetero.run_id,
        records=hetero.records,
        platforms=[p.name for p in hetero.platforms],
        exit_status=exit_status,
        interrupted=hetero.interrupted,
        cancelled_jobs=hetero.cancelled_jobs,
        provenance=hetero.provenance,
    )
    report["leftovers"] = list(hetero.leftovers)
    if hetero.options.json_path is not None:
        _write_json(hetero, hetero.options.json_path, report)
    if hetero.options.benchmark_json_path is not None:
        exported = benchmark_json(hetero.records, hetero.provenance["machine_info"], commit_info())
        _write_json(hetero, hetero.options.benchmark_json_path, exported, "pytest-benchmark JSON")
    if hetero.history is not None:
        _store_history(hetero, hetero.history, report)


def _write_json(hetero: HeteroSession, path: Path, report: dict[str, Any], what: str = "JSON report") -> None:
    try:
        write_report(path, report)
    except OSError as exc:
        hetero.problems.append(f"could not write the {what} {path}: {exc.strerror or exc}")
    else:
        hetero.notes.append(f"pytest-hetero: {what} written to {path}")


def _store_history(hetero: HeteroSession, store: HistoryStore, report: dict[str, Any]) -> None:
    try:
        store.add_report(report)
        if hetero.options.save_baseline:
            store.save_baseline(hetero.options.save_baseline, hetero.run_id)
    except HeteroError as exc:
        hetero.problems.append(f"run {hetero.run_id} NOT stored in the history: {exc}")
        return
    saved = f", saved as baseline {hetero.options.save_baseline!r}" if hetero.options.save_baseline else ""
    hetero.notes.append(f"pytest-hetero: run {hetero.run_id} added to the history {store.description}{saved}")


def _update_references(hetero: HeteroSession) -> None:
    """Write what was measured into each references file, in place; host-bound platforms record this host."""
    # ruamel.yaml (about 9 ms to import) only for runs that update references
    from pytest_hetero.check.reference_update import ReferenceUpdate, update_references

    updates: dict[Path, list[ReferenceUpdate]] = {}
    for record in hetero.records:
        if not record["metrics"] or not record["references_file"]:
            continue
        metrics = {name: Metric.from_dict(name, entry) for name, entry in record["metrics"].items()}
        here = host_fingerprint() if get_backend_class(record["platform"]["backend"]).runs_on_this_host else None
        update = ReferenceUpdate(record["test"], record["platform"]["name"], metrics, here)
        updates.setdefault(Path(record["references_file"]), []).append(update)
    for path, found in sorted(updates.items()):
        try:
            summary = update_references(path, found)
        except HeteroError as exc:
            hetero.notes.append(f"pytest-hetero: references not updated: {exc}")
            continue
        hetero.notes.append(f"pytest-hetero: references updated in {path} ({summary.changed} value(s) changed)")
        if summary.not_added:
            listed = "; ".join(summary.not_added)
            hetero.notes.append(f"pytest-hetero: measured, no reference in {path} (add by hand to check): {listed}")
