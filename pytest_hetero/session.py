"""HeteroSession: the plugin's state for one pytest run, kept in ``config.stash``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.backends.base import Backend, JobSpec, JobState, raise_for_state
from pytest_hetero.check.gate import HistoryBaseline, MetricComparison, compare_record
from pytest_hetero.check.references import ReferenceBook, judge, load_references
from pytest_hetero.config.models import Catalogue, Platform
from pytest_hetero.errors import CheckError, CollectError, ConfigError, HeteroError, Stage, StageError
from pytest_hetero.history import HistoryStore, open_store
from pytest_hetero.launchers import get_launcher
from pytest_hetero.markers import Declaration
from pytest_hetero.metrics import MetricsRecord, combine_repeats, parse_metrics_record
from pytest_hetero.options import HeteroOptions
from pytest_hetero.progress import Progress
from pytest_hetero.provenance import host_provenance
from pytest_hetero.pybench import fixture_metrics, fixture_workload, machine_info
from pytest_hetero.redact import scrub, secret_values
from pytest_hetero.results import BenchmarkResult
from pytest_hetero.scheduler import Job, Scheduler

__all__ = ["BENCH_KEY", "RESULT_KEY", "SESSION_KEY", "Benchmark", "HeteroSession"]


@dataclass(frozen=True)
class Benchmark:
    """One collected item's benchmark: declaration × platform."""

    declaration: Declaration
    platform: Platform
    test_key: str
    references_path: Path


SESSION_KEY = pytest.StashKey["HeteroSession"]()
BENCH_KEY = pytest.StashKey[Benchmark]()
RESULT_KEY = pytest.StashKey[BenchmarkResult]()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120]


