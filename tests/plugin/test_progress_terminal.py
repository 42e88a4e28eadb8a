"""The live status line on a real pseudo-terminal, and the start/end lines without one."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

SLOW_TEST = """
import pytest

@pytest.mark.hetero(command=["python", "slow.py"], config={"sleep_s": 6})
def test_slow(hetero_result):
    assert hetero_result.metric("throughput_sps") == 1.0
"""

SLOW_WORKLOAD = """
import json, os, time
open("started_at", "w").write(repr(time.time()))
time.sleep(json.loads(os.environ["HETERO_WORKLOAD_CONFIG"])["sleep_s"])
metric = {"name": "throughput_sps", "value": 1.0, "unit": "samples/s", "higher_is_better": True}
print(":::HETERO_METRICS " + json.dumps({"metrics": [metric]}))
"""


def _run_in_pty(args: list[str], cwd: Path, timeout_s: float = 120.0) -> list[tuple[float, bytes]]:
    """Run a command with a pseudo-terminal as its stdout; (wall-clock arrival, bytes) of its output."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "TERM": "xterm"}
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.Popen(args, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[tuple[float, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append((time.time(), data))
            elif proc.poll() is not None:
                break
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    return chunks


@pytest.fixture
def slow_project(pytester: pytest.Pytester) -> Path:
    pytester.makefile(".py", slow=SLOW_WORKLOAD)
    pytester.makepyfile(test_slow=SLOW_TEST)
    pytester.makeini("[pytest]\n")
    return pytester.path


def test_status_line_on_a_terminal_within_seconds_of_the_job_starting(slow_project: Path) -> None:
    chunks = _run_in_pty([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], slow_project)
    output = b"".join(data for _, data in chunks).decode(errors="replace")
    assert "1 passed" in output, output
    status = [(at, data) for at, data in chunks if b"[hetero] 1 in flight: test_slow[local] running" in data]
    assert status, output
    job_started_at = float((slow_project / "started_at").read_text())
    assert status[0][0] - job_started_at < 5.0
    assert "\r" in output  # rewritten in place, not printed line after line


def test_one_line_per_start_and_end_without_a_terminal(slow_project: Path, pytester: pytest.Pytester) -> None:
    (slow_project / "test_slow.py").write_text(SLOW_TEST.replace('"sleep_s": 6', '"sleep_s": 0'))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]hetero[]] started: test_slow[[]local[]] (local, job local-*)",
            "*[[]hetero[]] completed: test_slow[[]local[]] (local, job local-*) after *s",
        ]
    )
    assert not re.search(r"in flight", result.stdout.str())
