"""Submit ahead, wait per test.

Remote jobs queue for minutes. The session plans every selected benchmark's
job at collection time; the scheduler keeps each platform's ``max_jobs``
slots busy, in test order, while pytest runs the tests one by one. There is
no thread per job: whichever test is waiting polls *all* active jobs with
back-off, harvesting finished ones and refilling free slots.

A job is submitted only once it holds a slot of its platform (``max_jobs``) and
one of its resource group, both of which hold across processes
(:mod:`pytest_hetero.isolation`); it gives them back when it is seen ending or is
cancelled. Meanwhile its window is recorded (:mod:`pytest_hetero.contention`).

Costs do not grow with the number of jobs queued: each platform has its own
queue and count of jobs in flight, a pass over the queues looks at each
platform's head only (and stops at the first platform or group found full),
and a poll asks each backend once for the state of all its active jobs
(:meth:`~pytest_hetero.backends.base.Backend.statuses`).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pytest_hetero.backends.base import Backend, JobHandle, JobOutput, JobSpec, JobState, raise_for_state
from pytest_hetero.config.models import ResourceGroup
from pytest_hetero.contention import Window
from pytest_hetero.errors import HeteroError, JobTimeoutError
from pytest_hetero.interrupts import InterruptedSubmission
from pytest_hetero.isolation import Hold, Isolation

__all__ = ["Job", "Scheduler", "run_job", "wait_for_handle"]

Tick = Callable[["Job", float], None]
_order = itertools.count()


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
    #: The platform and group slots it holds while in flight.
    hold: Hold | None = None
    #: When it may have been running (wall clock), from just before submission.
    window: Window | None = None
    #: Its place in the order of submission (planned order; a job waited for unplanned goes first).
    order: int = field(default_factory=lambda: next(_order))

    @property
    def done(self) -> bool:
        return self.error is not None or self.state.finished

    @property
    def platform_name(self) -> str:
        return self.spec.platform.name


class Scheduler:
    def __init__(self, backend_for: Callable[[JobSpec], Backend], isolation: Isolation | None = None) -> None:
        self._backend_for = backend_for
        self.isolation = isolation or Isolation()
        self._submitted = 0  # submissions so far: a new one resets the wait loop's back-off
        #: Per platform: jobs waiting for a slot, in order (a discarded one stays until it reaches the head).
        self._queues: dict[str, deque[Job]] = {}
        self._queued: set[Job] = set()
        #: Per platform: jobs in flight, oldest first (dicts keep order and remove in O(1)).
        self._active: dict[str, dict[Job, None]] = {}
        self._cut_short: list[Job] = []  # interrupted while submitted: cancelled by the backend
        #: Called with a job when it is submitted (or fails to be), changes state, or finishes.
        self.observers: list[Callable[[Job], None]] = []

    def _notify(self, job: Job) -> None:
        for observer in self.observers:
            observer(job)

    def plan(self, jobs: Iterable[Job]) -> None:
        """Queue jobs for submission ahead of their tests, in order."""
        for job in jobs:
            self._enqueue(job)
        self.fill()

    def _enqueue(self, job: Job, *, first: bool = False) -> None:
        queue = self._queues.setdefault(job.platform_name, deque())
        if first:
            job.order = -next(_order)
            queue.appendleft(job)
        else:
            queue.append(job)
        self._queued.add(job)

    @property
    def active_jobs(self) -> tuple[Job, ...]:
        """The jobs submitted and not yet finished, oldest first (for progress displays)."""
        jobs = [job for active in self._active.values() for job in active]
        return tuple(sorted(jobs, key=lambda job: job.submitted_at or 0.0))

    @property
    def waiting_count(self) -> int:
        """Jobs planned but not submitted yet: their platform or resource group has no free slot."""
        return len(self._queued)

    def adopt(self, job: Job) -> None:
        """Track a job submitted elsewhere (it has a handle) as active."""
        assert job.handle is not None
        self._active.setdefault(job.platform_name, {})[job] = None

    def fill(self) -> None:
        """Submit queued jobs, in order, whose platform and resource group both have a free slot.

        Platforms take turns by the order of their next job, so platforms of one resource
        group share it in test order. A pass stops on a platform at its first job that finds
        the platform or its group full: it costs a few lock attempts per platform, not per job.
        """
        busy: set[str] = set()  # platforms and groups found full in this pass
        heads = [(self._head(name), name) for name in list(self._queues)]
        for _, name in sorted((head.order, name) for head, name in heads if head is not None):
            self._fill_platform(name, busy)

    def _head(self, platform: str) -> Job | None:
        """The first job still queued for ``platform`` (dropping discarded ones on the way)."""
        queue = self._queues[platform]
        while queue and queue[0] not in self._queued:
            queue.popleft()
        if not queue:
            del self._queues[platform]
            return None
        return queue[0]

    def _fill_platform(self, name: str, busy: set[str]) -> None:
        while (job := self._head(name)) is not None:
            if len(self._active.get(name, ())) >= job.spec.platform.max_jobs:
                return
            try:
                backend = self._backend_for(job.spec)
                group = backend.resource_group
                job.hold = self.isolation.try_hold(job.spec.platform, group, busy)
            except HeteroError as exc:
                self._unqueue(job)
                self._fail(job, exc)
                continue
            if job.hold is None:
                return
            self._unqueue(job)
            self._submit(job, backend, group)

    def _unqueue(self, job: Job) -> None:
        self._queued.discard(job)
        queue = self._queues.get(job.platform_name)
        if queue and queue[0] is job:
            queue.popleft()

    def _submit(self, job: Job, backend: Backend, group: ResourceGroup | None) -> None:
        started = time.monotonic()
        try:
            job.window = self.isolation.open(job.key, job.spec.platform, group, backend.runs_on_this_host)
            job.handle = backend.submit(job.spec)
        except HeteroError as exc:
            self._fail(job, exc)
            return
        except BaseException as exc:
            self._close(job)
            if isinstance(exc, InterruptedSubmission) and exc.job_id is not None:  # submitted, then cancelled
                job.handle, job.state = JobHandle(job_id=exc.job_id, spec=job.spec), JobState.CANCELLED
                self._cut_short.append(job)
            raise
        finally:
            job.submit_s = time.monotonic() - started
        job.window.job_id = job.handle.job_id
        self._submitted += 1
        job.submitted_at = job.handle.submitted_at
        job.state = JobState.PENDING
        self._active.setdefault(job.platform_name, {})[job] = None
        self._notify(job)

    def _fail(self, job: Job, error: HeteroError) -> None:
        """The job could not be submitted."""
        job.error = error
        job.finished_at = time.monotonic()
        self._close(job)
        self._notify(job)

    def _close(self, job: Job) -> None:
        """Close the job's window, then give its slots back (its end is recorded before anyone else starts)."""
        self.isolation.close(job.window, job.hold)
        job.hold = None

    def _retire(self, job: Job) -> None:
        active = self._active.get(job.platform_name)
        if active is not None:
            active.pop(job, None)
            if not active:
                del self._active[job.platform_name]

    def poll(self) -> None:
        """Refresh every active job once (one status query per backend); retire the finished, enforce deadlines."""
        by_backend: dict[int, tuple[Backend, list[Job]]] = {}
        for active in self._active.values():
            for job in active:
                backend = self._backend_for(job.spec)
                by_backend.setdefault(id(backend), (backend, []))[1].append(job)
        for backend, jobs in by_backend.values():
            self._poll_backend(backend, jobs)
        self.fill()

    def _poll_backend(self, backend: Backend, jobs: list[Job]) -> None:
        handles = [job.handle for job in jobs if job.handle is not None]
        answers = backend.statuses(handles)
        now = time.monotonic()
        for job, answer in zip(jobs, answers, strict=True):
            before = job.state
            self._apply(job, backend, answer, now)
            if job.error is None:
                self.isolation.seen(job.window, job.state)
            if job.done:
                job.finished_at = now
                self._retire(job)
                self._close(job)
            if job.done or job.state is not before:
                self._notify(job)

    def _apply(self, job: Job, backend: Backend, answer: JobState | HeteroError, now: float) -> None:
        assert job.handle is not None
        try:
            if isinstance(answer, HeteroError):
                raise answer
            job.state = answer
            if not job.state.finished and now > job.handle.deadline:
                backend.cancel(job.handle)
                limit_s = job.handle.deadline - job.handle.submitted_at
                job.error = JobTimeoutError(f"no result {limit_s:.0f} s after submission", job_id=job.handle.job_id)
        except HeteroError as exc:
            job.error = exc
            # Given up on: whatever still runs of it must not outlive the run.
            with contextlib.suppress(HeteroError):
                backend.cancel(job.handle)

    def _is_active(self, job: Job) -> bool:
        return job in self._active.get(job.platform_name, ())

    def wait_for(self, job: Job, on_tick: Tick | None = None) -> Job:
        """Block until ``job`` is done, keeping every other job moving meanwhile."""
        if not self._is_active(job) and job not in self._queued and not job.done:
            self._enqueue(job, first=True)  # not planned ahead (xdist, imperative use)
        backend = self._backend_for(job.spec)
        interval_s = backend.poll_initial_s
        waiting_since = time.monotonic()
        submitted = self._submitted
        while True:
            self.poll()
            if job.done:
                return job
            if on_tick is not None:
                on_tick(job, time.monotonic() - waiting_since)
            if self._submitted != submitted:  # after a long wait for a slot, a job that just started is watched closely
                submitted, interval_s = self._submitted, backend.poll_initial_s
            time.sleep(backend.next_poll_s(job.handle, interval_s))
            interval_s = min(interval_s * backend.poll_factor, backend.poll_max_s)

    def discard(self, jobs: list[Job]) -> list[Job]:
        """Drop jobs that are no longer wanted: unqueue them, cancel those running (returned)."""
        cancelled = []
        for job in jobs:
            if job in self._queued:
                self._queued.discard(job)  # left in its queue until it reaches the head
            elif self._is_active(job) and job.handle is not None:
                self._retire(job)
                with contextlib.suppress(HeteroError):
                    self._backend_for(job.spec).cancel(job.handle)
                job.state = JobState.CANCELLED
                self._close(job)
                cancelled.append(job)
        return cancelled

    def shutdown(self) -> list[Job]:
        """Cancel everything still queued or running; return the cancelled jobs."""
        cancelled = list(self.active_jobs)
        self._queues.clear()
        self._queued.clear()
        for job in cancelled:
            assert job.handle is not None
            with contextlib.suppress(HeteroError):  # best effort: report the rest
                self._backend_for(job.spec).cancel(job.handle)
                job.state = JobState.CANCELLED
            self._close(job)
        self._active.clear()
        cut_short, self._cut_short = self._cut_short, []
        return cancelled + cut_short


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
