"""Plugin CPU per trivial test against plain pytest starting one subprocess per test (same venv).

The suites of ``scripts/bench_overhead.py`` (N cases of a command that prints one
metric), each run as a child ``pytest``; CPU is user + system time of the run and
everything it started (``RUSAGE_CHILDREN``), divided by N; median of the repeats,
alternating, after one untimed run of each. The children cache their bytecode in a
temporary ``PYTHONPYCACHEPREFIX`` even where ``PYTHONDONTWRITEBYTECODE`` is set (as in
the project's shells), as an installed plugin would have it; ``--compile-each-run``
keeps the caller's setting, so every run compiles the plugin's modules (about 0.2 s).
Also prints the size of a trivial test's record in the JSON report, as written.

A third suite, the plain tests with a ``conftest.py`` that gives them what pytest charges any plugin
shaped like this one (an autouse fixture, a fixture on top of it, two hook wrappers, a report hook;
all empty), separates pytest's share of the difference from the plugin's own work.

The plugin keeps each job's two logs in a directory of its own (three inodes a job); plain
pytest writes none. On this project's VMs ext4 makes inode allocation slow for a while after
many deletions (the allocator skips recently deleted inodes one by one: ``perf`` shows
``recently_deleted``/``find_inode_bit``), which test suites and this script's own clean-up
cause, in /tmp above all; ``--tmpfs DIR`` adds a third run of the plugin with ``--hetero-output-dir``
on ``DIR`` (a tmpfs such as /dev/shm) in the same rounds, which takes the filesystem out.
``--dir DIR`` puts the suites (and so the default ``.hetero/``) under ``DIR`` instead of the
system's temporary directory: a project's directory, where a user's tests and their output live.

``--split`` adds one-case suites of the plugin and plain pytest to the same rounds and splits
the difference into start-up (the one-case runs) and the cost of each further test (N cases
minus one case, over N - 1).

``--also-tree DIR`` adds the plugin as another checkout has it (``git worktree add DIR <commit>``),
put first on ``PYTHONPATH``, to the same rounds (on tmpfs when ``--tmpfs`` is given): a change's
before and after, side by side. Usage::

    .venv/bin/python scripts/bench-overhead-cpu.py --cases 300 --repeats 3 [--tmpfs DIR] [--dir DIR] [--split]
        [--also-tree DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import bench_overhead  # scripts/ is on sys.path: this script's directory
from bench_overhead import child_env

#: The plain test, asking for the fixture the plugin's tests ask for.
_SHAPED_TEST = bench_overhead.PLAIN_TEST.replace("def test_case(case):", "def test_case(case, hetero_result):")
#: What pytest does for a plugin shaped like this one, with nothing in it.
_SHAPED_CONFTEST = """
import pytest

KEY = pytest.StashKey[object]()


@pytest.fixture(autouse=True)
def _hetero_platform(request):
    return (request.node.nodeid, None, 1)


@pytest.fixture
def hetero_result(_hetero_platform):
    return _hetero_platform[2]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    item.stash.get(KEY, None)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    return (yield)


def pytest_runtest_logreport(report):
    getattr(report, "hetero_record", None)
