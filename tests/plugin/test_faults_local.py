"""Fault injection on the local backend: signals twice, kill -9 of the workload or of a child, escapees.

Each test runs pytest in a child process (SIGINT reset to Python's default:
a background job of a non-interactive shell starts with it ignored), hurts
it or its workload from outside, then checks that no process of the
workload survives, that the JSON report is written and lists what was
cancelled, and that no traceback was printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The workload: a child it waits for, a grandchild in its own session (setsid), and a second
# child that double-forks out of the tree; it survives SIGTERM (noting it) so the kill grace lasts.
WORKLOAD = """
import os, signal, subprocess, sys, time
def noted(signum, frame):
    open("sigterm-seen", "a").write("x")
signal.signal(signal.SIGTERM, noted)
waited = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
escaped = subprocess.Popen(["setsid", "sleep", "301"])
if os.fork() == 0:  # a daemon: fork, new session, fork again, parent exits
    os.setsid()
    if os.fork() == 0:
        with open("daemon.pid", "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(302)
    os._exit(0)
while not os.path.exists("daemon.pid"):
    time.sleep(0.01)
with open("pids.txt", "w") as fh:
    fh.write(f"{os.getpid()} {waited.pid} {escaped.pid} {open('daemon.pid').read()}")
sys.exit(3 if waited.wait() else 0)
"""

TESTS = """
import pytest

@pytest.mark.hetero(command=["python", "workload.py"])
def test_hurt():
    pass
"""

PLATFORMS = """
version: 1
platforms:
  - name: slow-to-die
    accelerator: {kind: cpu, model: host}
    backend: {kind: local, options: {kill_grace_s: 600}}
"""

# Python's own SIGINT handler, whatever the parent left (see the module docstring).
START = "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); sys.exit(pytest.main())"


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _survivors(pids: list[int], timeout_s: float = 20.0) -> list[int]:
    """Those still alive after ``timeout_s`` (a killed process ends when next scheduled, not at once)."""
    deadline = time.monotonic() + timeout_s
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


class Run:
    """pytest running the workload in a child process, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        (directory / "workload.py").write_text(WORKLOAD)
        (directory / "test_hurt.py").write_text(TESTS)
        (directory / "platforms.yaml").write_text(PLATFORMS)
        self.directory = directory
        argv = ["-p", "no:cacheprovider", "--platforms-file=platforms.yaml", "--platform=slow-to-die"]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", START, *argv, "--hetero-json=out.json", "-q"],
            cwd=directory,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.pids = self._wait_for_pids()

    def _wait_for(self, name: str, timeout_s: float = 90.0) -> str:
        path = self.directory / name
        deadline = time.monotonic() + timeout_s
        while not (path.exists() and path.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"{name} never appeared:\n{self.proc.communicate()[0]}")
            time.sleep(0.05)
        return path.read_text()

    def _wait_for_pids(self) -> list[int]:
        text = self._wait_for("pids.txt")
        return [int(pid) for pid in text.split()]

    def wait_for_sigterm(self) -> None:
        self._wait_for("sigterm-seen")

    def finish(self, timeout_s: float = 120.0) -> tuple[int, str, dict[str, Any]]:
        output, _ = self.proc.communicate(timeout=timeout_s)
        report: dict[str, Any] = json.loads((self.directory / "out.json").read_text())
        return self.proc.returncode, output, report


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[[], Run]]:
    runs: list[Run] = []

    def start() -> Run:
        runs.append(Run(tmp_path))
        return runs[-1]

    yield start
    for started in runs:  # never leave a process behind, even when a check failed
        if started.proc.poll() is None:
            started.proc.kill()
        for pid in started.pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


SIGNAL_PAIRS = {
    "ctrl-c-twice": (signal.SIGINT, signal.SIGINT),
    "sigterm-twice": (signal.SIGTERM, signal.SIGTERM),
    "ctrl-c-then-sigterm": (signal.SIGINT, signal.SIGTERM),
}


