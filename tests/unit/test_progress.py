from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from pytest_hetero.backends.base import Backend, JobHandle, JobSpec, JobState
from pytest_hetero.backends.fake import FakeBackend
from pytest_hetero.config.models import Accelerator, BackendConfig, Platform
from pytest_hetero.progress import Progress, format_duration
from pytest_hetero.scheduler import Job, Scheduler


class Reporter:
    def __init__(self, isatty: bool) -> None:
        self.isatty = isatty
        self.lines: list[str] = []

    def ensure_newline(self) -> None:
        pass

    def write_line(self, line: str) -> None:
        self.lines.append(line)

    def rewrite(self, line: str, erase: bool = False) -> None:
        self.lines.append(f"\r{line}")


class Config:
    def __init__(self, reporter: Reporter, verbosity: int) -> None:
        self.reporter, self.verbosity = reporter, verbosity
        self.pluginmanager = self

    def get_plugin(self, name: str) -> Any:
        return self.reporter if name == "terminalreporter" else None

    def get_verbosity(self) -> int:
        return self.verbosity


class PendingFake(FakeBackend):
    def pending_reason(self, handle: JobHandle) -> str:
        return "Priority"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PLATFORM = Platform(name="a100", accelerator=Accelerator(kind="nvidia-gpu"), backend=BackendConfig(kind="fake"))


def _job(tmp_path: Path, name: str, state: JobState) -> Job:
    spec = JobSpec(name=name, argv=(sys.executable,), workdir=tmp_path, platform=PLATFORM)
    return Job(key=name, spec=spec, handle=JobHandle(job_id="4242", spec=spec), state=state, submitted_at=990.0)


def _progress(reporter: Reporter, verbosity: int = 0) -> tuple[Progress, Scheduler, Clock]:
    backend: Backend = PendingFake(PLATFORM)
    scheduler = Scheduler(lambda spec: backend)
    clock = Clock()
    progress = Progress(Config(reporter, verbosity), scheduler, lambda job: backend, clock=clock)  # type: ignore[arg-type]
    return progress, scheduler, clock


def test_a_terminal_gets_one_line_with_every_job_in_flight(tmp_path: Path) -> None:
    reporter = Reporter(isatty=True)
    progress, scheduler, clock = _progress(reporter)
    running, queued = _job(tmp_path, "test_x[a100]", JobState.RUNNING), _job(tmp_path, "test_y[a100]", JobState.PENDING)
    for job in (running, queued):
        scheduler.adopt(job)
        scheduler.observers[0](job)
    clock.now += 72
    progress(running, 0.0)
    progress(running, 0.1)  # within a second of the last: not redrawn
    assert reporter.lines == [
        "\r[hetero] 2 in flight: test_x[a100] running 1m12s · test_y[a100] queued (Priority) 1m22s"
    ]
    progress.clear()
    assert reporter.lines[-1] == "\r"


def test_without_a_terminal_one_line_per_start_and_end(tmp_path: Path) -> None:
    reporter = Reporter(isatty=False)
    progress, scheduler, clock = _progress(reporter)
    job = _job(tmp_path, "test_x[a100]", JobState.PENDING)
    scheduler.observers[0](job)  # submitted, still queued: nothing yet
    job.state = JobState.RUNNING
    scheduler.observers[0](job)
    scheduler.observers[0](job)  # told once
    clock.now += 5
    progress(job, 5.0)  # ticks draw nothing without a terminal
    job.state = JobState.COMPLETED
    scheduler.observers[0](job)
    assert reporter.lines == [
        "[hetero] started: test_x[a100] (a100, job 4242)",
        "[hetero] completed: test_x[a100] (a100, job 4242) after 5s",
    ]


def test_silent_under_quiet(tmp_path: Path) -> None:
    for isatty in (True, False):
        reporter = Reporter(isatty=isatty)
        progress, scheduler, _ = _progress(reporter, verbosity=-1)
        job = _job(tmp_path, "t", JobState.RUNNING)
        scheduler.adopt(job)
        scheduler.observers[0](job)
        progress(job, 60.0)
        assert reporter.lines == []


def test_durations_read_well() -> None:
    assert [format_duration(s) for s in (0, 59.9, 61, 3599, 3600, 7322)] == [
        "0s",
        "59s",
        "1m01s",
        "59m59s",
        "1h00m",
        "2h02m",
    ]


def test_jobs_waiting_for_a_slot_are_counted(tmp_path: Path) -> None:
    reporter = Reporter(isatty=True)
    progress, scheduler, _ = _progress(reporter)
    platform = dataclasses.replace(PLATFORM, max_jobs=1)
    specs = [
        JobSpec(name=f"t{i}", argv=(sys.executable,), workdir=tmp_path / str(i), platform=platform) for i in (1, 2)
    ]
    scheduler.plan([Job(key=spec.name, spec=spec) for spec in specs])
    progress(scheduler.active_jobs[0], 0.0)
    assert reporter.lines[-1].startswith("\r[hetero] 1 in flight: t1 queued")
    assert reporter.lines[-1].endswith(" · 1 waiting for a free slot")
