"""Fault injection on the live Slurm cluster: Ctrl-C during sbatch, twice while running, scancel underneath.

pytest runs in a child process (SIGINT reset to Python's default). ``sbatch``
and ``scancel`` are wrapped (first on PATH) to note when they start and to
take a little longer, so a signal lands exactly during a submission or
during the clean-up. Afterwards squeue must hold none of the run's jobs, the
JSON report must list every cancelled job and the case it was for, and no
traceback may be printed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import LiveSlurm

pytestmark = pytest.mark.slurm

PYTHON = sys.executable
WORKLOAD = """
import json, os, time
config = json.loads(os.environ.get("HETERO_WORKLOAD_CONFIG") or "{}")
time.sleep(config.get("sleep_s", 0))
print(":::HETERO_METRICS " + json.dumps({"metrics": [{"name": "throughput_sps", "value": 1.0, "unit": "samples/s"}]}))
"""
START = "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); sys.exit(pytest.main())"


def _wrapper(bin_dir: Path, command: str, delay_s: float) -> None:
    """``command`` on PATH that notes its start in ``<command>-started`` (cwd) and waits before the real one."""
    real = shutil.which(command)
    assert real is not None, f"{command} is not installed"
    path = bin_dir / command
    path.write_text(f'#!/bin/sh\necho "$$" >> "$MARKS/{command}-started"\nsleep {delay_s}\nexec {real} "$@"\n')
    path.chmod(0o755)


class SlurmRun:
    """pytest over ``tests`` (name -> workload config) on Slurm platforms, in a child process."""

    def __init__(self, directory: Path, platforms: dict[str, str], tests: dict[str, dict[str, Any]]) -> None:
        self.directory = directory
        common = f"accelerator: {{kind: cpu}}, environment: {{python: {PYTHON}}}, resources: {{time_limit_min: 2}}"
        entries = [f"  - {{name: {name}, {common}, {extra}}}" for name, extra in platforms.items()]
        (directory / "platforms.yaml").write_text("\n".join(["version: 1", "platforms:", *entries]) + "\n")
        (directory / "work.py").write_text(WORKLOAD)
        lines = ["import pytest"]
        for name, config in tests.items():
            command = [PYTHON, str(directory / "work.py")]
            lines += [f"@pytest.mark.hetero(command={command!r}, config={config!r})", f"def test_{name}():", "    pass"]
        (directory / "test_faults.py").write_text("\n".join(lines) + "\n")
        bin_dir = directory / "bin"
        bin_dir.mkdir()
        _wrapper(bin_dir, "sbatch", 2.0)
        _wrapper(bin_dir, "scancel", 1.0)
        environ = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "MARKS": str(directory)}
        argv = ["-p", "no:cacheprovider", "--platforms-file=platforms.yaml", "--platform=slurm-*"]
        self.proc = subprocess.Popen(
            [PYTHON, "-c", START, *argv, "--hetero-json=out.json", "-q"],
            cwd=directory,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_for_mark(self, name: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not (self.directory / name).exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"{name} never appeared:\n{self.proc.communicate()[0]}")
            time.sleep(0.05)

    def finish(self) -> tuple[int, str, dict[str, Any]]:
        try:
            output, _ = self.proc.communicate(timeout=120)
        finally:
            self.proc.kill()
        report: dict[str, Any] = json.loads((self.directory / "out.json").read_text())
        return self.proc.returncode, output, report


def _outcomes(report: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((r["nodeid"].split("::")[1], r["outcome"]) for r in report["results"])


def test_ctrl_c_during_sbatch_cancels_the_job_and_lists_it_and_its_case(
    live_pytester: pytest.Pytester, slurm_cluster: LiveSlurm
) -> None:
    run = SlurmRun(live_pytester.path, {"slurm-run": "backend: {kind: slurm}"}, {"slow": {"sleep_s": 600}})
    run.wait_for_mark("sbatch-started")
    run.proc.send_signal(signal.SIGINT)
    status, output, report = run.finish()
    assert (status, "Traceback" in output) == (pytest.ExitCode.INTERRUPTED, False), output
    slurm_cluster.wait_for_jobs(live_pytester.path, [], timeout_s=30)  # squeue holds none of the run's jobs
    (job_id,) = report["cancelled_jobs"]
    assert _outcomes(report) == [("test_slow[slurm-run]", "interrupted")]
    assert report["results"][0]["job"]["id"] == job_id
    slurm_cluster.wait_until(lambda: slurm_cluster.state(job_id).startswith("CANCELLED"), 30, f"{job_id} accounted")


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_second_signal_during_the_clean_up_leaves_no_job_and_no_traceback(
    live_pytester: pytest.Pytester, slurm_cluster: LiveSlurm, second: signal.Signals
) -> None:
    platforms = {
        "slurm-run": "backend: {kind: slurm}",
        "slurm-held": "backend: {kind: slurm, options: {sbatch_extra: ['--hold']}}",
    }
    run = SlurmRun(live_pytester.path, platforms, {"slow": {"sleep_s": 600}})
    jobs = slurm_cluster.wait_for_jobs(live_pytester.path, ["PENDING", "RUNNING"], timeout_s=90)
    run.proc.send_signal(signal.SIGINT)
    run.wait_for_mark("scancel-started")  # the clean-up has begun
    run.proc.send_signal(second)
    status, output, report = run.finish()
    assert (status, "Traceback" in output) == (pytest.ExitCode.INTERRUPTED, False), output
    slurm_cluster.wait_for_jobs(live_pytester.path, [], timeout_s=30)
    assert sorted(report["cancelled_jobs"]) == jobs
    # The case the test was waiting for, and the one whose job was submitted ahead of its test.
    assert _outcomes(report) == [("test_slow[slurm-held]", "interrupted"), ("test_slow[slurm-run]", "interrupted")]


def test_scancel_underneath_fails_that_case_only(live_pytester: pytest.Pytester, slurm_cluster: LiveSlurm) -> None:
    platforms = {"slurm-run": "backend: {kind: slurm}, max_jobs: 2"}
    run = SlurmRun(live_pytester.path, platforms, {"a_slow": {"sleep_s": 600}, "b_quick": {"sleep_s": 1}})
    jobs = slurm_cluster.wait_for_jobs(live_pytester.path, ["RUNNING", "RUNNING"], timeout_s=90)
    names = dict(line.split("|") for line in slurm_cluster.run("squeue", "-h", "-o", "%i|%j").splitlines())
    slow = next(job for job in jobs if "a_slow" in names.get(job, ""))
    subprocess.run(["scancel", slow], check=True, timeout=30)
    status, output, report = run.finish()
    assert status == pytest.ExitCode.TESTS_FAILED, output
    assert _outcomes(report) == [("test_a_slow[slurm-run]", "failed"), ("test_b_quick[slurm-run]", "passed")]
    failed = next(r for r in report["results"] if r["outcome"] == "failed")
    assert failed["error"]["stage"] == "wait" and "CANCELLED" in failed["error"]["message"], failed["error"]
    slurm_cluster.wait_for_jobs(live_pytester.path, [], timeout_s=30)
