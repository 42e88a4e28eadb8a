"""Argument converters shared by the pytest options and the ``pytest-hetero`` command line.

Each raises ``argparse.ArgumentTypeError`` quoting the bad value; argparse adds the flag.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pytest_hetero.errors import HeteroError
from pytest_hetero.metrics import AGGREGATES

if TYPE_CHECKING:  # the gate's modules load only when an option that needs them is given
    from pytest_hetero.check.statistics import RegressionExpr
    from pytest_hetero.history import Selection

__all__ = ["aggregate", "fraction", "regression_expr", "selection"]


def aggregate(text: str) -> str:
    """How repeats become one value: ``median`` or ``mlperf`` (drop the best and the worst, then the mean)."""
    if text not in AGGREGATES:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(AGGREGATES)}")
    return text


def fraction(text: str) -> float:
    """A number in [0, 1): a minimum effect or a significance level."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a fraction in [0, 1), e.g. 0.05")
    return value


def regression_expr(text: str) -> RegressionExpr:
    """A pytest-benchmark style expression such as ``mean:5%`` or ``min:0.001``."""
    from pytest_hetero.check.statistics import parse_regression_expr

    try:
        return parse_regression_expr(text)
    except HeteroError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def selection(text: str) -> Selection:
    """``last``, ``N`` or ``baseline:NAME``."""
    from pytest_hetero.history import Selection

    try:
        return Selection.parse(text)
    except HeteroError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
