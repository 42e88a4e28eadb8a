"""Time ``pytest-hetero report --format html`` on a four-workload report.

Writes a realistic report (the four benchmark workloads × three platforms ×
eight metrics each, as the workloads report them: throughput, step time,
time to train, steady steps, epochs, data-wait fraction, communication time,
peak memory; two of them constant zero on a CPU) and, with ``--runs 2``, an
earlier run of the same cases for the trends; then runs the command line
``--repeats`` times and prints each wall time and the median. Usage:

    .venv/bin/python scripts/bench_html.py --repeats 3
    .venv/bin/python scripts/bench_html.py --runs 2 --keep /tmp/bench-html   # leave the files there
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

#: workload → reference value of throughput_sps on the first platform (benchmarks/references.yaml)
WORKLOADS = {"resnet50": 37.8, "cosmoflow": 44.5, "deepcam": 4.17, "unet3d": 0.369}
PLATFORMS = {"local-cpu": 1.0, "a100": 24.0, "mi250": 17.0}  # speed-up over the CPU
#: name, unit, higher_is_better, value for a throughput of 1 sample/s (None: given below), band (lower, upper)
METRICS: list[tuple[str, str, bool, float | None, tuple[float | None, float | None]]] = [
    ("throughput_sps", "samples/s", True, 1.0, (-0.6, None)),
    ("step_time_ms", "ms", False, 4000.0, (None, 1.5)),
    ("time_to_train_s", "s", False, 38.0, (None, 1.5)),
    ("steady_steps", "steps", True, None, (0.0, 0.0)),
    ("epochs", "epochs", False, None, (0.0, 0.0)),
    ("data_wait_fraction", "ratio", False, None, (None, 0.05)),
    ("comm_time_s", "s", False, None, (0.0, 0.0)),
    ("peak_rss_mb", "MiB", False, None, (None, 0.5)),
]
FIXED = {"steady_steps": 6.0, "epochs": 2.0, "data_wait_fraction": 0.0, "comm_time_s": 0.0, "peak_rss_mb": 640.0}


def fake_report(run: int, slowdown: float) -> dict[str, Any]:
    """One run's report; ``slowdown`` scales every speed figure of the platform ``mi250``."""
    results = [_record(workload, platform, slowdown) for workload in WORKLOADS for platform in PLATFORMS]
    summary: dict[str, int] = {}
    for rec in results:
        summary[rec["outcome"]] = summary.get(rec["outcome"], 0) + 1
    return {
        "schema_version": 1,
        "run_id": f"20261201-10{run:02d}00-bench{run}",
        "created_at": f"2026-12-0{run + 1}T10:00:00Z",
        "pytest_hetero_version": "0.1.0",
        "argv": ["pytest", "benchmarks/"],
        "exit_status": 6 if any(r["outcome"] == "failed" for r in results) else 0,
        "interrupted": False,
        "platforms": list(PLATFORMS),
        "summary": summary,
        "cancelled_jobs": [],
        "provenance": {
            "host": "bench",
            "os": "Linux",
            "machine": "x86_64",
            "cpu_model": "cpu",
            "python": sys.version.split()[0],
            "packages": {},
            "pytest_hetero": "0.1.0",
            "git": None,
        },
        "results": results,
    }


def _record(workload: str, platform: str, slowdown: float) -> dict[str, Any]:
    reference_sps = WORKLOADS[workload] * PLATFORMS[platform]
    sps = reference_sps * (1 - slowdown if platform == "mi250" else 1.0)
    metrics, verdicts = {}, []
    for name, unit, higher, per_sps, band in METRICS:
        value = FIXED[name] if per_sps is None else (sps if higher else per_sps / sps)
        reference = FIXED[name] if per_sps is None else (reference_sps if higher else per_sps / reference_sps)
        metrics[name] = {"name": name, "value": value, "unit": unit, "higher_is_better": higher}
        verdicts.append(_verdict(name, value, reference, band))
    failed = any(v["verdict"] == "fail" for v in verdicts)
    test = f"test_{workload}.py::test_{workload}_tiny"
    return {
        "nodeid": f"benchmarks/{test}[{platform}]",
        "test": test,
        "outcome": "failed" if failed else "passed",
        "platform": {
            "name": platform,
            "backend": "local" if platform == "local-cpu" else "slurm",
            "launcher": "python",
            "accelerator": {
                "kind": "cpu" if platform == "local-cpu" else "gpu",
                "model": platform,
                "count_per_node": 1,
            },
            "nodes": 1,
            "tags": [],
            "source": "platforms.yaml",
        },
        "workload": {
            "name": workload,
            "module": f"pytest_hetero.workloads.{workload}",
            "command": [],
            "config": {"batch_size": 4},
            "config_hash": "0123456789abcdef",
            "reported": {},
        },
        "metrics": metrics,
        "verdicts": verdicts,
        "comparisons": [],
        "stage_timings_s": {"provision": 0.0, "launch": 0.1, "wait": 30.0, "collect": 0.0, "check": 0.0},
        "job": {
            "id": "1",
            "ids": ["1"],
            "state": "COMPLETED",
            "exit_code": 0,
            "argv": [],
            "env": {},
            "workdir": "/scratch/bench",
            "logs": {},
        },
        "error": None,
        "started_at": "2026-12-01T10:00:00Z",
        "references_file": "benchmarks/references.yaml",
        "provenance": {},
    }


def _verdict(name: str, value: float, reference: float, band: tuple[float | None, float | None]) -> dict[str, Any]:
    lower, upper = band
    absolute = reference == 0  # a zero reference takes absolute bounds (docs/references.md)
    low = None if lower is None else (lower if absolute else reference * (1 + lower))
    high = None if upper is None else (upper if absolute else reference * (1 + upper))
    inside = (low is None or value >= low) and (high is None or value <= high)
    return {
        "metric": name,
        "verdict": "pass" if inside else "fail",
        "value": value,
        "reference": {"value": reference, "lower": lower, "upper": upper},
        "lower_bound": low,
        "upper_bound": high,
        "message": f"{name} = {value:.4g}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1, help="reports given to the command (trends from 2)")
    parser.add_argument("--keep", type=Path, help="write the reports and the page here")
    args = parser.parse_args()
    directory = args.keep or Path(tempfile.mkdtemp(prefix="bench-html-"))
    directory.mkdir(parents=True, exist_ok=True)
    reports = []
    for run in range(args.runs):
        path = directory / f"run{run}.json"
        path.write_text(json.dumps(fake_report(run, slowdown=0.7 if run == args.runs - 1 else 0.0)))
        reports.append(str(path))
    command = [sys.executable, "-m", "pytest_hetero.cli", "report", *reports, "--format", "html"]
    command += ["-o", str(directory / "report.html")]
    walls = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True)
        walls.append(time.perf_counter() - started)
    print(" ".join(command))
    print("wall s:", " ".join(f"{w:.2f}" for w in walls), f"median {statistics.median(walls):.2f}")


if __name__ == "__main__":
    main()
