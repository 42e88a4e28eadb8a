"""Plugin overhead per benchmark on the local backend.

Runs N parametrised cases of a trivial command workload that prints one
metric, once through pytest-hetero and once as plain pytest tests that call
the same command with subprocess, alternating, in the same run, and prints
milliseconds per test and the ratio. Usage:

    .venv/bin/python scripts/bench_overhead.py --cases 100 300 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

COMMAND = ["sh", "-c", 'echo \':::HETERO_METRICS {"metrics": [{"name": "x_per_s", "value": 1}]}\'']

PLUGIN_TEST = """
import pytest

@pytest.mark.hetero(command={command!r})
@pytest.mark.parametrize("case", range({cases}))
def test_case(case, hetero_result):
    assert hetero_result.metric("x_per_s") == 1
"""

PLAIN_TEST = """
import json, subprocess
import pytest

@pytest.mark.parametrize("case", range({cases}))
def test_case(case):
    out = subprocess.run({command!r}, capture_output=True, text=True, check=True).stdout
    record = json.loads(out.split(":::HETERO_METRICS ", 1)[1])
    assert record["metrics"][0]["value"] == 1
"""


def child_env(pycache: Path | None) -> dict[str, str]:
    """The children's environment: bytecode cached under ``pycache`` (None: as the caller has it).

    The project's shells set ``PYTHONDONTWRITEBYTECODE``, so each child pytest would compile the
    plugin again; an installed plugin has its bytecode. Shared by the ``bench-*.py`` scripts.
    """
    env = dict(os.environ)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _wall_s(directory: Path, *extra: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pytest failed in {directory}:\n{done.stdout[-2000:]}")
    return elapsed


def _suite(root: Path, name: str, template: str, cases: int) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "test_overhead.py").write_text(textwrap.dedent(template.format(command=COMMAND, cases=cases)))
    (directory / "pytest.ini").write_text("[pytest]\n")
    return directory


def measure(cases: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plugin = _suite(root, "plugin", PLUGIN_TEST, cases)
        plain = _suite(root, "plain", PLAIN_TEST, cases)
        plugin_s, plain_s = [], []
        for _ in range(repeats):  # alternate, so drifting machine load hits both alike
            plugin_s.append(_wall_s(plugin))
            plain_s.append(_wall_s(plain, "-p", "no:hetero"))
    plugin_ms = statistics.median(plugin_s) / cases * 1000
    plain_ms = statistics.median(plain_s) / cases * 1000
    return {"cases": cases, "plugin_ms": plugin_ms, "plain_ms": plain_ms, "ratio": plugin_ms / plain_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| cases | pytest-hetero ms/test | plain subprocess ms/test | ratio | overhead ms/test |")
    print("|---:|---:|---:|---:|---:|")
    for cases in args.cases:
        row = measure(cases, args.repeats)
        overhead = row["plugin_ms"] - row["plain_ms"]
        print(
            f"| {cases} | {row['plugin_ms']:.1f} | {row['plain_ms']:.1f} | {row['ratio']:.2f} | {overhead:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
