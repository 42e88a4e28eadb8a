"""``pytest-hetero``: render reports, compare runs, browse and curate the run history.

::

    pytest-hetero report REPORT.json... [--format markdown|html|csv|openmetrics] [-o FILE] [--history URL]
    pytest-hetero report REPORT.json... --html FILE [--history URL]
    pytest-hetero compare CURRENT.json BASELINE.json [--min-effect 0.05] [--alpha 0.05] [--fail-on mean:5%]
    pytest-hetero compare CURRENT.json --history URL [--against last|N|baseline:NAME] ...
    pytest-hetero history URL [--test T --platform P --metric M] [--limit 20] [--add REPORT.json...]
    pytest-hetero baseline URL NAME RUN_ID|latest|REPORT.json
    pytest-hetero rank REPORT.json... [--costs FILE] [--objective time|cost|energy] [--budget X] [--deadline T]

Exit codes (the same numbers as the plugin's where they overlap)::

    0  done; compare: no regression (unchanged, improved, or nothing comparable)
    3  infrastructure: the history store cannot be opened or written, a dependency is missing
    4  usage: bad arguments, an unreadable or invalid report, an unknown baseline or run
    6  compare: at least one performance regression
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pytest_hetero.arguments import fraction, regression_expr
from pytest_hetero.check.gate import Baseline, GateResult, HistoryBaseline, ReportBaseline, run_gate
from pytest_hetero.decide.command import add_rank
from pytest_hetero.errors import ConfigError, HeteroError
from pytest_hetero.history import HistoryError, HistoryStore, Selection, StoreUnavailableError, open_store
from pytest_hetero.reporting.json_report import expand_report
from pytest_hetero.reporting.output import emit
from pytest_hetero.schemas import load_schema, schema_errors

__all__ = ["EXIT_OK", "EXIT_REGRESSION", "EXIT_STORE_ERROR", "EXIT_USAGE", "console_main", "load_report", "main"]

EXIT_OK = 0
EXIT_STORE_ERROR = 3
EXIT_USAGE = 4
EXIT_REGRESSION = 6


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except StoreUnavailableError as exc:
        return _fail(EXIT_STORE_ERROR, exc)
    except (ConfigError, HistoryError) as exc:
        return _fail(EXIT_USAGE, exc)
    except HeteroError as exc:
        return _fail(EXIT_STORE_ERROR, exc)
    return code


def _fail(code: int, exc: Exception) -> int:
    print(f"pytest-hetero: error: {exc}", file=sys.stderr)
    return code


def load_report(path: Path) -> dict[str, Any]:
    """Read a JSON report and validate it against the shipped schema."""
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the report: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: cannot read the report: JSON nested too deeply") from None
    if _depth(report) > _MAX_REPORT_DEPTH:  # the schema check and the renderers recurse
        raise ConfigError(f"{path}: cannot read the report: JSON nested deeper than {_MAX_REPORT_DEPTH} levels")
    problems = schema_errors(report, load_schema("report"))
    if problems:
        shown = "\n  ".join(problems[:10])
        raise ConfigError(f"{path}: not a valid pytest-hetero report ({len(problems)} problem(s)):\n  {shown}")
    result: dict[str, Any] = expand_report(report)  # what the file says once, back in every record
    return result


#: A real report nests about 8 levels; this leaves room without reaching Python's recursion limit.
_MAX_REPORT_DEPTH = 64


def _depth(value: object) -> int:
    """How deeply lists and objects nest in parsed JSON (iterative: no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pytest-hetero", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)
    _add_report(commands.add_parser("report", help="render JSON reports (markdown, html, csv, openmetrics)"))
    _add_compare(commands.add_parser("compare", help="compare a run with another report or the history"))
    _add_history(commands.add_parser("history", help="list runs or one series of the history; add reports"))
    _add_baseline(commands.add_parser("baseline", help="save a stored run as a named baseline"))
    add_rank(commands.add_parser("rank", help="rank platforms per workload by time, cost or energy"), load_report)
    return parser


def _add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json")
    formats = ("markdown", "html", "csv", "openmetrics")
    parser.add_argument("--format", choices=formats, help="output format (default: markdown; html with --html)")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report here (--format html -o FILE)")
    parser.add_argument("--history", metavar="URL", help="HTML trends: add this store's earlier runs")
    parser.add_argument("--image-format", choices=("png", "svg"), default="png", help="HTML figures (default: png)")
    parser.set_defaults(run=_run_report)


def _add_compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("current", type=Path, metavar="CURRENT.json")
    parser.add_argument("baseline", type=Path, nargs="?", metavar="BASELINE.json")
    parser.add_argument("--history", metavar="URL", help="compare with this history store instead of a report")
    parser.add_argument("--against", default="last", help="with --history: last, N (runs) or baseline:NAME")
    parser.add_argument("--min-effect", type=fraction, default=0.05, help="smallest relative change (default: 0.05)")
    parser.add_argument("--alpha", type=fraction, default=0.05, help="significance level (default: 0.05)")
    parser.add_argument(
        "--fail-on", action="append", default=[], type=regression_expr, metavar="EXPR",
        help="also fail when a statistic got worse (pytest-benchmark syntax: mean:5%%, min:0.001); repeatable",
    )  # fmt: skip
    parser.add_argument("--format", choices=("markdown", "text"), default="text", help="output (default: text)")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.set_defaults(run=_run_compare)


def _add_history(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="a SQLite file or a postgresql:// URL")
    parser.add_argument("--test")
    parser.add_argument("--platform")
    parser.add_argument("--metric")
    parser.add_argument("--limit", type=int, default=20, help="runs to list (default: 20)")
    parser.add_argument("--add", nargs="+", type=Path, default=[], metavar="REPORT.json", help="store these reports")
    parser.set_defaults(run=_run_history)


def _add_baseline(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("run_id", metavar="RUN", help="a stored run id, 'latest', or a JSON report (its run id)")
    parser.set_defaults(run=_run_baseline)


def _run_report(args: argparse.Namespace) -> int:
    fmt, output = _report_target(args)
    reports = [load_report(path) for path in args.reports]
    if fmt == "html":
        from pytest_hetero.reporting.html import render_html

        history = _trend_points(args.history, reports) if args.history else None
        emit(render_html(reports, history, image_format=args.image_format), output)
    else:
        emit(_render_text_format(fmt, reports), output)
    if output is not None:
        print(f"wrote the {fmt} report of {len(reports)} run(s) to {output.resolve()}")
    return EXIT_OK


def _report_target(args: argparse.Namespace) -> tuple[str, Path | None]:
    """The format and the output file; ``--html FILE`` is ``--format html -o FILE``."""
    if args.html is None:
        return args.format or "markdown", args.output
    if args.format not in (None, "html") or args.output not in (None, args.html):
        raise ConfigError("--html FILE writes HTML to FILE: leave out --format and -o, or use --format html -o FILE")
    return "html", args.html


def _render_text_format(fmt: str, reports: list[dict[str, Any]]) -> str:
    if fmt == "csv":
        from pytest_hetero.reporting.csv_report import render_csv

        return render_csv(reports)
    if fmt == "openmetrics":
        from pytest_hetero.reporting.openmetrics import render_openmetrics

        return render_openmetrics(reports)
    from pytest_hetero.reporting.markdown import render_summary

    return render_summary(reports)


def _trend_points(url: str, reports: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[Any]]:
    from pytest_hetero.reporting.html import TrendPoint

    keys = {(r["test"], r["platform"]["name"], m) for rep in reports for r in rep["results"] for m in r["metrics"]}
    with open_store(url) as store:
        return {key: [TrendPoint(*point) for point in store.series(*key)] for key in sorted(keys)}


def _run_compare(args: argparse.Namespace) -> int:
    if (args.baseline is None) == (args.history is None):
        raise ConfigError("compare needs either BASELINE.json or --history URL (not both)")
    current = load_report(args.current)
    if args.history is not None:
        selection = Selection.parse(args.against)
        with open_store(args.history) as store:
            gate = _gate(current, HistoryBaseline(store, selection, current["run_id"]), args)
    else:
        gate = _gate(current, ReportBaseline(load_report(args.baseline), str(args.baseline)), args)
    if args.format == "markdown":
        from pytest_hetero.reporting.markdown import render_comparison

        emit(render_comparison(gate), args.output)
    else:
        emit(_comparison_text(gate), args.output)
    return EXIT_REGRESSION if gate.regressions else EXIT_OK


def _gate(current: dict[str, Any], baseline: Baseline, args: argparse.Namespace) -> GateResult:
    return run_gate(current, baseline, min_effect=args.min_effect, alpha=args.alpha, exprs=args.fail_on)


def _comparison_text(gate: GateResult) -> str:
    tally = ", ".join(f"{n} {verdict}" for verdict, n in gate.counts().items() if n) or "nothing compared"
    lines = [f"compared with {gate.against}: {tally}"]
    lines += [f"  {row.verdict.upper():<17} {row.message}" for row in gate.rows if not row.note]
    lines += [f"  not compared: {note}" for note in gate.notes]
    return "\n".join(lines) + "\n"


def _run_history(args: argparse.Namespace) -> int:
    reports = [load_report(path) for path in args.add]
    series = (args.test, args.platform, args.metric)
    if any(series) and not all(series):
        raise ConfigError("history: give all of --test, --platform and --metric to show one series")
    with open_store(args.url) as store:
        for report in reports:
            store.add_report(report)
        if reports:
            print(f"added {len(reports)} report(s) to {store.description}")
        text = _series_text(store, *series) if all(series) else _runs_text(store, args.limit)
    sys.stdout.write(text)
    return EXIT_OK


def _runs_text(store: HistoryStore, limit: int) -> str:
    baselines: dict[str, list[str]] = {}
    for name, run_id in store.baselines().items():
        baselines.setdefault(run_id, []).append(name)
    lines = [f"{'run id':<28} {'created at':<21} {'commit':<11} exit  baselines"]
    for run in store.runs(limit):
        commit = (run.git_commit or "-")[:10]
        names = ", ".join(baselines.get(run.run_id, []))
        lines.append(f"{run.run_id:<28} {run.created_at:<21} {commit:<11} {run.exit_status!s:<5} {names}".rstrip())
    return "\n".join(lines) + "\n"


def _series_text(store: HistoryStore, test: str, platform: str, metric: str) -> str:
    points = store.series(test, platform, metric)
    if not points:
        return f"no values of {metric} for {test} on {platform} in {store.description}\n"
    lines = [f"{metric} of {test} on {platform}:", f"{'run id':<28} {'created at':<21} {'value':>12}  config hash"]
    for p in points:
        value = "n/a" if p.value is None else f"{p.value:.6g}"
        lines.append(f"{p.run_id:<28} {p.created_at:<21} {value:>12}  {p.config_hash}")
    return "\n".join(lines) + "\n"


def _run_baseline(args: argparse.Namespace) -> int:
    run_id = args.run_id
    if run_id.endswith(".json"):
        run_id = load_report(Path(run_id))["run_id"]
    with open_store(args.url) as store:
        if run_id == "latest":
            newest = store.runs(1)
            if not newest:
                raise HistoryError(f"history store {store.description} holds no runs yet")
            run_id = newest[0].run_id
        store.save_baseline(args.name, run_id)
    print(f"baseline {args.name!r} -> run {run_id}")
    return EXIT_OK


def console_main() -> None:
    """The ``pytest-hetero`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
