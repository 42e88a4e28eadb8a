#!/usr/bin/env python3
"""Overhead of pytest-hetero's Slurm backend, measured on a live cluster.

(a) submit-to-result of a trivial workload: through the plugin's own path
    (scheduler + SlurmBackend: submit, poll, collect, parse the metrics line)
    versus ``sbatch --wait`` of the very same batch script, interleaved, same
    cluster, same run; versus the floor (sbatch, then sacct every 0.1 s); and
    a whole ``pytest`` run of one such benchmark (interpreter start included).
(b) wall time of a pytest run of 8 trivial benchmarks on one Slurm platform
    with ``max_jobs: 8`` (submitted ahead, concurrently) versus ``max_jobs: 1``.

Usage (cluster from scripts/slurm-local.sh up)::

    .venv/bin/python scripts/bench_slurm.py [--repeats 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_hetero.backends.base import JobSpec
from pytest_hetero.backends.slurm import SlurmBackend
from pytest_hetero.config.loader import parse_catalogue
from pytest_hetero.config.models import Platform
from pytest_hetero.metrics import parse_metrics_record
from pytest_hetero.scheduler import Job, Scheduler

PYTHON = sys.executable
PROGRAM = (
    "import json; print(':::HETERO_METRICS ' + json.dumps("
    "{'metrics': [{'name': 'throughput_sps', 'value': 1.0, 'unit': 'samples/s'}]}))"
)


def platform(max_jobs: int = 1) -> Platform:
    entry = {
        "name": "bench-slurm",
        "accelerator": {"kind": "cpu"},
        "backend": {"kind": "slurm"},
        "environment": {"python": PYTHON},
        "resources": {"time_limit_min": 5},
        "max_jobs": max_jobs,
    }
    return parse_catalogue({"version": 1, "platforms": [entry]}, "bench").platforms[0]


def spec(workdir: Path) -> JobSpec:
    return JobSpec("bench", (PYTHON, "-c", PROGRAM), workdir, platform(), timeout_s=300.0)


def through_plugin(workdir: Path) -> float:
    """Submit-to-parsed-metrics along the plugin's path."""
    backend = SlurmBackend(platform())
    started = time.perf_counter()
    job = Job(key="bench", spec=spec(workdir))
    Scheduler(lambda _: backend).wait_for(job)
    assert job.handle is not None and job.error is None, job.error
    output = backend.collect(job.handle)
    parse_metrics_record(output.stdout(), output.stdout_path)
    return time.perf_counter() - started


def sbatch_wait(workdir: Path) -> float:
    """The same batch script through ``sbatch --wait``, then the same log read."""
    job_spec = spec(workdir)
    workdir.mkdir(parents=True)
    script = workdir / "batch.sh"
    script.write_text(SlurmBackend(platform()).render(job_spec))
    started = time.perf_counter()
    subprocess.run(["sbatch", "--wait", "--parsable", str(script)], check=True, capture_output=True)
    parse_metrics_record(job_spec.stdout_path.read_text(), job_spec.stdout_path)
    return time.perf_counter() - started


def sbatch_tight_poll(workdir: Path) -> float:
    """The floor: sbatch, then sacct every 0.1 s until the job has finished."""
    job_spec = spec(workdir)
    workdir.mkdir(parents=True)
    script = workdir / "batch.sh"
    script.write_text(SlurmBackend(platform()).render(job_spec))
    started = time.perf_counter()
    job_id = subprocess.run(["sbatch", "--parsable", str(script)], check=True, capture_output=True, text=True)
    query = ["sacct", "-X", "-n", "-P", "-o", "State", "-j", job_id.stdout.strip().split(";")[0]]
    while subprocess.run(query, capture_output=True, text=True).stdout.strip() in ("", "PENDING", "RUNNING"):
        time.sleep(0.1)
    parse_metrics_record(job_spec.stdout_path.read_text(), job_spec.stdout_path)
    return time.perf_counter() - started


def settle() -> None:
    """Start every sample from the same state: no job left, every node idle."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        queue = subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip()
        states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.split()
        if not queue and set(states) == {"idle"}:
            break
        time.sleep(0.1)
    time.sleep(0.5)


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(samples), 3),
        "mean_s": round(statistics.mean(samples), 3),
        "min_s": round(min(samples), 3),
        "max_s": round(max(samples), 3),
    }


def write_suite(root: Path, count: int, max_jobs: int) -> None:
    root.mkdir(parents=True)
    (root / "tox.ini").write_text("[pytest]\n")
    (root / "platforms.yaml").write_text(
        "version: 1\nplatforms:\n  - name: bench-slurm\n    accelerator: {kind: cpu}\n"
        f"    backend: {{kind: slurm}}\n    environment: {{python: {PYTHON}}}\n"
        f"    resources: {{time_limit_min: 5}}\n    max_jobs: {max_jobs}\n"
    )
    tests = ["import pytest"]
    for index in range(count):
        tests += [
            f"@pytest.mark.hetero(command=[{PYTHON!r}, '-c', {PROGRAM!r}])",
            f"def test_trivial_{index}(hetero_result):",
            "    assert hetero_result.metric('throughput_sps') == 1.0",
        ]
    (root / "test_bench.py").write_text("\n".join(tests) + "\n")


def pytest_wall_s(root: Path) -> float:
    argv = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--platforms-file=platforms.yaml"]
    started = time.perf_counter()
    done = subprocess.run([*argv, "--platform=bench-slurm"], cwd=root, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pytest failed in {root}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def measure(base: Path, repeats: int) -> dict[str, Any]:
    plugin, plain, floor, whole = [], [], [], []
    for run in range(repeats):
        for samples, method in ((plain, sbatch_wait), (floor, sbatch_tight_poll), (plugin, through_plugin)):
            settle()
            samples.append(method(base / f"{method.__name__}-{run}"))
        write_suite(base / f"one-{run}", 1, 1)
        settle()
        whole.append(pytest_wall_s(base / f"one-{run}"))
    concurrent, sequential = [], []
    for run in range(max(1, repeats // 3)):
        write_suite(base / f"seq-{run}", 8, 1)
        settle()
        sequential.append(pytest_wall_s(base / f"seq-{run}"))
        write_suite(base / f"conc-{run}", 8, 8)
        settle()
        concurrent.append(pytest_wall_s(base / f"conc-{run}"))
    return {
        "submit_to_result": {
            "plugin_path": summary(plugin),
            "sbatch_wait": summary(plain),
            "sbatch_then_sacct_every_0.1s": summary(floor),
            "pytest_run_one_benchmark": summary(whole),
            "median_overhead_vs_sbatch_wait_s": round(statistics.median(plugin) - statistics.median(plain), 3),
            "median_overhead_vs_tight_poll_s": round(statistics.median(plugin) - statistics.median(floor), 3),
        },
        "eight_benchmarks_wall": {"max_jobs_8": summary(concurrent), "max_jobs_1": summary(sequential)},
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="samples per measurement (default: 10)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file (default: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        result = measure(Path(tmp), args.repeats)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
