"""A live status line while a benchmark waits: platform, stage, elapsed time."""

from __future__ import annotations

import time

import pytest

from pytest_hetero.backends.base import JobState
from pytest_hetero.scheduler import Job

__all__ = ["Progress"]


class Progress:
    """Rewrites one terminal line at most once a second, after ``quiet_s``.

    Silent under ``-q`` and when the output is not a terminal.
    """

    def __init__(self, config: pytest.Config, quiet_s: float = 3.0) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        enabled = reporter is not None and reporter.isatty and config.get_verbosity() >= 0
        self._reporter = reporter if enabled else None
        self._quiet_s = quiet_s
        self._last = 0.0
        self._shown = False

    def __call__(self, job: Job, elapsed_s: float) -> None:
        if self._reporter is None or elapsed_s < self._quiet_s or time.monotonic() - self._last < 1.0:
            return
        self._last = time.monotonic()
        stage = "queued" if job.state in (JobState.PENDING, JobState.UNKNOWN) else "running"
        if not self._shown:
            self._reporter.write_line("")
            self._shown = True
        job_id = job.handle.job_id if job.handle else "-"
        self._reporter.rewrite(
            f"[hetero] {job.spec.name} on {job.platform_name}: {stage} (job {job_id}), {elapsed_s:.0f} s", erase=True
        )

    def clear(self) -> None:
        if self._reporter is not None and self._shown:
            self._reporter.rewrite("", erase=True)
            self._shown = False
