"""Collection of N parametrised benchmark items against N plain parametrised tests (``--collect-only``).

The plain suite runs with ``-p no:hetero``.

Whole ``pytest --collect-only -q`` wall time, alternating, median of the repeats, after one
untimed run of each; bytecode cached as in ``bench-overhead-cpu.py`` (``--compile-each-run``
keeps ``PYTHONDONTWRITEBYTECODE``). Usage::

    .venv/bin/python scripts/bench-collection.py --items 10000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_overhead import child_env  # scripts/ is on sys.path: this script's directory

PLUGIN = """
import pytest

@pytest.mark.hetero(command=["true"])
@pytest.mark.parametrize("case", range({items}))
def test_case(case, hetero_result):
    pass
"""

PLAIN = """
import pytest

@pytest.mark.parametrize("case", range({items}))
def test_case(case):
    pass
"""


def _wall_s(directory: Path, env: dict[str, str], *extra: str) -> float:
    started = time.perf_counter()
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *extra]
    done = subprocess.run(argv, cwd=directory, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile-each-run", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as it is")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(None if args.compile_each_run else Path(tmp, "pycache"))
        dirs = {}
        for name, template in (("plugin", PLUGIN), ("plain", PLAIN)):
            dirs[name] = Path(tmp) / name
            dirs[name].mkdir()
            (dirs[name] / "test_c.py").write_text(template.format(items=args.items))
            (dirs[name] / "pytest.ini").write_text("[pytest]\n")
        _wall_s(dirs["plugin"], env)  # untimed: bytecode cached
        _wall_s(dirs["plain"], env, "-p", "no:hetero")
        plugin, plain = [], []
        for _ in range(args.repeats):
            plugin.append(_wall_s(dirs["plugin"], env))
            plain.append(_wall_s(dirs["plain"], env, "-p", "no:hetero"))
    a, b = statistics.median(plugin), statistics.median(plain)
    bytecode = "compiled each run" if args.compile_each_run else "bytecode cached"
    print(f"{args.items} items ({bytecode}): pytest-hetero {a:.2f} s, plain {b:.2f} s, ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