"""


class Run(NamedTuple):
    """One suite as a run of the rounds: its directory, pytest's extra arguments, another checkout's plugin."""

    directory: Path
    extra: tuple[str, ...]
    tree: Path | None = None


def _cpu_s(directory: Path, env: dict[str, str], *extra: str, tree: Path | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]
    if tree is not None:  # that checkout's pytest_hetero, found before the installed one
        env = {**env, "PYTHONPATH": os.pathsep.join([str(tree), *filter(None, [env.get("PYTHONPATH")])])}
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
    parser.add_argument("--tmpfs", type=Path, help="also run the plugin with its output directory under this tmpfs")
    parser.add_argument("--dir", type=Path, help="where the suites live (default: the system's temporary directory)")
    parser.add_argument("--split", action="store_true", help="also one-case runs: start-up against each further test")
    parser.add_argument("--also-tree", type=Path, help="also the plugin of this checkout, e.g. before a change")
    args = parser.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, tempfile.TemporaryDirectory(dir=args.tmpfs) as fast:
        env = child_env(None if args.compile_each_run else Path(tmp, "pycache"))
        plugin = bench_overhead._suite(Path(tmp), "plugin", bench_overhead.PLUGIN_TEST, args.cases)
        plain = bench_overhead._suite(Path(tmp), "plain", bench_overhead.PLAIN_TEST, args.cases)
        shaped = bench_overhead._suite(Path(tmp), "shaped", _SHAPED_TEST, args.cases)
        (shaped / "conftest.py").write_text(_SHAPED_CONFTEST)
        runs: dict[str, Run] = {
            "plugin": Run(plugin, ()),
            "plain": Run(plain, ("-p", "no:hetero")),
            "shaped": Run(shaped, ("-p", "no:hetero")),
        }
        if args.tmpfs is not None:
            runs["plugin, output on tmpfs"] = Run(plugin, (f"--hetero-output-dir={fast}",))
        if args.also_tree is not None:
            other = (f"--hetero-output-dir={Path(fast, 'other')}",) if args.tmpfs is not None else ()
            runs[f"plugin of {args.also_tree}"] = Run(plugin, other, args.also_tree.resolve())
        if args.split:
            one = Path(tmp, "one")
            one.mkdir()
            for name, template in (("plugin", bench_overhead.PLUGIN_TEST), ("plain", bench_overhead.PLAIN_TEST)):
                runs[f"{name}, 1 case"] = Run(bench_overhead._suite(one, name, template, 1), runs[name].extra)
        _cpu_s(plugin, env, "--hetero-json=report.json")  # untimed: bytecode cached, and the record's size
        _cpu_s(plain, env, "-p", "no:hetero")
        for run in runs.values():
            if run.tree is not None:  # untimed: that checkout's bytecode cached too
                _cpu_s(run.directory, env, *run.extra, tree=run.tree)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):  # alternating
            for name, run in runs.items():
                times[name].append(_cpu_s(run.directory, env, *run.extra, tree=run.tree))
        records = json.loads((plugin / "report.json").read_text())["results"]
        record_kb = statistics.median(len(json.dumps(r, separators=(",", ":"))) for r in records) / 1024
    cpu_s = {name: statistics.median(values) for name, values in times.items()}
    ms = {name: value / args.cases * 1e3 for name, value in cpu_s.items()}
    bytecode = "compiled each run" if args.compile_each_run else "bytecode cached"
    tmpfs = "".join(f", on tmpfs {v:.1f} ms (ratio {v / ms['plain']:.2f})" for k, v in ms.items() if "tmpfs" in k)
    print(
        f"{args.cases} cases ({bytecode}): pytest-hetero {ms['plugin']:.1f} ms CPU/test{tmpfs}, "
        f"plain subprocess {ms['plain']:.1f} ms, ratio {ms['plugin'] / ms['plain']:.2f}; "
        f"plain with the plugin's fixtures and hooks, empty, {ms['shaped']:.1f} ms "
        f"(ratio {ms['shaped'] / ms['plain']:.2f}); a trivial record {record_kb:.2f} KB (compact JSON, as written)"
    )
    for name in (name for name, run in runs.items() if run.tree is not None):
        print(f"{name}: {ms[name]:.1f} ms CPU/test (ratio {ms[name] / ms['plain']:.2f}), in the same rounds")
    if args.split:
        _print_split(cpu_s, args.cases)


def _print_split(cpu_s: dict[str, float], cases: int) -> None:
    """Start-up (the one-case runs) and each further test ((N cases - 1 case) / (N - 1)), plugin and plain."""
    further = {name: (cpu_s[name] - cpu_s[f"{name}, 1 case"]) / (cases - 1) * 1e3 for name in ("plugin", "plain")}
    print(
        f"split: start-up (1 case) pytest-hetero {cpu_s['plugin, 1 case']:.3f} s, plain "
        f"{cpu_s['plain, 1 case']:.3f} s (+{cpu_s['plugin, 1 case'] - cpu_s['plain, 1 case']:.3f} s); "
        f"each further test {further['plugin']:.2f} ms, plain {further['plain']:.2f} ms "
        f"(ratio {further['plugin'] / further['plain']:.2f})"
    )


if __name__ == "__main__":
    main()
