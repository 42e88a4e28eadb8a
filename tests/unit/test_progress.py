from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pytest_hetero.backends.base import JobHandle, JobSpec, JobState
from pytest_hetero.config.models import Accelerator, BackendConfig, Platform
from pytest_hetero.progress import Progress
from pytest_hetero.scheduler import Job


class Reporter:
    def __init__(self, isatty: bool) -> None:
        self.isatty = isatty
        self.lines: list[str] = []

    def write_line(self, line: str) -> None:
        self.lines.append(line)

    def rewrite(self, line: str, erase: bool = False) -> None:
        self.lines.append(f"\r{line}")


class Config:
    def __init__(self, reporter: Reporter, verbosity: int) -> None:
        self.reporter, self.verbosity = reporter, verbosity
        self.pluginmanager = self

    def get_plugin(self, name: str) -> Any:
        return self.reporter

    def get_verbosity(self) -> int:
        return self.verbosity


def _job(tmp_path: Path) -> Job:
    platform = Platform(name="a100", accelerator=Accelerator(kind="nvidia-gpu"), backend=BackendConfig(kind="local"))
    spec = JobSpec(name="test_x[a100]", argv=(sys.executable,), workdir=tmp_path, platform=platform)
    return Job(key="k", spec=spec, handle=JobHandle(job_id="4242", spec=spec), state=JobState.RUNNING)


def test_status_line_after_quiet_period(tmp_path: Path) -> None:
    reporter = Reporter(isatty=True)
    progress = Progress(Config(reporter, 0), quiet_s=3.0)  # type: ignore[arg-type]
    job = _job(tmp_path)
    progress(job, 1.0)
    assert reporter.lines == []
    progress(job, 4.2)
    progress(job, 4.3)  # within a second of the last: not repeated
    assert reporter.lines == ["", "\r[hetero] test_x[a100] on a100: running (job 4242), 4 s"]
    progress.clear()
    assert reporter.lines[-1] == "\r"


def test_silent_when_quiet_or_not_a_terminal(tmp_path: Path) -> None:
    for reporter, verbosity in ((Reporter(isatty=False), 0), (Reporter(isatty=True), -1)):
        progress = Progress(Config(reporter, verbosity))  # type: ignore[arg-type]
        progress(_job(tmp_path), 60.0)
        assert reporter.lines == []
