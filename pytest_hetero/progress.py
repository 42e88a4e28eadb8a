"""Live progress while benchmarks wait: what is in flight, where, in which state, for how long.

On a terminal one status line, rewritten at most once a second, lists every
in-flight job of this process with its platform, its state (``queued`` with
the backend's pending reason, or ``running``) and its elapsed time::

    [hetero] 2 in flight: test_resnet50_tiny[a100] running 1m12s · test_cosmoflow_tiny[cs2] queued (Priority) 40s

Without a terminal (CI logs) there is one line when a job starts running and
one when it ends, with its state and how long it ran. Nothing under ``-q``.
It observes the scheduler (job submitted, state changed, finished) and is
called on every tick of the waiting loop to redraw the line.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_hetero.backends.base import Backend, JobState
from pytest_hetero.scheduler import Job, Scheduler

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Status line on a terminal, start/end lines elsewhere; see the module docstring."""

    def __init__(
        self,
        config: pytest.Config,
        scheduler: Scheduler,
        backend_for: Callable[[Job], Backend],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._scheduler = scheduler
        self._backend_for = backend_for
        self._clock = clock
        self._last_line_at = float("-inf")
        self._shown = False
        self._running_since: dict[str, float] = {}  # job key -> first seen running
        scheduler.observers.append(self._observe)

    def _reporter(self) -> Any | None:
        """pytest's terminal reporter, looked up when needed (it does not exist yet at configure)."""
        if self._config.get_verbosity() < 0:
            return None
        return self._config.pluginmanager.get_plugin("terminalreporter")

    @contextlib.contextmanager
    def _uncaptured(self) -> Iterator[None]:
        """Write past pytest's output capture, which is on while a test's fixtures wait (as live logging does)."""
        capture = self._config.pluginmanager.get_plugin("capturemanager")
        if capture is None:
            yield
            return
        with capture.global_and_fixture_disabled():
            yield

    def __call__(self, job: Job, elapsed_s: float) -> None:
        """A tick of the waiting loop: redraw the status line (terminals only)."""
        reporter = self._reporter()
        if reporter is not None and reporter.isatty:
            self._status_line(reporter, self._scheduler.active_jobs, self._clock())

    def _observe(self, job: Job) -> None:
        now = self._clock()
        started = job.state is JobState.RUNNING and job.key not in self._running_since
        if started:
            self._running_since[job.key] = now
        reporter = self._reporter()
        if reporter is None or reporter.isatty:
            return
        if started:
            self._write(reporter, f"[hetero] started: {job.spec.name} ({self._where(job)})")
        elif job.done:
            began = self._running_since.pop(job.key, job.submitted_at if job.submitted_at is not None else now)
            end = "not tracked any more" if job.error is not None else job.state.value.lower()
            took = format_duration(now - began)
            self._write(reporter, f"[hetero] {end}: {job.spec.name} ({self._where(job)}) after {took}")

    # -- on a terminal ----------------------------------------------------------
    def _status_line(self, reporter: Any, active: tuple[Job, ...], now: float) -> None:
        waiting = self._scheduler.waiting_count
        if now - self._last_line_at < 1.0 or not (active or waiting):
            return
        self._last_line_at = now
        parts = [self._describe(job, now) for job in active]
        text = f"[hetero] {len(active)} in flight: " + " · ".join(parts)
        if waiting:  # e.g. another run on this host holds the resource group's slot
            text = f"{text}{' · ' if parts else ''}{waiting} waiting for a free slot"
        width = getattr(reporter, "_tw", None)
        limit = (width.fullwidth - 1) if width is not None else 200
        with self._uncaptured():
            if not self._shown:
                reporter.ensure_newline()
                self._shown = True
            reporter.rewrite(text[:limit], erase=True)

    def _describe(self, job: Job, now: float) -> str:
        if job.key in self._running_since:
            return f"{job.spec.name} running {format_duration(now - self._running_since[job.key])}"
        reason = self._pending_reason(job)
        waited = now - job.submitted_at if job.submitted_at is not None else 0.0
        return f"{job.spec.name} queued{f' ({reason})' if reason else ''} {format_duration(waited)}"

    def _pending_reason(self, job: Job) -> str:
        if job.handle is None:
            return ""
        try:
            return self._backend_for(job).pending_reason(job.handle)
        except Exception:  # a courtesy for the display: never let it fail a benchmark
            return ""

    @staticmethod
    def _where(job: Job) -> str:
        return f"{job.platform_name}, job {job.handle.job_id if job.handle else '-'}"

    def _write(self, reporter: Any, line: str) -> None:
        with self._uncaptured():
            reporter.ensure_newline()
            reporter.write_line(line)

    def clear(self) -> None:
        """Before the test's own output: erase the status line."""
        reporter = self._reporter()
        if reporter is not None and reporter.isatty and self._shown:
            with self._uncaptured():
                reporter.rewrite("", erase=True)
            self._shown = False
            self._last_line_at = float("-inf")
