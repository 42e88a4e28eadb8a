from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_hetero.backends.base import Backend, JobHandle, JobOutput, JobSpec, JobState
from pytest_hetero.backends.local import LocalBackend, LocalJobHandle
from pytest_hetero.config.models import Accelerator, BackendConfig, Platform, ResourceGroup
from pytest_hetero.errors import HeteroError, JobFailedError
from pytest_hetero.isolation import Hold, Isolation
from pytest_hetero.scheduler import Job, Scheduler


def _platform(max_jobs: int, name: str = "", group: ResourceGroup | None = None) -> Platform:
    return Platform(
        name=name or f"p{max_jobs}",
        accelerator=Accelerator(kind="cpu"),
        backend=BackendConfig(kind="local"),
        max_jobs=max_jobs,
        resource_group=group,
    )


def _isolation(tmp_path: Path, run: str = "run") -> Isolation:
    """The test's own host-wide lock directory: no other test or run on this host shares its groups."""
    return Isolation(tmp_path / run, host_dir=tmp_path / "host-locks")


class CountingLocal(LocalBackend):
    """The real local backend, recording how many jobs ran at once."""

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.running_max = 0
        self.handles: list[LocalJobHandle] = []

    def submit(self, spec: JobSpec) -> LocalJobHandle:
        handle = super().submit(spec)
        self.handles.append(handle)
        running = sum(1 for h in self.handles if not h.state.finished)
        self.running_max = max(self.running_max, running)
        return handle


def _jobs(tmp_path: Path, platform: Platform, count: int, sleep_s: float) -> list[Job]:
    code = f"import time; time.sleep({sleep_s}); print('ok')"
    return [
        Job(
            key=f"t{i}",
            spec=JobSpec(name=f"t{i}", argv=(sys.executable, "-c", code), workdir=tmp_path / str(i), platform=platform),
        )
        for i in range(count)
    ]


def test_submits_ahead_bounded_by_max_jobs(tmp_path: Path) -> None:
    platform = _platform(max_jobs=2, group=ResourceGroup("wide", max_jobs=4))
    backend = CountingLocal(platform)
    scheduler = Scheduler(lambda spec: backend, _isolation(tmp_path))
    jobs = _jobs(tmp_path, platform, 5, 0.3)
    scheduler.plan(jobs)
    assert [j.handle is not None for j in jobs] == [True, True, False, False, False]
    for job in jobs:
        scheduler.wait_for(job)
        assert job.state is JobState.COMPLETED
    assert backend.running_max == 2


def test_unplanned_job_jumps_the_queue_and_shutdown_cancels(tmp_path: Path) -> None:
    platform = _platform(max_jobs=1)
    backend: Backend = LocalBackend(platform)
    scheduler = Scheduler(lambda spec: backend, _isolation(tmp_path))
    slow = _jobs(tmp_path / "slow", platform, 2, 30)
    scheduler.plan(slow)
    cancelled = scheduler.shutdown()
    assert cancelled == [slow[0]] and slow[0].state is JobState.CANCELLED
    assert slow[1].handle is None
    quick = _jobs(tmp_path / "quick", platform, 1, 0)[0]
    assert scheduler.wait_for(quick).state is JobState.COMPLETED


class UnreachableLocal(LocalBackend):
    """The real local backend whose status query fails, as when a controller stops answering."""

    def status(self, handle: JobHandle) -> JobState:
        raise JobFailedError("status: the controller stopped answering", job_id=handle.job_id)


def test_a_job_given_up_on_is_cancelled(tmp_path: Path) -> None:
    platform = _platform(max_jobs=1)
    backend = UnreachableLocal(platform)
    job = _jobs(tmp_path, platform, 1, 30)[0]
    Scheduler(lambda spec: backend, _isolation(tmp_path)).wait_for(job)
    assert isinstance(job.error, JobFailedError)
    assert isinstance(job.handle, LocalJobHandle)
    assert job.handle.state is JobState.CANCELLED and job.handle.proc.poll() is not None


def _windows_disjoint(jobs: list[Job]) -> bool:
    spans = sorted((job.window.start_unix_s, job.window.end_unix_s or float("inf")) for job in jobs if job.window)
    return all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))


