"""The same benchmark with its dataset on two filesystems: what storage attribution shows.

Writes one CosmoFlow sample dataset (``python -m pytest_hetero.workloads.samples``)
to a disk directory and to tmpfs (``/dev/shm``), then runs the CosmoFlow
workload on real data from each, staging it to node-local storage first
(``stage: true``), alternately (ABBA order, so drift cancels). Before each
run the source files are evicted from the page cache (``posix_fadvise
DONTNEED``; a no-op on tmpfs, whose pages are the data), so the disk run
reads from the device. Prints, per filesystem, the median staging time and
read throughput, the data wait, the time split's dominant part and the
filesystem the record names for the dataset. Usage::

    .venv/bin/python scripts/bench_storage.py --repeats 3
    .venv/bin/python scripts/bench_storage.py --disk /lustre/me/bench --tmpfs /dev/shm --samples 128
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

METRICS = ":::HETERO_METRICS "


def evict(root: Path) -> None:
    """Drop ``root``'s files from the page cache, so the next read goes to the device."""
    for path in root.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def run_once(source: Path, stage_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    config = {
        "preset": "tiny",
        "data": "real",
        "data_dir": str(source),
        "stage": True,
        "stage_dir": str(stage_dir),
        "volume_size": args.size,
        "batch_size": 2,
        "train_steps": 4,
        "warmup_steps": 1,
        "eval_steps": 1,
        "epochs": 1,
        "threads": 1,
    }
    evict(source)
    env = {**os.environ, "HETERO_DATA_COSMOFLOW": str(source), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "pytest_hetero.workloads.cosmoflow", "--config-json", json.dumps(config)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith(METRICS)), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"the workload failed on {source}:\n{done.stderr[-2000:]}")
    record: dict[str, Any] = json.loads(line[len(METRICS) :])
    return record


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    def median(name: str) -> float:
        return float(statistics.median(next(m["value"] for m in r["metrics"] if m["name"] == name) for r in records))

    roots = records[0]["storage"]["roots"]
    return {
        "filesystem": f"{roots['dataset']['fstype']} ({roots['dataset']['kind']}, {roots['dataset']['source']})",
        "staging_time_s": median("staging_time_s"),
        "read_throughput_mbps": median("read_throughput_mbps"),
        "data_wait_s": median("data_wait_s"),
        "time_to_train_s": median("time_to_train_s"),
        "staged_mb": records[0]["storage"]["staging"]["bytes"] / 1e6,
        "dominant": [r["time_split"]["dominant"] for r in records],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--disk", type=Path, default=Path("/var/tmp"), help="a directory on disk (default /var/tmp)")  # noqa: S108
    parser.add_argument("--tmpfs", type=Path, default=Path("/dev/shm"), help="a tmpfs directory (default /dev/shm)")  # noqa: S108
    parser.add_argument("--samples", type=int, default=64, help="training samples (default 64)")
    parser.add_argument("--size", type=int, default=64, help="volume edge (default 64: 2 MiB a sample)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    roots = {"disk": Path(tempfile.mkdtemp(dir=args.disk)), "tmpfs": Path(tempfile.mkdtemp(dir=args.tmpfs))}
    stage_dir = Path(tempfile.mkdtemp(dir=args.disk))
    try:
        for root in roots.values():
            sample = [sys.executable, "-m", "pytest_hetero.workloads.samples", "cosmoflow", str(root / "cosmo")]
            sample += ["--train", str(args.samples), "--validation", "4", "--size", str(args.size)]
            subprocess.run(sample, check=True, capture_output=True)
        records: dict[str, list[dict[str, Any]]] = {name: [] for name in roots}
        for repeat in range(args.repeats):
            order = ["disk", "tmpfs"] if repeat % 2 == 0 else ["tmpfs", "disk"]
            for name in order:
                records[name].append(run_once(roots[name] / "cosmo", stage_dir, args))
        results = {name: summary(found) for name, found in records.items()}
        print(json.dumps(results, indent=1))
        ratio = results["disk"]["staging_time_s"] / results["tmpfs"]["staging_time_s"]
        print(f"staging from disk takes {ratio:.2f}x as long as from tmpfs ({args.repeats} repeats, medians)")
    finally:
        for root in [*roots.values(), stage_dir]:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
