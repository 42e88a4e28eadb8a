"""The cost model of each platform (``pytest-hetero rank --costs FILE``).

A costs file (YAML or JSON, ``schemas/costs.schema.json``) prices every
platform either as **owned** hardware (capital: purchase price per node,
lifetime, expected utilisation, yearly maintenance; operating: power x
electricity price x PUE) or as **rented** accelerators (a price per
accelerator-hour, everything included). Every figure is ``{value, source}``
and one ``currency`` covers the whole file. Capital is spread over the hours
a node does paid work: ``(price / lifetime_years + maintenance_per_year) /
(hours_per_year x utilisation)`` per node-hour.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_hetero.config.safe_yaml import load_yaml, non_finite_paths
from pytest_hetero.errors import ConfigError
from pytest_hetero.schemas import load_schema, schema_errors

__all__ = [
    "HOURS_PER_YEAR",
    "Capital",
    "CostModel",
    "Electricity",
    "Figure",
    "PlatformCost",
    "load_costs",
    "unpriced_message",
]

#: 365.25 days: the depreciation year.
HOURS_PER_YEAR = 8766.0


@dataclass(frozen=True)
class Figure:
    """One number of the cost model and where it comes from."""

    value: float
    source: str

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Figure:
        return cls(float(data["value"]), str(data["source"]))


@dataclass(frozen=True)
class Electricity:
    price_per_kwh: Figure
    pue: Figure

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Electricity:
        return cls(Figure.of(data["price_per_kwh"]), Figure.of(data["pue"]))

    def cost_of(self, it_energy_j: float) -> float:
        """What ``it_energy_j`` joules at the IT equipment cost, facility overhead (PUE) included."""
        return it_energy_j / 3.6e6 * self.pue.value * self.price_per_kwh.value


@dataclass(frozen=True)
class Capital:
    price_per_node: Figure
    lifetime_years: Figure
    utilisation: Figure
    maintenance_per_year: Figure | None = None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Capital:
        maintenance = data.get("maintenance_per_year")
        return cls(
            Figure.of(data["price_per_node"]),
            Figure.of(data["lifetime_years"]),
            Figure.of(data["utilisation"]),
            None if maintenance is None else Figure.of(maintenance),
        )

    @property
    def per_node_hour(self) -> float:
        """Depreciation and maintenance of one node, per hour of paid work."""
        yearly = self.price_per_node.value / self.lifetime_years.value
        yearly += self.maintenance_per_year.value if self.maintenance_per_year else 0.0
        return yearly / (HOURS_PER_YEAR * self.utilisation.value)


@dataclass(frozen=True)
class PlatformCost:
    """How one platform is priced: owned (``capital`` + ``electricity``) or rented (``rental``)."""

    name: str
    nominal_w_per_node: Figure
    capital: Capital | None = None
    electricity: Electricity | None = None
    rental_per_accelerator_hour: Figure | None = None

    @property
    def basis(self) -> str:
        return "rental" if self.rental_per_accelerator_hour is not None else "owned"


@dataclass(frozen=True)
class CostModel:
    currency: str
    platforms: Mapping[str, PlatformCost]
    path: str = ""

    def get(self, platform: str) -> PlatformCost | None:
        return self.platforms.get(platform)


def unpriced_message(model: CostModel, platform: str) -> str:
    """That ``platform`` is not priced in ``model``, with the closest priced name (a typo?) or what is priced."""
    where = f"the costs file {model.path}" if model.path else "the costs file"
    close = difflib.get_close_matches(platform, list(model.platforms), n=1, cutoff=0.6)
    hint = f"closest priced name: {close[0]!r}" if close else f"it prices {', '.join(sorted(model.platforms))}"
    return f"platform {platform!r} is not priced in {where} ({hint})"


def load_costs(path: Path) -> CostModel:
    """Read and validate a costs file; every problem at once, each with the file and its JSON path."""
    data = load_yaml(path, "costs file")
    problems = schema_errors(data, load_schema("costs"))
    if not problems:
        problems = list(non_finite_paths(data)) + _missing_electricity(data)
    if problems:
        shown = "\n  ".join(problems)
        raise ConfigError(f"{path}: invalid costs file ({len(problems)} problem(s)):\n  {shown}")
    default = data.get("electricity")
    platforms = {name: _platform(name, entry, default) for name, entry in data["platforms"].items()}
    return CostModel(str(data["currency"]), platforms, str(path))


def _missing_electricity(data: Mapping[str, Any]) -> list[str]:
    """Owned hardware needs an electricity price: its own or the file's default."""
    if data.get("electricity") is not None:
        return []
    return [
        f"$.platforms.{name}.electricity: owned hardware (capital) needs an electricity price and PUE; "
        "give them here or once at $.electricity"
        for name, entry in data["platforms"].items()
        if "capital" in entry and "electricity" not in entry
    ]


def _platform(name: str, entry: Mapping[str, Any], default: Mapping[str, Any] | None) -> PlatformCost:
    electricity = entry.get("electricity", default)
    rental = entry.get("rental")
    return PlatformCost(
        name=name,
        nominal_w_per_node=Figure.of(entry["power"]["nominal_w_per_node"]),
        capital=Capital.of(entry["capital"]) if "capital" in entry else None,
        electricity=None if electricity is None else Electricity.of(electricity),
        rental_per_accelerator_hour=None if rental is None else Figure.of(rental["price_per_accelerator_hour"]),
    )
