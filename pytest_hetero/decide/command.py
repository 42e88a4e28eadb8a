"""``pytest-hetero rank REPORT... [--costs FILE] [--objective time|cost|energy] [--budget X] [--deadline T]``.

Prints the ranking (text, or Markdown, CSV, HTML with ``--format``/``-o``)
and, with ``--annotate DIR``, writes each report again with a ``decide`` block
in every record's ``extra`` (energy, cost split, samples per money and kJ), to
keep or to add to the history (``pytest-hetero history URL --add``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_hetero.decide.costs import CostModel, load_costs, unpriced_message
from pytest_hetero.decide.figures import run_figures
from pytest_hetero.decide.rank import OBJECTIVES, Constraints, WorkloadRanking, rank
from pytest_hetero.errors import ConfigError
from pytest_hetero.reporting.output import emit

__all__ = ["add_rank", "annotate", "parse_deadline_s", "parse_money"]

Loader = Callable[[Path], dict[str, Any]]
_UNITS_S = {"": 1.0, "s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_deadline_s(text: str) -> float:
    """``90``, ``90s``, ``10min``, ``1.5h``, ``2d`` -> seconds."""
    found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|min|m|h|d)?\s*", text)
    if not found or float(found.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"invalid deadline {text!r}: a positive time such as 90s, 10min, 2h")
    return float(found.group(1)) * _UNITS_S[found.group(2) or ""]


def parse_money(text: str) -> float:
    """A budget per run, in the costs file's currency."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"invalid budget {text!r}: a non-negative amount per run, e.g. 2.50")
    return value


def add_rank(parser: argparse.ArgumentParser, loader: Loader) -> None:
    """The ``rank`` subcommand's arguments; ``loader`` reads and validates one JSON report."""
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json")
    parser.add_argument("--costs", type=Path, metavar="FILE", help="cost model (schemas/costs.schema.json)")
    parser.add_argument("--objective", choices=OBJECTIVES, default="time", help="rank by (default: time)")
    parser.add_argument("--budget", type=parse_money, help="at most this much per run (the costs file's currency)")
    parser.add_argument("--deadline", type=parse_deadline_s, help="at most this long per run (90s, 10min, 2h)")
    formats = ("text", "markdown", "csv", "html")
    parser.add_argument("--format", choices=formats, default="text", help="output format (default: text)")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.add_argument("--annotate", type=Path, metavar="DIR", help="write each report with a decide block here")
    parser.set_defaults(run=lambda args: _run(args, loader))


def _run(args: argparse.Namespace, loader: Loader) -> int:
    model = load_costs(args.costs) if args.costs is not None else None
    if (args.objective == "cost" or args.budget is not None) and model is None:
        raise ConfigError(f"--objective {args.objective} / --budget need a cost model: give --costs FILE")
    reports = [(str(path), loader(path)) for path in args.reports]
    rankings = rank(reports, model, args.objective, Constraints(args.budget, args.deadline))
    _warn_unpriced(rankings, model)
    _refuse_no_figure(args.objective, rankings, model)
    emit(_render(args.format, rankings), args.output)
    if args.annotate is not None:
        for path, report in reports:
            emit(json.dumps(annotate(report, model), indent=2) + "\n", args.annotate / Path(path).name)
    return 0


def _warn_unpriced(rankings: Sequence[WorkloadRanking], model: CostModel | None) -> None:
    """A warning on stderr per measured platform the costs file does not price (its cost stays unknown)."""
    if model is None:
        return
    for platform in dict.fromkeys(p for ranking in rankings for p in ranking.unpriced):
        print(f"pytest-hetero rank: warning: {unpriced_message(model, platform)}: its cost is unknown", file=sys.stderr)


def _refuse_no_figure(objective: str, rankings: Sequence[WorkloadRanking], model: CostModel | None) -> None:
    """``--objective cost|energy`` where no result has that figure: an error, not an empty ranking (exit 4)."""
    if objective == "time" or any(r.ranked for r in rankings):
        return
    missing = [r for ranking in rankings for r in ranking.refused if r.missing]
    if not missing:
        return
    platforms = ", ".join(sorted({r.platform for r in missing}))
    if objective == "cost":
        source = f"the costs file {model.path}" if model is not None and model.path else "the costs file"
        raise ConfigError(
            f"--objective cost: no result has a cost ({platforms}): {source} prices none of these platforms "
            "(see the warnings above for the closest priced names)"
        )
    raise ConfigError(
        f"--objective energy: no result has an energy figure ({platforms}): none measured energy "
        "(no energy_j metric: no readable RAPL, NVML or AMD SMI counters) and no costs file gives "
        "the platform's nominal power to estimate it from: give --costs FILE"
    )


def annotate(report: Mapping[str, Any], model: CostModel | None) -> dict[str, Any]:
    """A copy of ``report`` with ``extra.decide`` in every passed record (the report schema allows ``extra``)."""
    copy: dict[str, Any] = json.loads(json.dumps(report))
    for record in copy.get("results", []):
        if record.get("outcome") == "passed":
            record.setdefault("extra", {})["decide"] = run_figures(record, model).as_dict()
    return copy


def _render(fmt: str, rankings: Sequence[WorkloadRanking]) -> str:
    from pytest_hetero.decide import render

    if fmt == "html":
        from pytest_hetero.decide.html import render_rank_html

        return render_rank_html(rankings)
    renderers = {"text": render.render_text, "markdown": render.render_markdown, "csv": render.render_csv}
    return renderers[fmt](rankings)
