"""Submit ahead, wait per test.

Remote jobs queue for minutes. The session plans every selected benchmark's
job at collection time; the scheduler keeps each platform's ``max_jobs``
slots busy, in test order, while pytest runs the tests one by one. There is
no thread per job: whichever test is waiting polls *all* active jobs with
back-off, harvesting finished ones and refilling free slots.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pytest_hetero.backends.base import Backend, JobHandle, JobOutput, JobSpec, JobState, raise_for_state
from pytest_hetero.errors import HeteroError, JobTimeoutError

__all__ = ["Job", "Scheduler", "run_job", "wait_for_handle"]

Tick = Callable[["Job", float], None]


@dataclass(eq=False)
class Job:
    """One benchmark job through its life: planned, submitted, finished."""

    key: str
    spec: JobSpec
    handle: JobHandle | None = None
    state: JobState = JobState.PENDING
    error: HeteroError | None = None
    submitted_at: float | None = None
    finished_at: float | None = None
    submit_s: float = 0.0

    @property
    def done(self) -> bool:
        return self.error is not None or self.state.finished

    @property
    def platform_name(self) -> str:
        return self.spec.platform.name


class Scheduler:
    def __init__(self, backend_for: Callable[[JobSpec], Backend]) -> None:
        self._backend_for = backend_for
        self._queue: list[Job] = []
        self._active: list[Job] = []
        #: Called with a job when it is submitted (or fails to be), changes state, or finishes.
        self.observers: list[Callable[[Job], None]] = []

    def _notify(self, job: Job) -> None:
        for observer in self.observers:
            observer(job)

    def plan(self, jobs: Iterable[Job]) -> None:
        """Queue jobs for submission ahead of their tests, in order."""
        self._queue.extend(jobs)
        self.fill()

    @property
    def active_jobs(self) -> tuple[Job, ...]:
        """The jobs submitted and not yet finished, oldest first (for progress displays)."""
        return tuple(self._active)

    def adopt(self, job: Job) -> None:
        """Track a job submitted elsewhere (it has a handle) as active."""
        assert job.handle is not None
        self._active.append(job)

    def fill(self) -> None:
        """Submit queued jobs while their platform has a free slot."""
        for job in list(self._queue):
            if self._running_on(job.platform_name) < job.spec.platform.max_jobs:
                self._queue.remove(job)
                self._submit(job)

    def _running_on(self, platform: str) -> int:
        return sum(1 for job in self._active if job.platform_name == platform)

    def _submit(self, job: Job) -> None:
        started = time.monotonic()
        try:
            job.handle = self._backend_for(job.spec).submit(job.spec)
        except HeteroError as exc:
            job.error = exc
            job.finished_at = time.monotonic()
            self._notify(job)
            return
        finally:
            job.submit_s = time.monotonic() - started
        job.submitted_at = job.handle.submitted_at
        job.state = JobState.PENDING
        self._active.append(job)
        self._notify(job)

    def poll(self) -> None:
        """Refresh every active job once; retire the finished, enforce deadlines."""
        for job in list(self._active):
            before = job.state
            self._poll_one(job)
            if job.done:
                job.finished_at = time.monotonic()
                self._active.remove(job)
            if job.done or job.state is not before:
                self._notify(job)
        self.fill()

    def _poll_one(self, job: Job) -> None:
        assert job.handle is not None
        backend = self._backend_for(job.spec)
        try:
            job.state = backend.status(job.handle)
            if not job.state.finished and time.monotonic() > job.handle.deadline:
                backend.cancel(job.handle)
                limit_s = job.handle.deadline - job.handle.submitted_at
                job.error = JobTimeoutError(f"no result {limit_s:.0f} s after submission", job_id=job.handle.job_id)
        except HeteroError as exc:
            job.error = exc
            # Given up on: whatever still runs of it must not outlive the run.
            with contextlib.suppress(HeteroError):
                backend.cancel(job.handle)

    def wait_for(self, job: Job, on_tick: Tick | None = None) -> Job:
        """Block until ``job`` is done, keeping every other job moving meanwhile."""
        if job not in self._active and job not in self._queue and not job.done:
            self._queue.insert(0, job)  # not planned ahead (xdist, imperative use)
        backend = self._backend_for(job.spec)
        interval_s = backend.poll_initial_s
        waiting_since = time.monotonic()
        while True:
            self.poll()
            if job.done:
                return job
            if on_tick is not None:
                on_tick(job, time.monotonic() - waiting_since)
            time.sleep(interval_s)
            interval_s = min(interval_s * backend.poll_factor, backend.poll_max_s)

    def discard(self, jobs: list[Job]) -> list[Job]:
        """Drop jobs that are no longer wanted: unqueue them, cancel those running (returned)."""
        cancelled = []
        for job in jobs:
            if job in self._queue:
                self._queue.remove(job)
            elif job in self._active and job.handle is not None:
                self._active.remove(job)
                with contextlib.suppress(HeteroError):
                    self._backend_for(job.spec).cancel(job.handle)
                job.state = JobState.CANCELLED
                cancelled.append(job)
        return cancelled

    def shutdown(self) -> list[Job]:
        """Cancel everything still queued or running; return the cancelled jobs."""
        cancelled = list(self._active)
        self._queue.clear()
        for job in cancelled:
            assert job.handle is not None
            try:
                self._backend_for(job.spec).cancel(job.handle)
            except HeteroError:
                continue  # best effort: report the rest
            job.state = JobState.CANCELLED
        self._active.clear()
        return cancelled


def wait_for_handle(backend: Backend, handle: JobHandle) -> Job:
    """Wait, through the scheduler's loop, for a job already submitted to ``backend``."""
    job = Job(handle.job_id, handle.spec, handle=handle, submitted_at=handle.submitted_at)
    scheduler = Scheduler(lambda _spec: backend)
    scheduler.adopt(job)
    return scheduler.wait_for(job)


def run_job(backend: Backend, spec: JobSpec) -> JobOutput:
    """One job on ``backend`` from submission to output, outside a pytest session.

    Submits, waits through the scheduler's loop, collects, and raises the stage
    error of a bad end state; an error or interrupt on the way cancels the job.
    """
    scheduler = Scheduler(lambda _spec: backend)
    job = Job(spec.name, spec)
    try:
        scheduler.wait_for(job)
    except BaseException:
        scheduler.shutdown()
        raise
    if job.error is not None:
        raise job.error
    assert job.handle is not None
    output = backend.collect(job.handle)
    raise_for_state(output)
    return output
