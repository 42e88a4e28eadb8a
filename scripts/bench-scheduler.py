"""The scheduler's cost per job against the number queued, and 2,000 jobs in flight in one process.

``per-job``: N jobs planned at once on the public fake backend (each job has
finished at submission; the fake writes its two log files), ``max_jobs: 10``,
real file-lock slots in a run directory; each is waited for in order, as the
tests would. Prints the harness cost per job (plan + wait + slots + windows,
no process started) at each N and the ratio of the largest N to the smallest.

``in-flight``: N jobs submitted at once (``max_jobs`` N, no resource group) on
the fake backend with jobs that stay running, polled 20 times; prints the
process's peak RSS and its thread count.

    .venv/bin/python scripts/bench-scheduler.py per-job --queued 500 10000 --repeats 3
    .venv/bin/python scripts/bench-scheduler.py in-flight --jobs 2000
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

from pytest_hetero.backends.base import JobSpec, JobState
from pytest_hetero.backends.fake import FakeBackend, FakeResult
from pytest_hetero.config.models import Accelerator, BackendConfig, Platform
from pytest_hetero.isolation import Isolation
from pytest_hetero.scheduler import Job, Scheduler


def _platform(max_jobs: int) -> Platform:
    return Platform(
        name="bench", accelerator=Accelerator(kind="cpu"), backend=BackendConfig(kind="local"), max_jobs=max_jobs
    )


def per_job_us(queued: int, run_dir: Path) -> float:
    platform = _platform(10)
    backend = FakeBackend(platform, handler=lambda spec: FakeResult(metrics={"x_per_s": 1.0}))
    scheduler = Scheduler(lambda _: backend, Isolation(run_dir, host_dir=run_dir / "host"))
    jobs = [Job(f"j{i}", JobSpec(f"j{i}", ("true",), run_dir, platform)) for i in range(queued)]
    started = time.perf_counter()
    scheduler.plan(jobs)
    for job in jobs:
        scheduler.wait_for(job)
    return (time.perf_counter() - started) / queued * 1e6


def in_flight(count: int, run_dir: Path) -> None:
    platform = _platform(count)
    backend = FakeBackend(platform, handler=lambda spec: FakeResult(state=JobState.RUNNING))
    scheduler = Scheduler(lambda _: backend, Isolation(run_dir, host_dir=run_dir / "host"))
    scheduler.plan(Job(f"j{i}", JobSpec(f"j{i}", ("true",), run_dir, platform)) for i in range(count))
    for _ in range(20):
        scheduler.poll()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{len(scheduler.active_jobs)} jobs in flight: peak RSS {rss_mb:.0f} MB, {threading.active_count()} thread(s)"
    )
    scheduler.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    per_job = sub.add_parser("per-job")
    per_job.add_argument("--queued", type=int, nargs="+", default=[500, 10000])
    per_job.add_argument("--repeats", type=int, default=3)
    sub.add_parser("in-flight").add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    # In memory where there is a tmpfs: the figure is the harness's cost, not the disk's (the fake writes logs).
    shm = Path("/dev/shm")  # noqa: S108  # a private TemporaryDirectory inside it
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        if args.what == "in-flight":
            in_flight(args.jobs, Path(tmp))
            return
        per_job_us(200, Path(tmp) / "warm-up")  # imports, first directories: counted in neither
        runs: dict[int, list[float]] = {n: [] for n in args.queued}
        for repeat in range(args.repeats):  # alternating, so drifting load hits every size alike
            for n in args.queued:
                runs[n].append(per_job_us(n, Path(tmp) / f"{n}-{repeat}"))
        costs = {n: statistics.median(found) for n, found in runs.items()}
        for n, cost in costs.items():
            print(f"{n} queued: {cost:.0f} us/job (median of {args.repeats}: {', '.join(f'{c:.0f}' for c in runs[n])})")
        print(f"ratio {max(costs)} / {min(costs)} queued: {costs[max(costs)] / costs[min(costs)]:.2f}")


if __name__ == "__main__":
    main()
