"""``--hetero-costs FILE``: each result's energy and cost, in the JSON report, JUnit properties and the history.

With a cost model (:mod:`pytest_hetero.decide.costs`) every passed record gets

- informational metrics (``gated: false``, never judged by the regression
  gate), which the history stores like any other: ``energy_estimated_j`` when
  the run measured no energy (a measured run already has ``energy_j``),
  ``cost_capital``, ``cost_operating``, ``cost_total`` (unit: the currency),
  ``samples_per_money`` and ``samples_per_kj`` (``samples_per_kj_estimated``
  from estimated energy);
- ``extra.decide``: the whole breakdown (:meth:`RunFigures.as_dict`), energy
  marked ``measured`` or ``estimated`` with how it was estimated;
- JUnit properties ``hetero.energy_j`` with ``hetero.energy_kind``, and
  ``hetero.cost.{capital,operating,total,currency}``.

A platform the costs file does not price gets no cost (and no estimated
energy); the terminal summary names it, with the closest priced name.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hetero.errors import ConfigError
from pytest_hetero.results import ResultRecord

if TYPE_CHECKING:  # the cost model's modules load only in runs given one
    from pytest_hetero.decide.costs import CostModel
    from pytest_hetero.decide.figures import RunFigures

__all__ = ["COSTS_KEY", "decide_metrics", "decide_properties"]

COSTS_KEY: pytest.StashKey[CostModel] = pytest.StashKey()
UNPRICED_KEY = pytest.StashKey[set[str]]()


def _costs_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"--hetero-costs {value!r}: no such file")
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hetero", "pytest-hetero: ML benchmarks across accelerators")
    group.addoption(
        "--hetero-costs",
        default=None,
        type=_costs_file,
        dest="hetero_costs",
        metavar="FILE",
        help="cost model (docs/decide.md): add each result's energy and cost per run to its record, "
        "JUnit properties and the history (default: ini hetero_costs, else none)",
    )
    parser.addini("hetero_costs", "cost model file for --hetero-costs, relative to the rootdir", default=None)


def pytest_configure(config: pytest.Config) -> None:
    path: Path | None = config.getoption("hetero_costs", None)
    ini = config.getini("hetero_costs")
    if path is None and ini:
        path = config.rootpath / str(ini)
    if path is None:
        return
    from pytest_hetero.decide.costs import load_costs

    try:
        config.stash[COSTS_KEY] = load_costs(path)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_hetero_result_record(record: ResultRecord, item: pytest.Item) -> None:
    model = item.config.stash.get(COSTS_KEY, None)
    if model is None or record["outcome"] != "passed":
        return
    from pytest_hetero.decide.figures import run_figures

    if model.get(record["platform"]["name"]) is None:
        item.config.stash.setdefault(UNPRICED_KEY, set()).add(record["platform"]["name"])
    figures = run_figures(record, model)
    record["metrics"].update(decide_metrics(figures))
    extra: dict[str, Any] = record.setdefault("extra", {})  # type: ignore[typeddict-item]
    extra["decide"] = figures.as_dict()
    item.user_properties.extend(decide_properties(figures))  # the teardown report carries them to JUnit


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    model = config.stash.get(COSTS_KEY, None)
    unpriced = sorted(config.stash.get(UNPRICED_KEY, None) or ())
    if model is None or not unpriced:
        return
    from pytest_hetero.decide.costs import unpriced_message

    terminalreporter.section("hetero costs")
    for platform in unpriced:
        terminalreporter.write_line(f"note: {unpriced_message(model, platform)}: its results carry no cost")


def _metric(name: str, value: float | None, unit: str, higher_is_better: bool) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    return {name: {"name": name, "value": value, "unit": unit, "higher_is_better": higher_is_better, "gated": False}}


def decide_metrics(figures: RunFigures) -> dict[str, dict[str, Any]]:
    """The informational metrics of one result (record ``metrics`` entries)."""
    currency = figures.currency or ""
    suffix = "" if figures.energy_measured else "_estimated"
    found: dict[str, dict[str, Any]] = {}
    if not figures.energy_measured:
        found |= _metric("energy_estimated_j", figures.energy_j, "J", False)
    found |= _metric("cost_capital", figures.capital, currency, False)
    found |= _metric("cost_operating", figures.operating, currency, False)
    found |= _metric("cost_total", figures.cost, currency, False)
    found |= _metric("samples_per_money", figures.samples_per_money, f"samples/{currency}", True)
    found |= _metric(f"samples_per_kj{suffix}", figures.samples_per_kj, "samples/kJ", True)
    return found


def decide_properties(figures: RunFigures) -> list[tuple[str, object]]:
    """JUnit ``<property>`` pairs of one result."""
    props: list[tuple[str, object]] = []
    if figures.energy_j is not None:
        props += [("hetero.energy_j", figures.energy_j), ("hetero.energy_kind", figures.energy_word)]
    if figures.cost is not None:
        props += [
            ("hetero.cost.capital", figures.capital),
            ("hetero.cost.operating", figures.operating),
            ("hetero.cost.total", figures.cost),
            ("hetero.cost.currency", figures.currency),
        ]
    return props
