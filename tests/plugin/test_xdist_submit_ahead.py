"""Submit ahead under pytest-xdist: the workers together keep max_jobs jobs in flight, never more."""

from __future__ import annotations

import itertools
import json
import uuid

import pytest

SLEEPY = """
import json, time

time.sleep(1.5)
print(":::HETERO_METRICS " + json.dumps({"metrics": [{"name": "x_per_s", "value": 1}]}))
"""

TESTS = """
import pytest

@pytest.mark.hetero(command=["python", "sleepy.py"])
@pytest.mark.parametrize("case", range(6))
def test_case(case, hetero_result):
    assert hetero_result.metric("x_per_s") == 1
"""


def _most_at_once(windows: list[tuple[float, float]]) -> int:
    """The largest number of windows open at one moment (an end before a start at the same instant)."""
    events = sorted(
        [(start, 1) for start, _ in windows] + [(end, -1) for _, end in windows], key=lambda e: (e[0], e[1])
    )
    return max(itertools.accumulate(change for _, change in events))


def test_two_workers_fill_max_jobs(bench_dir: pytest.Pytester) -> None:
    """6 jobs of 1.5 s, max_jobs 4, -n 2: more than two (one per worker) run at once, and never over 4."""
    group = f"wide-{uuid.uuid4().hex[:8]}"  # host-wide lock: no other test's group
    bench_dir.makefile(
        ".yaml",
        platforms=f"""
version: 1
platforms:
  - name: wide
    accelerator: {{kind: cpu}}
    backend: {{kind: local}}
    max_jobs: 4
    resource_group: {{name: {group}, max_jobs: 10}}
""",
    )
    bench_dir.makepyfile(test_w=TESTS, sleepy=SLEEPY)
    result = bench_dir.runpytest_subprocess(
        "-n", "2", "-p", "no:randomly", "--platforms-file=platforms.yaml", "--platform=wide", "--hetero-json=out.json"
    )
    result.assert_outcomes(passed=6)
    report = json.loads((bench_dir.path / "out.json").read_text())
    windows = [(w["start_unix_s"], w["end_unix_s"]) for r in report["results"] for w in r["contention"]["windows"]]
    assert len(windows) == 6
    assert 3 <= _most_at_once(windows) <= 4
    xdist_dir = bench_dir.path / ".hetero" / "xdist"
    assert not xdist_dir.exists() or not any(xdist_dir.iterdir()), "who-runs-what is removed at the end"
