"""Slurm: what a serialised job costs beyond its own run time (issue 15, goal: at most 1 s).

N jobs of ``sleep S`` run one after another (``max_jobs: 1``) through the
scheduler's wait loop on the live cluster (``scripts/slurm-local.sh up``);
prints each job's submit-to-seen-finished time minus S, and the median.
Usage::

    .venv/bin/python scripts/bench-slurm-serial.py --jobs 5 --sleep-s 5
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pytest_hetero.backends.base import JobSpec
from pytest_hetero.backends.slurm import SlurmBackend
from pytest_hetero.scheduler import Job, Scheduler

_spec = importlib.util.spec_from_file_location("bench_slurm", Path(__file__).with_name("bench_slurm.py"))
assert _spec is not None and _spec.loader is not None
bench_slurm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_slurm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--sleep-s", type=float, default=5.0)
    args = parser.parse_args()
    platform = bench_slurm.platform(max_jobs=1)
    backend = SlurmBackend(platform)
    scheduler = Scheduler(lambda _: backend)
    code = f"import time; time.sleep({args.sleep_s})"
    extra = []
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the node must see it
        jobs = [
            Job(f"s{i}", JobSpec(f"s{i}", (sys.executable, "-c", code), Path(tmp) / str(i), platform, timeout_s=300))
            for i in range(args.jobs)
        ]
        started = time.perf_counter()
        scheduler.plan(jobs)
        for job in jobs:
            scheduler.wait_for(job)
            assert job.error is None, job.error
            extra.append(time.perf_counter() - started - args.sleep_s)
            started = time.perf_counter()
    print("extra seconds per serialised job:", " ".join(f"{s:.2f}" for s in extra))
    print(f"median {statistics.median(extra):.2f} s beyond the {args.sleep_s:g} s run time")


if __name__ == "__main__":
    main()