@pytest.mark.parametrize("first,second", list(SIGNAL_PAIRS.values()), ids=list(SIGNAL_PAIRS))
def test_a_second_signal_during_the_kill_grace_ends_everything_and_the_report_lists_the_job(
    run: Callable[[], Run], first: signal.Signals, second: signal.Signals
) -> None:
    started = run()
    started.proc.send_signal(first)
    started.wait_for_sigterm()  # the kill grace (600 s) has begun: the workload ignores SIGTERM
    started.proc.send_signal(second)
    status, output, report = started.finish()
    assert status == pytest.ExitCode.INTERRUPTED, output
    assert "Traceback" not in output, output
    assert _survivors(started.pids) == [], output
    assert report["interrupted"] is True
    assert report["cancelled_jobs"] == [f"local-{started.pids[0]}"]
    assert [(r["nodeid"], r["outcome"]) for r in report["results"]] == [
        ("test_hurt.py::test_hurt[slow-to-die]", "interrupted")
    ]


def test_many_signals_in_a_row_still_end_everything(run: Callable[[], Run]) -> None:
    started = run()
    started.proc.send_signal(signal.SIGINT)
    started.wait_for_sigterm()
    for sig in [signal.SIGINT, signal.SIGTERM] * 5:
        started.proc.send_signal(sig)
    status, output, report = started.finish()
    assert (status, "Traceback" in output) == (pytest.ExitCode.INTERRUPTED, False), output
    assert _survivors(started.pids) == [], output
    assert report["cancelled_jobs"] == [f"local-{started.pids[0]}"]


def test_kill_9_of_the_workload_fails_its_test_and_ends_its_descendants(run: Callable[[], Run]) -> None:
    started = run()
    os.kill(started.pids[0], signal.SIGKILL)
    status, output, report = started.finish()
    assert status == pytest.ExitCode.TESTS_FAILED, output
    assert "SIGKILL" in output, output
    assert _survivors(started.pids) == [], output
    (record,) = report["results"]
    assert (record["outcome"], record["error"]["stage"]) == ("failed", "wait")


def test_kill_9_of_a_child_fails_the_test_and_ends_the_escaped_ones(run: Callable[[], Run]) -> None:
    started = run()
    os.kill(started.pids[1], signal.SIGKILL)  # the child the workload waits for: it exits 3
    status, output, report = started.finish()
    assert status == pytest.ExitCode.TESTS_FAILED, output
    assert "exited with status 3" in output, output
    # The setsid grandchild and the double-forked daemon left the process group: ended all the same.
    assert _survivors(started.pids) == [], output
    assert report["results"][0]["outcome"] == "failed"


XDIST_TESTS = """
import pytest

@pytest.mark.hetero(command=["python", "-c", "import os, time; open(f'pid-{os.getpid()}', 'w'); time.sleep(300)"])
@pytest.mark.parametrize("case", ["a", "b"])
def test_slow(case):
    pass
"""


def test_ctrl_c_under_xdist_lists_the_cases_the_workers_were_running(tmp_path: Path) -> None:
    (tmp_path / "test_slow.py").write_text(XDIST_TESTS)
    argv = [sys.executable, "-c", START, "-p", "no:cacheprovider", "-n", "2", "--hetero-json=out.json", "-q"]
    # Its own session, so that Ctrl-C can reach the controller and its workers at once, as a terminal's does.
    proc = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("pid-*")):  # one runs; the other waits for the host's resource group
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    pids = [int(path.name.removeprefix("pid-")) for path in tmp_path.glob("pid-*")]
    assert (proc.returncode, "Traceback" in output) == (pytest.ExitCode.INTERRUPTED, False), output
    assert _survivors(pids) == [], output
    report = json.loads((tmp_path / "out.json").read_text())
    outcomes = sorted((r["nodeid"], r["outcome"]) for r in report["results"])
    assert outcomes == [(f"test_slow.py::test_slow[local-{c}]", "interrupted") for c in "ab"], output
    assert sorted(report["cancelled_jobs"]) == sorted(f"local-{pid}" for pid in pids)
