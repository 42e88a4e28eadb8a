from __future__ import annotations

import sys
from pathlib import Path

from pytest_hetero.backends.base import Backend, JobHandle, JobSpec, JobState
from pytest_hetero.backends.local import LocalBackend, LocalJobHandle
from pytest_hetero.config.models import Accelerator, BackendConfig, Platform
from pytest_hetero.errors import JobFailedError
from pytest_hetero.scheduler import Job, Scheduler


def _platform(max_jobs: int) -> Platform:
    return Platform(
        name=f"p{max_jobs}", accelerator=Accelerator(kind="cpu"), backend=BackendConfig(kind="local"), max_jobs=max_jobs
    )


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
    platform = _platform(max_jobs=2)
    backend = CountingLocal(platform)
    scheduler = Scheduler(lambda spec: backend)
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
    scheduler = Scheduler(lambda spec: backend)
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
    Scheduler(lambda spec: backend).wait_for(job)
    assert isinstance(job.error, JobFailedError)
    assert isinstance(job.handle, LocalJobHandle)
    assert job.handle.state is JobState.CANCELLED and job.handle.proc.poll() is not None
