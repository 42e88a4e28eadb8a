"""The Pareto front of time against cost: the results no other result beats on both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from pytest_hetero.decide.figures import RunFigures

__all__ = ["pareto_front"]


class _HasFigures(Protocol):
    @property
    def figures(self) -> RunFigures: ...


T = TypeVar("T", bound=_HasFigures)


def pareto_front(items: Sequence[T]) -> list[T]:
    """The non-dominated items (lower time and lower cost are better), by time; items lacking either are left out.

    An item is dominated when another is no worse on both and better on one.
    """
    known = [i for i in items if i.figures.time_s is not None and i.figures.cost is not None]
    front: list[T] = []
    best_cost = float("inf")
    for item in sorted(known, key=lambda i: (i.figures.time_s, i.figures.cost)):
        cost = item.figures.cost
        assert cost is not None
        if cost < best_cost:
            front.append(item)
            best_cost = cost
    return front
