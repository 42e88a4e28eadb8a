"""Plugin CPU per trivial test against plain pytest starting one subprocess per test (same venv).

The suites of ``scripts/bench_overhead.py`` (N cases of a command that prints one
metric), each run as a child ``pytest``; CPU is user + system time of the run and
everything it started (``RUSAGE_CHILDREN``), divided by N; median of the repeats,
alternating. Usage::

    .venv/bin/python scripts/bench-overhead-cpu.py --cases 300 --repeats 3
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_spec = importlib.util.spec_from_file_location("bench_overhead", Path(__file__).with_name("bench_overhead.py"))
assert _spec is not None and _spec.loader is not None
bench_overhead = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_overhead)


def _cpu_s(directory: Path, *extra: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]
    done = subprocess.run(argv, cwd=directory, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plugin = bench_overhead._suite(Path(tmp), "plugin", bench_overhead.PLUGIN_TEST, args.cases)
        plain = bench_overhead._suite(Path(tmp), "plain", bench_overhead.PLAIN_TEST, args.cases)
        a, b = [], []
        for _ in range(args.repeats):
            a.append(_cpu_s(plugin))
            b.append(_cpu_s(plain, "-p", "no:hetero"))
    a_ms, b_ms = statistics.median(a) / args.cases * 1e3, statistics.median(b) / args.cases * 1e3
    print(
        f"{args.cases} cases: pytest-hetero {a_ms:.1f} ms CPU/test, "
        f"plain subprocess {b_ms:.1f} ms, ratio {a_ms / b_ms:.2f}"
    )


if __name__ == "__main__":
    main()
