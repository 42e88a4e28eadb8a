"""The stages of one benchmark, one function each, timed in one place.

::

    provision  the item's jobs: planned ahead by the session, or made now
    launch     submission (done by the scheduler, ahead of the test; its time is the jobs' submit time)
    wait       the scheduler's loop until every repeat has finished
    collect    the backend's output, parsed into metrics (a bad end state fails here with the log tail)
    check      references and the regression gate

Every failure is a :class:`~pytest_hetero.errors.StageError` naming its
stage; what was measured before a failure is kept in the result.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hetero.backends.base import raise_for_state
from pytest_hetero.check.references import ReferenceEntry, judge
from pytest_hetero.check.verdicts import combine
from pytest_hetero.errors import CheckError, CollectError, ConfigError, HeteroError, Stage, StageError
from pytest_hetero.host_fingerprint import host_fingerprint
from pytest_hetero.jobs import Benchmark, case_key
from pytest_hetero.markers import Declaration
from pytest_hetero.metrics import MetricsRecord, combine_repeats, parse_metrics_record
from pytest_hetero.pybench import fixture_metrics, fixture_workload
from pytest_hetero.redact import scrub, secret_values
from pytest_hetero.results import BenchmarkResult

if TYPE_CHECKING:
    from pytest_hetero.check.gate import MetricComparison
    from pytest_hetero.scheduler import Job
    from pytest_hetero.session import HeteroSession

__all__ = ["benchmark_fixture_result", "check", "run_benchmark"]


class timed:  # lower case: used as a function: ``with timed(result, Stage.WAIT):``
    """Add the time spent in the block to ``stage``'s total (repeats add up).

    A class, not a generator context manager (which costs a generator and three more calls): four blocks a test.
    """

    __slots__ = ("_key", "_started", "_timings")

    def __init__(self, result: BenchmarkResult, stage: Stage) -> None:
        self._timings = result.stage_timings_s
        self._key: str = _STAGE_KEYS[stage]
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.monotonic()

    def __exit__(self, *exc_info: object) -> None:
        timings = self._timings
        timings[self._key] = timings.get(self._key, 0.0) + time.monotonic() - self._started


#: Each stage's name in ``stage_timings_s`` (an enum's ``.value`` is a property: looked up once here).
_STAGE_KEYS: dict[Stage, str] = {stage: stage.value for stage in Stage}
_PROVISION, _LAUNCH, _WAIT, _COLLECT = (
    _STAGE_KEYS[s] for s in (Stage.PROVISION, Stage.LAUNCH, Stage.WAIT, Stage.COLLECT)
)


def run_benchmark(
    session: HeteroSession, item: pytest.Item, bench: Benchmark, *, track: bool = True
) -> BenchmarkResult:
    """Run (or wait for) the item's jobs, collect, parse and check them.

    ``track``: recorded as interrupted if the session ends first (off for ``hetero_run``).
    """
    result = BenchmarkResult(
        nodeid=item.nodeid,
        test_key=bench.test_key,
        platform=bench.platform,
        workload=bench.declaration.workload,
        workdir="",
        references_file=str(bench.references_path),
        fingerprints=bench.fingerprints,
    )
    if track:
        session.track(item.nodeid, result)
    try:
        _run_stages(session, item, bench, result)
    except StageError as exc:
        result.error, result.failed_stage = _scrubbed(str(exc), result), exc.stage.value
    except HeteroError as exc:
        result.error, result.failed_stage = str(exc), _PROVISION
    finally:
        session.progress.clear()
    return result


def _run_stages(session: HeteroSession, item: pytest.Item, bench: Benchmark, result: BenchmarkResult) -> None:
    with timed(result, Stage.PROVISION):
        jobs = session.jobs_for(item, bench)
        spec = jobs[0].spec
        result.workdir = str(spec.workdir.parent if len(jobs) > 1 else spec.workdir)
        result.argv, result.env = list(spec.argv), {**spec.platform.environment.env, **spec.env}
    for key in (_LAUNCH, _WAIT, _COLLECT):
        result.stage_timings_s.setdefault(key, 0.0)
    records: list[MetricsRecord] = []
    try:
        for job in jobs:
            records.append(_finish_job(session, job, result))
    except BaseException:
        session.discard(jobs)  # the repeats still queued or running are of no use now
        raise
    finally:  # what was measured is kept, even when a later repeat failed
        if records:
            result.metrics = combine_repeats([r.metrics for r in records], session.options.aggregate)
            result.workload_info = dict(records[-1].extra)
        _note_contention(session, jobs, result)
    check(session, bench, result)


def _note_contention(session: HeteroSession, jobs: list[Job], result: BenchmarkResult) -> None:
    """What shared the resource group with these jobs so far (before the check, which may weigh it)."""
    group = session.backend_for(result.platform).resource_group
    windows = [job.window for job in jobs if job.window is not None]
    result.contention = session.scheduler.isolation.contention(group, windows)
    result.contended = result.contention.contended


def _finish_job(session: HeteroSession, job: Job, result: BenchmarkResult) -> MetricsRecord:
    """Wait for one job, note where its logs are, collect and parse it."""
    result.log_paths = {"stdout": str(job.spec.stdout_path), "stderr": str(job.spec.stderr_path)}
    with timed(result, Stage.WAIT):
        job = session.scheduler.wait_for(job, on_tick=session.progress)
    result.stage_timings_s[_LAUNCH] += job.submit_s
    if job.handle is not None:
        result.job_ids.append(job.handle.job_id)
    if job.error is not None:
        raise job.error
    with timed(result, Stage.COLLECT):
        return _collect(session, job, result)


def _collect(session: HeteroSession, job: Job, result: BenchmarkResult) -> MetricsRecord:
    assert job.handle is not None
    output = session.backend_for(job.spec.platform).collect(job.handle)
    result.state, result.exit_code = output.state.value, output.exit_code
    result.log_paths.update(output.artifacts)
    raise_for_state(output, job.spec.workload_timeout_s)
    try:
        return parse_metrics_record(output.stdout(), output.stdout_path)
    except CollectError as exc:  # the log says why the record is missing or malformed
        raise CollectError(exc.message, job_id=output.job_id, log_tail=output.log_tail()) from exc


def check(session: HeteroSession, bench: Benchmark, result: BenchmarkResult) -> None:
    """References (unless they are being rewritten) and the regression gate: one verdict per metric."""
    with timed(result, Stage.CHECK):
        try:
            entry = session.book(bench.references_path).entry(bench.test_key, bench.platform.name)
        except ConfigError as exc:
            raise CheckError(str(exc)) from exc
        if not session.options.update_references:
            result.verdicts = judge(
                result.metrics,
                entry.metrics,
                bench.platform.name,
                session.options.require_references,
                elsewhere=_elsewhere(session, bench, entry),
                contended=result.contended,
            )
        if session.baseline is not None:
            result.comparisons = _compare(session, result, entry.noise_floors())
        result.verdicts = combine(result.verdicts, result.comparisons, result.contended)


def _elsewhere(session: HeteroSession, bench: Benchmark, entry: ReferenceEntry) -> str:
    """Why the references do not apply: measured on another host (platforms whose jobs run on this one)."""
    if not session.backend_for(bench.platform).runs_on_this_host:
        return ""
    return entry.elsewhere(host_fingerprint())


def _compare(session: HeteroSession, result: BenchmarkResult, noise_floors: dict[str, float]) -> list[MetricComparison]:
    from pytest_hetero.check.gate import compare_metrics  # loaded by the first comparison

    assert session.baseline is not None
    series = result.series()
    try:
        return compare_metrics(
            series,
            result.metrics.values(),
            session.baseline,
            min_effect=session.options.min_effect,
            exprs=session.options.compare_fail,
            noise_floors=noise_floors,
        )
    except HeteroError as exc:
        raise CheckError(f"comparison with {session.baseline.description} failed: {exc}") from exc


def _scrubbed(text: str, result: BenchmarkResult) -> str:
    # The inherited environment too: the local backend passes it on, CI secrets included.
    return scrub(text, secret_values({**os.environ, **result.platform.environment.env, **result.env}))


def benchmark_fixture_result(session: HeteroSession, item: pytest.Item, metadata: Any) -> BenchmarkResult:
    """A pytest-benchmark ``benchmark`` test as a record: its statistics, checked like any metric."""
    workload = fixture_workload(item, metadata)
    bench = Benchmark(
        declaration=Declaration(workload=workload),
        platform=session.catalogue.get("local"),
        test_key=case_key(item, None),
        references_path=item.path.parent / "references.yaml",
    )
    result = BenchmarkResult(item.nodeid, bench.test_key, bench.platform, workload, "", fingerprints=bench.fingerprints)
    result.references_file = str(bench.references_path)
    result.metrics = fixture_metrics(metadata)
    try:
        check(session, bench, result)
    except StageError as exc:
        result.error, result.failed_stage = str(exc), exc.stage.value
    return result
