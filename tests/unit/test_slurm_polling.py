"""Slurm polling: one sacct for all of a platform's jobs per poll; how soon a running job is polled again."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from pytest_hetero.backends.base import JobSpec, JobState
from pytest_hetero.backends.slurm import SlurmBackend, SlurmJobHandle
from pytest_hetero.backends.slurm_script import EXIT_FILE
from pytest_hetero.config.loader import parse_catalogue
from pytest_hetero.config.models import Platform

FAKE_SACCT = """#!/bin/sh
echo "$@" >> "{calls}"
echo "101|RUNNING|0:0|3"
echo "102|COMPLETED|0:0|4"
echo "103|FAILED|2:0|1"
echo "104|PENDING|0:0|0"
"""


def _platform() -> Platform:
    entry = {"name": "s", "accelerator": {"kind": "cpu"}, "backend": {"kind": "slurm"}}
    return parse_catalogue({"version": 1, "platforms": [entry]}, "test").platforms[0]


def _fake_sacct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put FAKE_SACCT first on PATH; returns the file it appends each call to."""
    calls = tmp_path / "calls"
    sacct = tmp_path / "bin" / "sacct"
    sacct.parent.mkdir()
    sacct.write_text(FAKE_SACCT.format(calls=calls))
    sacct.chmod(sacct.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{sacct.parent}{os.pathsep}{os.environ['PATH']}")
    return calls


def _handle(job_id: str, platform: Platform, tmp_path: Path) -> SlurmJobHandle:
    return SlurmJobHandle(job_id=job_id, spec=JobSpec(job_id, ("true",), tmp_path, platform))


def test_one_sacct_answers_every_job_of_the_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_sacct(tmp_path, monkeypatch)
    platform = _platform()
    backend = SlurmBackend(platform)
    handles = [_handle(job_id, platform, tmp_path) for job_id in ("101", "102", "103")]
    backend._unfinished.update({h.job_id: h for h in handles})  # as submit() records them
    assert backend.statuses(handles) == [JobState.RUNNING, JobState.COMPLETED, JobState.FAILED]
    assert calls.read_text().splitlines() == ["-X -n -P -o JobID,State,ExitCode,ElapsedRaw -j 101,102,103"]
    assert handles[2].exit_code == 2


def test_a_running_job_is_polled_in_proportion_to_its_run_time(tmp_path: Path) -> None:
    """sacct's cadence; the wait loop itself looks at a running job's work directory more often."""
    platform = _platform()
    backend = SlurmBackend(platform)
    job = _handle("1", platform, tmp_path)
    assert backend._sacct_every_s(job, 4.0) == backend.next_poll_s(job, 4.0) == 4.0  # queued: the full back-off
    job.state, job.started_at = JobState.RUNNING, time.monotonic() - 2.0
    assert backend._sacct_every_s(job, 4.0) == backend.poll_running_min_s  # just started: closely
    assert backend.next_poll_s(job, 4.0) == backend.poll_exit_file_s
    job.started_at = time.monotonic() - 60.0
    assert backend._sacct_every_s(job, 4.0) == pytest.approx(3.0, abs=0.01)  # 5 % of a minute
    job.started_at = time.monotonic() - 3600.0
    assert backend._sacct_every_s(job, 4.0) == 4.0  # never slower than the back-off


def test_a_running_job_whose_script_exited_0_is_complete_before_sacct_says_so(tmp_path: Path) -> None:
    """The batch script writes its exit status as it exits; any other ending is left to sacct to name."""
    platform = _platform()
    backend = PatientSlurm(platform)  # no sacct within the test: only the file can settle the job
    job = _handle("105", platform, tmp_path)
    job.state = JobState.RUNNING
    backend._unfinished[job.job_id] = job
    backend._next_query_at = time.monotonic() + 3600.0
    (tmp_path / EXIT_FILE).write_text("3 100.0 101.5\n")
    assert backend.statuses([job]) == [JobState.RUNNING]  # failed: sacct says how (OOM, timeout, ...)
    (tmp_path / EXIT_FILE).write_text("0 100.0 101.5\n")
    assert backend.statuses([job]) == [JobState.COMPLETED]
    assert (job.exit_code, job.elapsed_s, job.job_id in backend._unfinished) == (0, 1.5, False)


def test_a_job_sacct_first_sees_running_is_complete_in_the_same_poll_if_its_script_has_exited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short job can start and end between two sacct calls, or end while sacct runs: the file is read after it."""
    _fake_sacct(tmp_path, monkeypatch)
    platform = _platform()
    backend = SlurmBackend(platform)
    job = _handle("101", platform, tmp_path)  # sacct says RUNNING
    backend._unfinished[job.job_id] = job
    (tmp_path / EXIT_FILE).write_text("0 100.0 100.5\n")
    assert job.state is JobState.PENDING  # so the file is not looked at before sacct
    assert backend.statuses([job]) == [JobState.COMPLETED]
    assert (job.exit_code, job.elapsed_s) == (0, 0.5)


class PatientSlurm(SlurmBackend):
    poll_initial_s = 30.0  # so that the test's quick calls all fall within one interval, however loaded the host


def test_statuses_keeps_its_own_cadence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wait loop polling often (for another backend's job) costs no extra sacct."""
    calls = _fake_sacct(tmp_path, monkeypatch)
    platform = _platform()
    backend = PatientSlurm(platform)
    job = _handle("104", platform, tmp_path)
    backend._unfinished[job.job_id] = job
    for _ in range(5):
        assert backend.statuses([job]) == [JobState.PENDING]
    assert len(calls.read_text().splitlines()) == 1
