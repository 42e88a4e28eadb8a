"""Plugin CPU per trivial test against plain pytest starting one subprocess per test (same venv).

The suites of ``scripts/bench_overhead.py`` (N cases of a command that prints one
metric), each run as a child ``pytest``; CPU is user + system time of the run and
everything it started (``RUSAGE_CHILDREN``), divided by N; median of the repeats,
alternating, after one untimed run of each. The children cache their bytecode in a
temporary ``PYTHONPYCACHEPREFIX`` even where ``PYTHONDONTWRITEBYTECODE`` is set (as in
the project's shells), as an installed plugin would have it; ``--compile-each-run``
keeps the caller's setting, so every run compiles the plugin's modules (about 0.2 s).
Also prints the size of a trivial test's record in the JSON report, as written. Usage::

    .venv/bin/python scripts/bench-overhead-cpu.py --cases 300 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_overhead  # scripts/ is on sys.path: this script's directory
from bench_overhead import child_env


def _cpu_s(directory: Path, env: dict[str, str], *extra: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]
    done = subprocess.run(argv, cwd=directory, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile-each-run", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as it is")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(None if args.compile_each_run else Path(tmp, "pycache"))
        plugin = bench_overhead._suite(Path(tmp), "plugin", bench_overhead.PLUGIN_TEST, args.cases)
        plain = bench_overhead._suite(Path(tmp), "plain", bench_overhead.PLAIN_TEST, args.cases)
        _cpu_s(plugin, env, "--hetero-json=report.json")  # untimed: bytecode cached, and the record's size
        _cpu_s(plain, env, "-p", "no:hetero")
        a, b = [], []
        for _ in range(args.repeats):
            a.append(_cpu_s(plugin, env))
            b.append(_cpu_s(plain, env, "-p", "no:hetero"))
        records = json.loads((plugin / "report.json").read_text())["results"]
        record_kb = statistics.median(len(json.dumps(r, separators=(",", ":"))) for r in records) / 1024
    a_ms, b_ms = statistics.median(a) / args.cases * 1e3, statistics.median(b) / args.cases * 1e3
    bytecode = "compiled each run" if args.compile_each_run else "bytecode cached"
    print(
        f"{args.cases} cases ({bytecode}): pytest-hetero {a_ms:.1f} ms CPU/test, "
        f"plain subprocess {b_ms:.1f} ms, ratio {a_ms / b_ms:.2f}; "
        f"a trivial record {record_kb:.2f} KB (compact JSON, as written)"
    )


if __name__ == "__main__":
    main()
