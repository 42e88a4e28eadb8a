"""HeteroSession: the plugin's state for one pytest run, kept in ``config.stash``.

It holds what lives as long as the run: the selected platforms and their
backends, the scheduler with the jobs planned ahead, the reference books, the
history baseline, and the records gathered for the reports. The work of one
benchmark is :mod:`pytest_hetero.stages`; its job spec is :mod:`pytest_hetero.jobs`.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hetero.backends.base import Backend, JobSpec, JobState
from pytest_hetero.check.references import ReferenceBook, load_references
from pytest_hetero.config.models import Catalogue, Platform
from pytest_hetero.errors import ConfigError, HeteroError
from pytest_hetero.isolation import Isolation
from pytest_hetero.jobs import Benchmark, build_jobspec, job_workdir, will_skip
from pytest_hetero.options import HeteroOptions
from pytest_hetero.progress import Progress
from pytest_hetero.results import BenchmarkResult, ResultRecord
from pytest_hetero.scheduler import Job, Scheduler
from pytest_hetero.xdist_plan import assigned_indices, note_benchmarks

if TYPE_CHECKING:  # the history store and the gate load only when a run uses them
    from pytest_hetero.check.gate import HistoryBaseline
    from pytest_hetero.history import HistoryStore

__all__ = ["BENCH_KEY", "RESULT_KEY", "SESSION_KEY", "HeteroSession"]


SESSION_KEY = pytest.StashKey["HeteroSession"]()
BENCH_KEY = pytest.StashKey[Benchmark]()
RESULT_KEY = pytest.StashKey[BenchmarkResult]()


def _open_history(url: str | None) -> HistoryStore | None:
    """The store ``--hetero-history`` names (None without one); its modules load only then."""
    if not url:
        return None
    from pytest_hetero.history import open_store

    return open_store(url)


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
        #: Where xdist's controller and workers agree who runs what (:mod:`.xdist_plan`); removed at the end.
        self.xdist_dir = options.output_dir / "xdist" / self.run_id
        self.records: list[ResultRecord] = []
        self.interrupted = False
        self.cancelled_jobs: list[str] = []
        #: What the backends could not clean up, each with the command that does (Backend.leftovers).
        self.leftovers: list[str] = []
        self.notes: list[str] = []
        #: Requested outputs that could not be produced: printed even under -q, exit status 3.
        self.problems: list[str] = []
        #: By platform and its shape: a scaling sweep (collection.py) runs one platform at several node counts.
        self._backends: dict[tuple[str, int, int | None], Backend] = {}
        #: Whether this run ever opened a backend (so an interrupt has jobs or objects to clean up).
        self.used_backends = False
        self._books: dict[Path, ReferenceBook] = {}
        self._jobs: dict[str, list[Job]] = {}
        self._benches: dict[str, Benchmark] = {}  # of the items planned ahead
        self._worker_items: list[pytest.Item] | None = None  # an xdist worker's collection, until it plans
        self._running: dict[str, BenchmarkResult] = {}
        # Platform slots and the window ledger live in the run directory, shared by xdist workers
        # (in memory when the run is this process alone).
        isolation = Isolation(self.run_dir, shared=self.is_worker or config.getoption("dist", "no") != "no")
        self.scheduler = Scheduler(lambda spec: self.backend_for(spec.platform), isolation)
        self.progress = Progress(config, self.scheduler, lambda job: self.backend_for(job.spec.platform))
        self._provenance: dict[str, Any] | None = None
        self.history = _open_history(options.history)
        self.baseline = self._baseline()

    def _baseline(self) -> HistoryBaseline | None:
        if self.history is None or self.options.compare is None:
            return None
        from pytest_hetero.check.gate import HistoryBaseline

        return HistoryBaseline(self.history, self.options.compare, exclude_run_id=self.run_id)

    # -- backends -------------------------------------------------------
    def backend_for(self, platform: Platform) -> Backend:
        key = (platform.name, platform.resources.nodes, platform.resources.accelerators_per_node)
        backend = self._backends.get(key)
        if backend is None:
            backend = self.config.hook.pytest_hetero_make_backend(platform=platform, config=self.config)
            if backend is None:
                raise ConfigError(f"platform {platform.name!r}: no plugin created a {platform.backend.kind!r} backend")
            self._backends[key] = backend
            self.used_backends = True
        return backend

    @property
    def provenance(self) -> dict[str, Any]:
        """The run's provenance, once per report; only the controller (or a lone process) computes it.

        Records refer to it instead of carrying it, so xdist workers never run the
        machine-info probe (pytest-benchmark's cpuinfo subprocess).
        """
        if self._provenance is None:
            from pytest_hetero.provenance import host_provenance  # only for runs that write a report
            from pytest_hetero.pybench import machine_info

            self._provenance = {**host_provenance(), "machine_info": machine_info(self.config)}
        return self._provenance

    # -- jobs -------------------------------------------------------------
    def jobspec(self, item: pytest.Item, bench: Benchmark, repeat: int = 0) -> JobSpec:
        workdir = job_workdir(self.run_dir, item, repeat, self.options.repeat)
        backend = self.backend_for(bench.platform)
        return build_jobspec(item, bench, backend, run_id=self.run_id, workdir=workdir, repeat=repeat)

    def _new_jobs(self, item: pytest.Item, bench: Benchmark) -> list[Job]:
        return [Job(f"{item.nodeid}#{r}", self.jobspec(item, bench, r)) for r in range(self.options.repeat)]

    def note_collection(self, items: list[pytest.Item]) -> None:
        """An xdist worker with benchmarks asks the controller to deal items out up front (:mod:`.xdist_plan`)."""
        if self.is_worker and not self.options.dry_run and any(BENCH_KEY in item.stash for item in items):
            note_benchmarks(self.xdist_dir)

    def plan(self, items: list[pytest.Item]) -> None:
        """Queue the jobs of every runnable benchmark item, ahead of its test.

        An xdist worker plans later, at its first test, once the controller has dealt it its items.
        """
        if self.options.dry_run:
            return
        if self.is_worker:
            self._worker_items = items
        else:
            self._plan_items(items)

    def _plan_items(self, items: list[pytest.Item]) -> None:
        planned = []
        for item in items:
            bench = item.stash.get(BENCH_KEY, None)
            if bench is None or will_skip(item):
                continue
            try:
                jobs = self._new_jobs(item, bench)
            except HeteroError:
                continue  # reported by the test itself, with its name
            self._jobs[item.nodeid] = jobs
            self._benches[item.nodeid] = bench
            planned.extend(jobs)
        self.scheduler.plan(planned)

    def jobs_for(self, item: pytest.Item, bench: Benchmark) -> list[Job]:
        """The item's jobs: planned ahead, or made now (``hetero_run``, an item not dealt to this worker)."""
        if self._worker_items is not None:
            self._plan_worker_share(self._worker_items)
        return self._jobs.pop(item.nodeid, None) or self._new_jobs(item, bench)

    def _plan_worker_share(self, items: list[pytest.Item]) -> None:
        """Plan the items the xdist controller dealt this worker (once; nothing if it dealt none up front)."""
        self._worker_items = None
        worker_id = str(getattr(self.config, "workerinput", {}).get("workerid", ""))
        indices = assigned_indices(self.xdist_dir, worker_id)
        if indices is not None:
            self._plan_items([items[i] for i in indices if 0 <= i < len(items)])

    def discard(self, jobs: list[Job]) -> None:
        """Drop jobs no longer wanted; the ones cancelled are listed in the report."""
        self.cancelled_jobs += [job.handle.job_id for job in self.scheduler.discard(jobs) if job.handle]

    def track(self, nodeid: str, result: BenchmarkResult) -> None:
        """Record ``result`` as interrupted should the session end before its test does."""
        self._running[nodeid] = result

    def book(self, path: Path) -> ReferenceBook:
        if path not in self._books:
            self._books[path] = load_references(path)
        return self._books[path]

    def check_inputs(self, references_files: Iterable[Path]) -> None:
        """Before any job: load every references file the run will use, and look up the baseline.

        A broken one raises ConfigError (file and JSON path) or HistoryError, so no allocation is spent first.
        """
        for path in references_files:
            self.book(path)
        if self.baseline is not None:
            self.baseline.check()

    # -- records ----------------------------------------------------------
    def make_record(self, item: pytest.Item, result: BenchmarkResult, outcome: str) -> ResultRecord:
        self._running.pop(item.nodeid, None)
        record = result.to_record(outcome)
        self.config.hook.pytest_hetero_result_record(record=record, item=item)
        return record

    def add_record(self, record: ResultRecord) -> None:
        self.records.append(record)

    def shutdown(self) -> None:
        """Cancel every job still queued or running; note what was interrupted."""
        for job in self.scheduler.shutdown():
            if job.handle is not None:
                self.cancelled_jobs.append(job.handle.job_id)
                self._not_reached(job, job.handle.job_id)
        for result in self._running.values():
            result.state = result.state or JobState.CANCELLED.value
            self.records.append(result.to_record("interrupted"))
        self._running.clear()
        for backend in self._backends.values():
            backend.close()
            self.leftovers += backend.leftovers()
        self._backends.clear()
        if not self.is_worker:
            shutil.rmtree(self.xdist_dir, ignore_errors=True)

    def release(self) -> None:
        """After the reports are written: let go of what the run gathered (records, windows, benchmarks).

        Freed here, it is not walked by the full garbage collections pytest makes at exit (two; with
        300 tests they cost a third more while the run's records and windows were still alive).
        """
        self.records.clear()
        self._benches.clear()
        self._books.clear()
        isolation = self.scheduler.isolation
        if isolation.ledger is not None:
            isolation.ledger.close()
            isolation.ledger = None

    def _not_reached(self, job: Job, job_id: str) -> None:
        """A job submitted ahead and cancelled before its test ran: its case is interrupted too."""
        nodeid = job.key.rpartition("#")[0]
        bench = self._benches.get(nodeid)
        if bench is None or nodeid not in self._jobs or not self.interrupted:
            return  # its test took it (and reports it), or it was never planned ahead
        if nodeid not in self._running:
            workload = bench.declaration.workload
            result = BenchmarkResult(nodeid, bench.test_key, bench.platform, workload, str(job.spec.workdir))
            result.references_file, result.fingerprints = str(bench.references_path), bench.fingerprints
            self._running[nodeid] = result
        self._running[nodeid].job_ids.append(job_id)

    def dry_run_text(self, item: pytest.Item, bench: Benchmark) -> str:
        spec = self.jobspec(item, bench)
        return self.backend_for(spec.platform).render(spec)