class HeteroSession:
    def __init__(self, config: pytest.Config, options: HeteroOptions, catalogue: Catalogue, platforms: list[Platform]):
        self.config = config
        self.options = options
        self.catalogue = catalogue
        self.platforms = platforms
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        # xdist workers take the controller's run id (see ReportCollector.pytest_configure_node).
        new_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.run_id: str = workerinput.get("hetero_run_id", new_id) if workerinput else new_id
        self.run_dir = options.output_dir / "runs" / self.run_id
        self.records: list[dict[str, Any]] = []
        self.interrupted = False
        self.cancelled_jobs: list[str] = []
        self.notes: list[str] = []
        #: Requested outputs that could not be produced: printed even under -q, exit status 3.
        self.problems: list[str] = []
        self._backends: dict[str, Backend] = {}
        self._books: dict[Path, ReferenceBook] = {}
        self._jobs: dict[str, list[Job]] = {}
        self._running: dict[str, BenchmarkResult] = {}
        self.scheduler = Scheduler(self.backend_for)
        self.progress = Progress(config)
        self._provenance: dict[str, Any] | None = None
        self.history: HistoryStore | None = open_store(options.history) if options.history else None
        self.baseline = self._baseline()

    def _baseline(self) -> HistoryBaseline | None:
        if self.history is None or self.options.compare is None:
            return None
        return HistoryBaseline(self.history, self.options.compare, exclude_run_id=self.run_id)

    # -- backends -------------------------------------------------------
    def backend_for(self, spec_or_platform: JobSpec | Platform) -> Backend:
        platform = spec_or_platform.platform if isinstance(spec_or_platform, JobSpec) else spec_or_platform
        backend = self._backends.get(platform.name)
        if backend is None:
            backend = self.config.hook.pytest_hetero_make_backend(platform=platform, config=self.config)
            if backend is None:
                raise ConfigError(f"platform {platform.name!r}: no plugin created a {platform.backend.kind!r} backend")
            self._backends[platform.name] = backend
        return backend

    @property
    def provenance(self) -> dict[str, Any]:
        if self._provenance is None:
            self._provenance = {**host_provenance(), "machine_info": machine_info(self.config)}
        return self._provenance

    # -- jobs -------------------------------------------------------------
    def jobspec(self, item: pytest.Item, bench: Benchmark, repeat: int = 0) -> JobSpec:
        platform, workload = bench.platform, bench.declaration.workload
        timeout_s = platform.time_limit_s
        if bench.declaration.timeout_min is not None:
            timeout_s = min(timeout_s, bench.declaration.timeout_min * 60.0)
        env = {
            "HETERO_WORKLOAD_CONFIG": workload.config_json,
            "HETERO_PLATFORM": platform.name,
            "HETERO_ACCELERATOR_KIND": platform.accelerator.kind,
            "HETERO_ACCELERATORS_PER_NODE": str(platform.accelerators_per_node),
            "HETERO_RUN_ID": self.run_id,
            "HETERO_PEAK_TFLOPS_JSON": json.dumps(dict(platform.accelerator.peak_tflops)),
            **{f"HETERO_DATA_{_slug(k).upper()}": v for k, v in platform.data_roots.items()},
        }
        spec = JobSpec(
            name=f"{bench.test_key.rsplit('::', 1)[-1]}[{platform.name}]",
            argv=tuple(get_launcher(platform).command(workload, self.backend_for(platform).launch_context())),
            workdir=self._workdir(item, repeat),
            platform=platform,
            env=env,
            timeout_s=timeout_s,
            cwd=item.path.parent,
        )
        modified = self.config.hook.pytest_hetero_modify_jobspec(spec=spec, item=item)
        return modified if isinstance(modified, JobSpec) else spec

    def _workdir(self, item: pytest.Item, repeat: int) -> Path:
        # Readable, and unique even when long node ids share their first 100 characters.
        digest = hashlib.sha256(item.nodeid.encode()).hexdigest()[:8]
        base = (self.run_dir / f"{_slug(item.nodeid)[:100]}-{digest}").absolute()
        return base / f"repeat-{repeat + 1}" if self.options.repeat > 1 else base

    def _new_jobs(self, item: pytest.Item, bench: Benchmark) -> list[Job]:
        return [Job(f"{item.nodeid}#{r}", self.jobspec(item, bench, r)) for r in range(self.options.repeat)]

    def plan(self, items: list[pytest.Item]) -> None:
        """Queue the jobs of every runnable benchmark item, ahead of its test."""
        if self.is_worker or self.options.dry_run:
            return
        planned = []
        for item in items:
            bench = item.stash.get(BENCH_KEY, None)
            if bench is None or _will_skip(item):
                continue
            try:
                jobs = self._new_jobs(item, bench)
            except HeteroError:
                continue  # reported by the test itself, with its name
            self._jobs[item.nodeid] = jobs
            planned.extend(jobs)
        self.scheduler.plan(planned)

    def run(self, item: pytest.Item, bench: Benchmark, *, track: bool = True) -> BenchmarkResult:
        """Run (or wait for) the item's job and collect, parse and check it.

        ``track``: recorded as interrupted if the session ends first (off for ``hetero_run``).
        """
        result = BenchmarkResult(
            nodeid=item.nodeid,
            test_key=bench.test_key,
            platform=bench.platform,
            workload=bench.declaration.workload,
            workdir="",
            references_file=str(bench.references_path),
        )
        if track:
            self._running[item.nodeid] = result
        try:
            self._run_stages(item, bench, result)
        except StageError as exc:
            result.error, result.failed_stage = self._scrubbed(str(exc), result), exc.stage.value
        except HeteroError as exc:
            result.error, result.failed_stage = str(exc), Stage.PROVISION.value
        finally:
            self.progress.clear()
        return result

    def _run_stages(self, item: pytest.Item, bench: Benchmark, result: BenchmarkResult) -> None:
        timings = result.stage_timings_s
        started = time.monotonic()
        jobs = self._jobs.pop(item.nodeid, None) or self._new_jobs(item, bench)
        spec = jobs[0].spec
        result.workdir = str(spec.workdir.parent if len(jobs) > 1 else spec.workdir)
        result.argv, result.env = list(spec.argv), {**spec.platform.environment.env, **spec.env}
        timings["provision"] = time.monotonic() - started
        records: list[MetricsRecord] = []
        try:
            for job in jobs:
                records.append(self._finish_job(job, result))
        except BaseException:
            # The repeats still queued or running are of no use now.
            self.cancelled_jobs += [job.handle.job_id for job in self.scheduler.discard(jobs) if job.handle]
            raise
        finally:  # what was measured is kept, even when a later repeat failed
            if records:
                result.metrics = combine_repeats([r.metrics for r in records])
                result.workload_info = dict(records[-1].extra)
        timings["wait"] = time.monotonic() - started - timings["provision"] - timings["collect"]
        self._check(bench, result)

    def _finish_job(self, job: Job, result: BenchmarkResult) -> MetricsRecord:
        """Wait for one job, note where its logs are, collect and parse it."""
        result.log_paths = {"stdout": str(job.spec.stdout_path), "stderr": str(job.spec.stderr_path)}
        job = self.scheduler.wait_for(job, on_tick=self.progress)
        result.stage_timings_s["launch"] = result.stage_timings_s.get("launch", 0.0) + job.submit_s
        if job.handle is not None:
            result.job_ids.append(job.handle.job_id)
        if job.error is not None:
            raise job.error
        started = time.monotonic()
        record = self._collect(job, result)
        result.stage_timings_s["collect"] = result.stage_timings_s.get("collect", 0.0) + time.monotonic() - started
        return record

    def _collect(self, job: Job, result: BenchmarkResult) -> MetricsRecord:
        assert job.handle is not None
        output = self.backend_for(job.spec).collect(job.handle)
        result.state, result.exit_code = output.state.value, output.exit_code
        result.log_paths.update(output.artifacts)
        raise_for_state(output)
        try:
            return parse_metrics_record(output.stdout(), output.stdout_path)
        except CollectError as exc:  # the log says why the record is missing or malformed
            raise CollectError(exc.message, job_id=output.job_id, log_tail=output.log_tail()) from exc

    def benchmark_fixture_result(self, item: pytest.Item, metadata: Any) -> BenchmarkResult:
        """A pytest-benchmark ``benchmark`` test as a record: its statistics, checked like any metric."""
        workload = fixture_workload(item, metadata)
        bench = Benchmark(
            declaration=Declaration(workload=workload),
            platform=self.catalogue.get("local"),
            test_key=case_key(item, None),
            references_path=item.path.parent / "references.yaml",
        )
        result = BenchmarkResult(item.nodeid, bench.test_key, bench.platform, workload, "")
        result.references_file = str(bench.references_path)
        result.metrics = fixture_metrics(metadata)
        try:
            self._check(bench, result)
        except StageError as exc:
            result.error, result.failed_stage = str(exc), exc.stage.value
        return result

    def _check(self, bench: Benchmark, result: BenchmarkResult) -> None:
        started = time.monotonic()
        if not self.options.update_references:
            try:
                book = self.book(bench.references_path)
            except ConfigError as exc:
                raise CheckError(str(exc)) from exc
            refs = book.lookup(bench.test_key, bench.platform.name)
            result.verdicts = judge(result.metrics, refs, bench.platform.name, self.options.require_references)
        if self.baseline is not None:
            result.comparisons = self._compare(result)
        result.stage_timings_s["check"] = time.monotonic() - started

    def _compare(self, result: BenchmarkResult) -> list[MetricComparison]:
        assert self.baseline is not None
        record = result.to_record("passed", {})
        try:
            return compare_record(
                record, self.baseline, min_effect=self.options.min_effect, exprs=self.options.compare_fail
            )
        except HeteroError as exc:
            raise CheckError(f"comparison with {self.baseline.description} failed: {exc}") from exc

    def _scrubbed(self, text: str, result: BenchmarkResult) -> str:
        # The inherited environment too: the local backend passes it on, CI secrets included.
        return scrub(text, secret_values({**os.environ, **result.platform.environment.env, **result.env}))

    def book(self, path: Path) -> ReferenceBook:
        if path not in self._books:
            self._books[path] = load_references(path)
        return self._books[path]

    # -- records ----------------------------------------------------------
    def make_record(self, item: pytest.Item, result: BenchmarkResult, outcome: str) -> dict[str, Any]:
        self._running.pop(item.nodeid, None)
        record = result.to_record(outcome, self.provenance)
        self.config.hook.pytest_hetero_result_record(record=record, item=item)
        return record

    def add_record(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def shutdown(self) -> None:
        """Cancel every job still queued or running; note what was interrupted."""
        for job in self.scheduler.shutdown():
            if job.handle is not None:
                self.cancelled_jobs.append(job.handle.job_id)
        for result in self._running.values():
            result.state = result.state or JobState.CANCELLED.value
            self.records.append(result.to_record("interrupted", self.provenance))
        self._running.clear()
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()

    def dry_run_text(self, item: pytest.Item, bench: Benchmark) -> str:
        spec = self.jobspec(item, bench)
        return self.backend_for(spec).render(spec)


def case_key(item: pytest.Item, platform: str | None) -> str:
    """``file.py::test[params]`` without the platform id: the key of references and history."""
    name = getattr(item, "originalname", item.name)
    params = item.name[len(name) + 1 : -1] if item.name != name else ""
    if platform and params == platform:
        params = ""
    elif platform and params.endswith(f"-{platform}"):
        params = params[: -len(platform) - 1]
    elif platform and params.startswith(f"{platform}-"):
        params = params[len(platform) + 1 :]
    return f"{item.path.name}::{name}" + (f"[{params}]" if params else "")


def _will_skip(item: pytest.Item) -> bool:
    if item.get_closest_marker("skip") is not None:
        return True
    return any(m.args and m.args[0] is True for m in item.iter_markers("skipif"))
