"""Submit ahead under pytest-xdist: N items of S s on a ``max_jobs: M`` local platform, ``-n 2`` against one process.

Whole ``pytest`` wall time of the same suite, alternating, median of the repeats; the
platform has its own resource group with room for M jobs (the host's default group
would run one at a time). Bytecode is cached in a temporary ``PYTHONPYCACHEPREFIX``, filled by an
untimed ``--collect-only`` run first, as in ``bench-overhead-cpu.py`` (the project's shells set
``PYTHONDONTWRITEBYTECODE``: every process, each xdist worker too, compiled the plugin). Usage::

    .venv/bin/python scripts/bench-xdist.py --items 10 --sleep-s 5 --max-jobs 10 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench_overhead import child_env  # scripts/ is on sys.path: this script's directory

SLEEPY = """
import json, sys, time

time.sleep(float(sys.argv[1]))
print(":::HETERO_METRICS " + json.dumps({"metrics": [{"name": "x_per_s", "value": 1}]}))
"""

TEST = """
import pytest

@pytest.mark.hetero(command=["python", "sleepy.py", "{sleep_s}"])
@pytest.mark.parametrize("case", range({items}))
def test_case(case, hetero_result):
    assert hetero_result.metric("x_per_s") == 1
"""

CATALOGUE = """
version: 1
platforms:
  - name: wide
    accelerator: {{kind: cpu}}
    backend: {{kind: local}}
    max_jobs: {max_jobs}
    resource_group: {{name: bench-{group}, max_jobs: {max_jobs}}}
"""


def _wall_s(directory: Path, *extra: str) -> float:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--platforms-file=platforms.yaml"]
    env = child_env(directory / "pycache")
    started = time.perf_counter()
    done = subprocess.run([*argv, "--platform=wide", *extra], cwd=directory, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--sleep-s", type=float, default=5.0)
    parser.add_argument("--max-jobs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "sleepy.py").write_text(SLEEPY)
        (root / "test_x.py").write_text(TEST.format(sleep_s=args.sleep_s, items=args.items))
        (root / "platforms.yaml").write_text(CATALOGUE.format(max_jobs=args.max_jobs, group=uuid.uuid4().hex[:8]))
        (root / "pytest.ini").write_text("[pytest]\n")
        _wall_s(root, "--collect-only")  # untimed: bytecode cached
        one, two = [], []
        for _ in range(args.repeats):
            one.append(_wall_s(root))
            two.append(_wall_s(root, "-n", "2"))
    one_s, two_s = statistics.median(one), statistics.median(two)
    print(
        f"{args.items} items of {args.sleep_s:g} s, max_jobs {args.max_jobs}: "
        f"one process {one_s:.1f} s, -n 2 {two_s:.1f} s"
    )
    print(f"ratio -n 2 / one process: {two_s / one_s:.2f}")


if __name__ == "__main__":
    main()