def test_platforms_of_one_resource_group_take_turns(tmp_path: Path) -> None:
    """Two local platforms, the host's default group: submitted ahead, yet one job at a time."""
    platforms = [_platform(max_jobs=2, name="a"), _platform(max_jobs=2, name="b")]
    backends = {p.name: CountingLocal(p) for p in platforms}
    assert {b.resource_group for b in backends.values()} == {LocalBackend.default_resource_group()}
    scheduler = Scheduler(lambda spec: backends[spec.platform.name], _isolation(tmp_path))
    jobs = _jobs(tmp_path / "a", platforms[0], 2, 0.2) + _jobs(tmp_path / "b", platforms[1], 2, 0.2)
    scheduler.plan(jobs)
    assert [j.handle is not None for j in jobs] == [True, False, False, False]
    for job in reversed(jobs):  # waiting for the last keeps the others moving
        assert scheduler.wait_for(job).state is JobState.COMPLETED
    assert _windows_disjoint(jobs)
    assert all(job.hold is None for job in jobs), "every slot given back"


def test_max_jobs_holds_across_schedulers_of_one_run(tmp_path: Path) -> None:
    """Two schedulers on one run directory, as two xdist workers: one slot between them."""
    platform = _platform(max_jobs=1, group=ResourceGroup("wide", max_jobs=4))
    backend = LocalBackend(platform)
    first, second = (Scheduler(lambda spec: backend, _isolation(tmp_path)) for _ in range(2))
    held, waiting = _jobs(tmp_path / "1", platform, 1, 30)[0], _jobs(tmp_path / "2", platform, 1, 0)[0]
    first.plan([held])
    second.plan([waiting])
    second.poll()
    assert held.handle is not None and waiting.handle is None
    assert first.discard([held]) == [held] and held.hold is None
    assert second.wait_for(waiting).state is JobState.COMPLETED
    assert _windows_disjoint([held, waiting])


def test_another_run_on_this_host_waits_for_the_group(tmp_path: Path) -> None:
    """Groups lock host-wide: a scheduler of another run directory waits too, until shutdown frees the slot."""
    platform = _platform(max_jobs=1)
    backend = LocalBackend(platform)
    first = Scheduler(lambda spec: backend, _isolation(tmp_path, "run-1"))
    second = Scheduler(lambda spec: backend, _isolation(tmp_path, "run-2"))
    held, waiting = _jobs(tmp_path / "1", platform, 1, 30)[0], _jobs(tmp_path / "2", platform, 1, 0)[0]
    first.plan([held])
    second.plan([waiting])
    assert held.handle is not None and waiting.handle is None
    assert first.shutdown() == [held]
    assert second.wait_for(waiting).state is JobState.COMPLETED


def test_a_failed_submission_gives_its_slots_back(tmp_path: Path) -> None:
    platform = _platform(max_jobs=1)
    backend = LocalBackend(platform)
    scheduler = Scheduler(lambda spec: backend, _isolation(tmp_path))
    bad = Job("bad", JobSpec(name="bad", argv=("/nonexistent/cmd",), workdir=tmp_path / "bad", platform=platform))
    good = _jobs(tmp_path, platform, 1, 0)[0]
    scheduler.plan([bad, good])
    assert bad.error is not None and bad.hold is None
    assert scheduler.wait_for(good).state is JobState.COMPLETED


class SteppedBackend(Backend):
    """Runs nothing: a job finishes on the ``polls_to_finish``-th status query after its submission.

    It counts the queries: per poll, how many batch calls and for how many jobs.
    """

    name = "stepped"

    def __init__(self, platform: Platform, polls_to_finish: int = 3) -> None:
        super().__init__(platform)
        self.polls_to_finish = polls_to_finish
        self.batches: list[int] = []
        self.single_calls = 0
        self._seen: dict[str, int] = {}

    def submit(self, spec: JobSpec) -> JobHandle:
        return JobHandle(job_id=spec.name, spec=spec)

    def status(self, handle: JobHandle) -> JobState:
        self.single_calls += 1
        return self._advance(handle)

    def statuses(self, handles: Sequence[JobHandle]) -> list[JobState | HeteroError]:
        self.batches.append(len(handles))
        return [self._advance(handle) for handle in handles]

    def _advance(self, handle: JobHandle) -> JobState:
        seen = self._seen[handle.job_id] = self._seen.get(handle.job_id, 0) + 1
        return JobState.COMPLETED if seen >= self.polls_to_finish else JobState.RUNNING

    def cancel(self, handle: JobHandle) -> None:
        pass

    def collect(self, handle: JobHandle) -> JobOutput:
        raise NotImplementedError


