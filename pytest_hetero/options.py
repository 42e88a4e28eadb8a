"""Command-line options and ini keys, each with a converter.

All options share the ``--hetero-`` prefix (plus the short ``--platform`` and
``--platforms-file``); ini keys start with ``hetero_``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_hetero.arguments import aggregate, fraction, regression_expr, selection

if TYPE_CHECKING:  # the gate's modules load only when a run compares
    from pytest_hetero.check.statistics import RegressionExpr
    from pytest_hetero.history import Selection

__all__ = ["HeteroOptions", "add_options", "read_options"]

DEFAULT_OUTPUT_DIR = ".hetero"


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"--platforms-file {value!r}: no such file")
    return path


#: More repeats than this is a typo, not a plan: each one is a job.
MAX_REPEAT = 1000


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_REPEAT:
        raise argparse.ArgumentTypeError(f"--hetero-repeat {value!r}: expected a whole number from 1 to {MAX_REPEAT}")
    return number


def _split_selectors(values: Iterable[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("hetero", "pytest-hetero: ML benchmarks across accelerators")
    _add_selection_options(group)
    _add_output_options(group)
    _add_repeat_options(group)
    _add_gate_options(group)
    parser.addini("hetero_platforms", "platform catalogue file, relative to the rootdir", default=None)
    parser.addini("hetero_history", "run-history store (SQLite path or postgresql:// URL)", default=None)
    parser.addini("hetero_output_dir", "directory for job logs and scripts", default=DEFAULT_OUTPUT_DIR)


def _add_selection_options(group: pytest.OptionGroup) -> None:
    """Which platforms, and whether to submit at all."""
    group.addoption(
        "--platform",
        action="append",
        default=[],
        dest="hetero_platform",
        metavar="NAME",
        help="platform(s) to benchmark on: names, comma lists, shell globs ('a100-*'), "
        "'tag:NAME' or 'all'; repeatable (default: local)",
    )
    group.addoption(
        "--platforms-file",
        type=_existing_file,
        default=None,
        dest="hetero_platforms_file",
        metavar="PATH",
        help="platform catalogue (YAML) (default: ini hetero_platforms, else the built-in 'local' only)",
    )
    group.addoption(
        "--hetero-dry-run",
        action="store_true",
        dest="hetero_dry_run",
        help="print what each benchmark would submit, and submit nothing (default: off)",
    )


def _add_output_options(group: pytest.OptionGroup) -> None:
    """Reports, logs and references."""
    group.addoption(
        "--hetero-json",
        default=None,
        dest="hetero_json",
        metavar="PATH",
        help="write the versioned JSON report to PATH (default: none)",
    )
    group.addoption(
        "--hetero-benchmark-json",
        default=None,
        dest="hetero_benchmark_json",
        metavar="PATH",
        help="also write the results in pytest-benchmark's JSON format, one entry per test and metric (default: none)",
    )
    group.addoption(
        "--hetero-output-dir",
        default=None,
        dest="hetero_output_dir",
        metavar="DIR",
        help=f"where job logs and scripts are kept (default: ini hetero_output_dir, else {DEFAULT_OUTPUT_DIR})",
    )
    group.addoption(
        "--hetero-require-references",
        action="store_true",
        dest="hetero_require_references",
        help="fail a benchmark that has no reference for a metric it reports (default: off)",
    )
    group.addoption(
        "--hetero-update-references",
        action="store_true",
        dest="hetero_update_references",
        help="write measured values back to references.yaml instead of checking them (default: off)",
    )


def _add_repeat_options(group: pytest.OptionGroup) -> None:
    """How often each benchmark runs, and the one value of its repeats."""
    group.addoption(
        "--hetero-repeat",
        type=_positive_int,
        default=1,
        dest="hetero_repeat",
        metavar="N",
        help="run each benchmark N times, each with its own seed; report every sample, their spread "
        "and one value (--hetero-aggregate) (default: 1)",
    )
    group.addoption(
        "--hetero-aggregate",
        type=aggregate,
        default="median",
        dest="hetero_aggregate",
        metavar="median|mlperf",
        help="the value of repeated runs: their median, or MLPerf's score (drop the best and the worst run, "
        "average the rest; needs --hetero-repeat 3 or more) (default: median)",
    )


def _add_gate_options(group: pytest.OptionGroup) -> None:
    """The history store and the regression gate."""
    group.addoption(
        "--hetero-history",
        default=None,
        dest="hetero_history",
        metavar="PATH|URL",
        help="run-history store: an SQLite file or postgresql://... ; every run is added to it "
        "(default: ini hetero_history, else none)",
    )
    group.addoption(
        "--hetero-compare",
        type=selection,
        default=None,
        dest="hetero_compare",
        metavar="last|N|baseline:NAME",
        help="compare each result with the history (the previous run, the last N runs, or a saved baseline); "
        "a statistically significant regression fails the test (default: no comparison)",
    )
    group.addoption(
        "--hetero-compare-fail",
        type=regression_expr,
        action="append",
        default=[],
        dest="hetero_compare_fail",
        metavar="EXPR",
        help="pytest-benchmark style regression expression, e.g. 'mean:5%%' or 'min:0.001'; repeatable (default: none)",
    )
    group.addoption(
        "--hetero-min-effect",
        type=fraction,
        default=0.05,
        dest="hetero_min_effect",
        metavar="FRACTION",
        help="smallest relative change of the median that counts as a regression (default: 0.05)",
    )
    group.addoption(
        "--hetero-save-baseline",
        default=None,
        dest="hetero_save_baseline",
        metavar="NAME",
        help="save this run in the history as baseline NAME (default: none)",
    )


@dataclass(frozen=True)
class HeteroOptions:
    selectors: tuple[str, ...]
    platforms_file: Path | None
    json_path: Path | None
    benchmark_json_path: Path | None
    output_dir: Path
    require_references: bool
    update_references: bool
    dry_run: bool
    repeat: int = 1
    aggregate: str = "median"
    history: str | None = None
    compare: Selection | None = None
    compare_fail: tuple[RegressionExpr, ...] = ()
    min_effect: float = 0.05
    save_baseline: str | None = None


def read_options(config: pytest.Config) -> HeteroOptions:
    getopt = config.getoption
    platforms_file = getopt("hetero_platforms_file")
    ini_file = config.getini("hetero_platforms")
    if platforms_file is None and ini_file:
        platforms_file = config.rootpath / str(ini_file)
        if not platforms_file.is_file():
            raise pytest.UsageError(f"ini hetero_platforms = {ini_file!r}: no such file ({platforms_file})")
    output_dir = getopt("hetero_output_dir") or config.rootpath / str(config.getini("hetero_output_dir"))
    json_path = getopt("hetero_json")
    return HeteroOptions(
        selectors=tuple(_split_selectors(getopt("hetero_platform"))),
        platforms_file=platforms_file,
        json_path=Path(json_path) if json_path else None,
        benchmark_json_path=_optional_path(getopt("hetero_benchmark_json")),
        output_dir=Path(output_dir),
        require_references=bool(getopt("hetero_require_references")),
        update_references=bool(getopt("hetero_update_references")),
        dry_run=bool(getopt("hetero_dry_run")),
        repeat=int(getopt("hetero_repeat")),
        aggregate=_aggregate(config),
        history=_history_target(config),
        compare=getopt("hetero_compare"),
        compare_fail=tuple(getopt("hetero_compare_fail")),
        min_effect=float(getopt("hetero_min_effect")),
        save_baseline=getopt("hetero_save_baseline"),
    )


def _history_target(config: pytest.Config) -> str | None:
    """The store: a URL as given; a path relative to the current directory (option) or rootdir (ini)."""
    option, ini = config.getoption("hetero_history"), config.getini("hetero_history")
    if not (option or ini):
        if config.getoption("hetero_compare") or config.getoption("hetero_save_baseline"):
            raise pytest.UsageError("--hetero-compare and --hetero-save-baseline need --hetero-history PATH|URL")
        return None
    text = str(option or ini)
    if "://" in text:
        return text
    return str(Path(text).absolute() if option else config.rootpath / text)


def _aggregate(config: pytest.Config) -> str:
    chosen, repeat = str(config.getoption("hetero_aggregate")), int(config.getoption("hetero_repeat"))
    if chosen == "mlperf" and repeat < 3:
        raise pytest.UsageError(
            f"--hetero-aggregate mlperf drops the best and the worst run: it needs --hetero-repeat 3 or more, "
            f"not {repeat}"
        )
    return chosen


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None
