"""Every figure of issue 15 (scale), one after another in one run, for docs/performance.md.

Runs each ``scripts/bench-*.py`` with the arguments the doc quotes and prints
their output under its command, with the host's load average before each. The
Slurm figure needs the live cluster (``scripts/slurm-local.sh up``); pass
``--no-slurm`` without one. Usage::

    .venv/bin/python scripts/bench-scale.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: The CPU figure's suites live under the checkout, as a project's tests do, not in /tmp, where this VM's
#: test runs delete thousands of files a minute (see bench-overhead-cpu.py on ext4 after deletions).
SUITES = str(HERE.parent / ".hetero" / "bench")

FIGURES = [
    ("bench-overhead-cpu.py", "--cases", "300", "--repeats", "9", "--tmpfs", "/dev/shm", "--dir", SUITES),  # noqa: S108
    ("bench-scheduler.py", "per-job", "--queued", "500", "10000"),
    ("bench-xdist.py", "--items", "10", "--sleep-s", "5", "--max-jobs", "10", "--repeats", "2"),
    ("bench-collection.py", "--items", "10000", "--repeats", "5"),
    ("bench-k8s.py", "--pods", "20"),
    ("bench-scheduler.py", "in-flight", "--jobs", "2000"),
    ("bench-slurm-serial.py", "--jobs", "5", "--sleep-s", "5"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-slurm", action="store_true", help="skip the live Slurm figure")
    args = parser.parse_args()
    for script, *arguments in FIGURES:
        if args.no_slurm and "slurm" in script:
            continue
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"$ .venv/bin/python scripts/{script} {' '.join(arguments)}   # load average {load}", flush=True)
        done = subprocess.run([sys.executable, str(HERE / script), *arguments], capture_output=True, text=True)
        print(done.stdout.rstrip() or done.stderr.rstrip()[-1500:], flush=True)


if __name__ == "__main__":
    main()