def _stepped_jobs(platform: Platform, count: int, tmp_path: Path) -> list[Job]:
    return [
        Job(f"s{i}", JobSpec(name=f"s{i}", argv=("true",), workdir=tmp_path, platform=platform)) for i in range(count)
    ]


def test_one_status_query_per_backend_per_poll(tmp_path: Path) -> None:
    """Two platforms, three jobs in flight on each: every poll asks each backend once, for all its jobs."""
    backends = {name: SteppedBackend(_platform(max_jobs=3, name=name)) for name in ("a", "b")}
    scheduler = Scheduler(lambda spec: backends[spec.platform.name], _isolation(tmp_path))
    scheduler.plan(
        _stepped_jobs(backends["a"].platform, 6, tmp_path) + _stepped_jobs(backends["b"].platform, 6, tmp_path)
    )
    polls = 0
    while scheduler.active_jobs:
        scheduler.poll()
        polls += 1
    for backend in backends.values():
        assert backend.single_calls == 0
        assert len(backend.batches) == polls
        assert backend.batches == [3, 3, 3, 3, 3, 3]  # three polls for the first three, three for the rest


class CountingIsolation(Isolation):
    """Real file-lock slots; counts the attempts to take them."""

    attempts = 0

    def try_hold(self, platform: Platform, group: ResourceGroup | None, busy: set[str]) -> Hold | None:
        self.attempts += 1
        return super().try_hold(platform, group, busy)


def test_a_poll_costs_nothing_per_queued_job(tmp_path: Path) -> None:
    """1,000 jobs queued behind a full platform: a poll takes no slot attempt for any of them."""
    backend = SteppedBackend(_platform(max_jobs=2), polls_to_finish=10**6)
    isolation = CountingIsolation(tmp_path / "run", host_dir=tmp_path / "host-locks")
    scheduler = Scheduler(lambda spec: backend, isolation)
    scheduler.plan(_stepped_jobs(backend.platform, 1000, tmp_path))
    assert (len(scheduler.active_jobs), scheduler.waiting_count, isolation.attempts) == (2, 998, 2)
    for _ in range(5):
        scheduler.poll()
    assert isolation.attempts == 2 and backend.batches == [2] * 5


def test_a_platform_full_in_another_process_costs_one_attempt_per_pass(tmp_path: Path) -> None:
    """Another xdist worker holds the only slot: each pass tries the head of the queue once, not every job."""
    platform = _platform(max_jobs=1)
    other = Scheduler(lambda spec: SteppedBackend(platform, polls_to_finish=10**6), _isolation(tmp_path))
    other.plan(_stepped_jobs(platform, 1, tmp_path))
    backend = SteppedBackend(platform)
    isolation = CountingIsolation(tmp_path / "run", host_dir=tmp_path / "host-locks")
    scheduler = Scheduler(lambda spec: backend, isolation)
    scheduler.plan(_stepped_jobs(platform, 500, tmp_path))
    scheduler.poll()
    assert isolation.attempts == 2 and scheduler.waiting_count == 500
    other.shutdown()
    scheduler.poll()
    assert len(scheduler.active_jobs) == 1 and scheduler.waiting_count == 499


def test_discarded_jobs_leave_the_queue_and_order_holds(tmp_path: Path) -> None:
    backend = SteppedBackend(_platform(max_jobs=1), polls_to_finish=1)
    scheduler = Scheduler(lambda spec: backend, _isolation(tmp_path))
    jobs = _stepped_jobs(backend.platform, 4, tmp_path)
    scheduler.plan(jobs)
    assert scheduler.discard([jobs[1]]) == [] and scheduler.waiting_count == 2
    for job in (jobs[3], jobs[0], jobs[2]):
        assert scheduler.wait_for(job).state is JobState.COMPLETED
    assert jobs[1].handle is None
    started = [job.submitted_at or 0.0 for job in (jobs[0], jobs[2], jobs[3])]
    assert started == sorted(started), "submitted in planned order"
