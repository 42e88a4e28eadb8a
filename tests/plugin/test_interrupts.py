"""Ctrl-C and SIGTERM during a run: no workload process survives, the report is still written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SLOW_WORKLOAD = """
import os, subprocess, sys, time
child = subprocess.Popen(["sleep", "300"])  # a grandchild: must die with the group
with open("pids.txt", "w") as fh:
    fh.write(f"{os.getpid()} {child.pid}")
time.sleep(300)
"""

TESTS = """
import pytest

@pytest.mark.hetero(command=["python", "slow.py"])
def test_slow():
    pass

@pytest.mark.hetero(command=["python", "-c", "print('never reached')"])
def test_after():
    pass
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except OSError:
        return False


def _gone_within(pid: int, timeout_s: float = 10.0) -> bool:
    """A killed process ends once it is next scheduled: on a loaded machine, not at once."""
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_kills_the_workload_group_and_writes_the_report(pytester: pytest.Pytester, sig: int) -> None:
    pytester.makepyfile(test_slow=TESTS)
    pytester.makefile(".py", slow=SLOW_WORKLOAD)
    # Python's own SIGINT handler: a background job of a non-interactive shell starts with SIGINT ignored.
    start = (
        "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); sys.exit(pytest.main())"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", start, "-p", "no:cacheprovider", "--hetero-json=out.json", "-q"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pid_file = pytester.path / "pids.txt"
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the workload never started"
        time.sleep(0.1)
    workload_pid, grandchild_pid = map(int, pid_file.read_text().split())
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert _gone_within(workload_pid), output
    assert _gone_within(grandchild_pid), output
    report = json.loads((pytester.path / "out.json").read_text())
    assert report["interrupted"] is True
    outcomes = {r["nodeid"]: r["outcome"] for r in report["results"]}
    assert outcomes == {"test_slow.py::test_slow[local]": "interrupted"}
    assert report["cancelled_jobs"] == [f"local-{workload_pid}"]
