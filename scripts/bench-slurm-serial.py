"""Slurm: what a serialised job costs beyond its own run time (issue 15, goal: at most 1 s).

N jobs of ``sleep S`` run one after another (``max_jobs: 1``) through the
scheduler's wait loop on the live cluster (``scripts/slurm-local.sh up``);
prints, for each job, the time from the previous job seen finished to this one
seen finished, beyond S and beyond the job's own run time (its batch script's
start to end, from the exit-status file the script writes: the interpreter's
start is the job's own), and where that time went:

    plugin, hand-over   previous job seen finished -> this job's sbatch has returned (slot, script, sbatch)
    Slurm, start        sbatch returned -> the batch script starts (the controller's scheduling pass, launch)
    plugin, end seen    the batch script ends -> the wait loop returns (the exit-status file, looked for every 0.05 s)

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
from pytest_hetero.backends.slurm_script import EXIT_FILE
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
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # the node must see it
        jobs = [
            Job(f"s{i}", JobSpec(f"s{i}", (sys.executable, "-c", code), Path(tmp) / str(i), platform, timeout_s=300))
            for i in range(args.jobs)
        ]
        previous_seen = time.time()
        scheduler.plan(jobs)
        for job in jobs:
            scheduler.wait_for(job)
            seen = time.time()
            assert job.error is None and job.handle is not None, job.error
            rows.append(_breakdown(job, job.handle.submitted_at, previous_seen, seen))
            previous_seen = seen
    _print(rows, args.sleep_s)


def _breakdown(job: Job, submitted_monotonic: float, previous_seen: float, seen: float) -> dict[str, float]:
    """Wall-clock times of one job: the batch script's own start and end, from its exit-status file."""
    submitted = time.time() - (time.monotonic() - submitted_monotonic)  # sbatch returned
    _, start, end = (float(word) for word in (job.spec.workdir / EXIT_FILE).read_text().split())
    return {
        "total": seen - previous_seen,
        "own": end - start,
        "handover": submitted - previous_seen,
        "slurm_start": start - submitted,
        "end_seen": seen - end,
    }


def _print(rows: list[dict[str, float]], sleep_s: float) -> None:
    columns = ["job", "beyond the sleep (s)", "beyond its own run time (s)", "plugin, hand-over", "Slurm, start"]
    print("| " + " | ".join([*columns, "plugin, end seen"]) + " |")
    print("|---:|---:|---:|---:|---:|---:|")
    for index, row in enumerate(rows):
        print(
            f"| {index} | {row['total'] - sleep_s:.2f} | {row['total'] - row['own']:.2f} | {row['handover']:.3f} "
            f"| {row['slurm_start']:.3f} | {row['end_seen']:.3f} |"
        )
    median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    print(
        f"median {median['total'] - sleep_s:.2f} s beyond the {sleep_s:g} s sleep, "
        f"{statistics.median(row['total'] - row['own'] for row in rows):.2f} s beyond the job's own run time "
        f"(its script ran {median['own']:.2f} s); the plugin's share {median['handover'] + median['end_seen']:.3f} s "
        f"(hand-over {median['handover']:.3f}, end seen {median['end_seen']:.3f}), "
        f"Slurm's start {median['slurm_start']:.3f} s"
    )


if __name__ == "__main__":
    main()
