"""One result's decision figures: time to train, energy, cost (capital and operating apart), samples per money and kJ.

Energy is **measured** when the run's record carries the workload's
``energy_j`` (read from NVML, AMD SMI or RAPL counters in the job, see
:mod:`pytest_hetero.workloads.energy`), else **estimated** as the platform's
nominal power per node x the share of nodes used x the time, and says so
wherever it is shown. Cost of an owned platform = capital (depreciation and
maintenance per node-hour x node-hours) + operating (energy x PUE x price);
of a rented one = price per accelerator-hour x accelerator-hours (all of it
operating, no capital).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pytest_hetero.decide.costs import CostModel, PlatformCost

__all__ = ["RunFigures", "figures_of", "run_figures", "run_time_s"]

#: Where the time of one run comes from, first found wins.
_TIME_METRICS = ("time_to_train_s",)


@dataclass(frozen=True)
class RunFigures:
    """What one run of a benchmark on one platform took and cost."""

    platform: str
    nodes: int
    accelerators: int
    time_s: float | None
    time_source: str
    energy_j: float | None
    energy_measured: bool
    energy_note: str
    samples: float | None = None
    capital: float | None = None
    operating: float | None = None
    basis: str | None = None  # owned, rental, or None without a cost model for the platform
    currency: str | None = None

    @property
    def cost(self) -> float | None:
        if self.capital is None or self.operating is None:
            return None
        return self.capital + self.operating

    @property
    def accelerators_per_node(self) -> int:
        return max(1, self.accelerators // max(1, self.nodes))

    @property
    def energy_word(self) -> str:
        """``measured`` or ``estimated`` beside every energy figure; ``unknown`` where there is none."""
        if self.energy_j is None:
            return "unknown"
        return "measured" if self.energy_measured else "estimated"

    @property
    def samples_per_money(self) -> float | None:
        cost = self.cost
        return None if self.samples is None or not cost else self.samples / cost

    @property
    def samples_per_kj(self) -> float | None:
        return None if self.samples is None or not self.energy_j else self.samples / (self.energy_j / 1e3)

    @classmethod
    def from_dict(cls, block: Mapping[str, Any]) -> RunFigures:
        """Back from a record's ``extra.decide`` (written by ``--hetero-costs`` or ``rank --annotate``)."""
        energy, cost = block["energy"], block["cost"]
        return cls(
            platform=block["platform"],
            nodes=int(block["nodes"]),
            accelerators=int(block["accelerators"]),
            time_s=block["time_s"],
            time_source=block["time_source"],
            energy_j=energy["joules"],
            energy_measured=energy["kind"] == "measured",  # "estimated" or "unknown" otherwise
            energy_note=energy["note"],
            samples=block.get("samples"),
            capital=cost["capital"],
            operating=cost["operating"],
            basis=cost["basis"],
            currency=cost["currency"],
        )

    def as_dict(self) -> dict[str, Any]:
        """The ``decide`` block of a report record (JSON)."""
        return {
            "platform": self.platform,
            "nodes": self.nodes,
            "accelerators": self.accelerators,
            "time_s": self.time_s,
            "time_source": self.time_source,
            "energy": {"joules": self.energy_j, "kind": self.energy_word, "note": self.energy_note},
            "cost": {
                "currency": self.currency,
                "basis": self.basis,
                "capital": self.capital,
                "operating": self.operating,
                "total": self.cost,
            },
            "samples": self.samples,
            "samples_per_money": self.samples_per_money,
            "samples_per_kj": self.samples_per_kj,
        }


def _metric(record: Mapping[str, Any], name: str) -> float | None:
    found = record.get("metrics", {}).get(name)
    value = None if found is None else found.get("value")
    return None if value is None else float(value)


def run_time_s(record: Mapping[str, Any]) -> tuple[float | None, str]:
    """The time of one run: the workload's time to train, else the job's wall time as the plugin saw it."""
    for name in _TIME_METRICS:
        value = _metric(record, name)
        if value is not None:
            return value, name
    waited = record.get("stage_timings_s", {}).get("wait")
    return (None, "none") if waited is None else (float(waited), "stage wait (job wall time)")


def _node_share(record: Mapping[str, Any]) -> tuple[float, int]:
    """Nodes used (a fraction when the job uses some of a node's accelerators) and accelerators used."""
    platform = record["platform"]
    accelerator = platform.get("accelerator", {})
    per_node = max(1, int(accelerator.get("count_per_node") or 1))
    used = max(1, int(accelerator.get("used_per_node") or per_node))
    nodes = int(platform.get("nodes", 1))
    return nodes * min(used, per_node) / per_node, nodes * used


def run_figures(record: Mapping[str, Any], model: CostModel | None) -> RunFigures:
    """The figures of one report record under ``model`` (None: time and measured energy only)."""
    platform = record["platform"]["name"]
    time_s, time_source = run_time_s(record)
    share, accelerators = _node_share(record)
    price = model.get(platform) if model is not None else None
    energy_j, measured, note = _energy(record, price, share, time_s)
    samples = _samples(record, time_s)
    base = RunFigures(
        platform, int(record["platform"].get("nodes", 1)), accelerators, time_s, time_source, energy_j, measured, note
    )
    if price is None or time_s is None or model is None:
        return replace(base, samples=samples)
    hours = time_s / 3600.0
    if price.rental_per_accelerator_hour is not None:
        operating = price.rental_per_accelerator_hour.value * accelerators * hours
        return replace(base, samples=samples, capital=0.0, operating=operating, basis="rental", currency=model.currency)
    assert price.capital is not None and price.electricity is not None  # the loader checked both
    capital = price.capital.per_node_hour * share * hours
    operating = price.electricity.cost_of(energy_j or 0.0)
    return replace(base, samples=samples, capital=capital, operating=operating, basis="owned", currency=model.currency)


def figures_of(record: Mapping[str, Any], model: CostModel | None) -> RunFigures:
    """Under ``model``; without one, what the record's ``extra.decide`` says, if it has one."""
    block = (record.get("extra") or {}).get("decide")
    if model is None and isinstance(block, Mapping):
        try:
            return RunFigures.from_dict(block)
        except (KeyError, TypeError, ValueError):
            pass  # not ours, or older: recompute
    return run_figures(record, model)


def _energy(
    record: Mapping[str, Any], price: PlatformCost | None, share: float, time_s: float | None
) -> tuple[float | None, bool, str]:
    measured = _metric(record, "energy_j")
    if measured is not None:
        power = _metric(record, "avg_power_w")
        shown = f", {power:.1f} W average" if power is not None else ""
        return measured, True, f"measured by the workload's energy counters{shown}"
    if price is None or time_s is None:
        why = "no nominal power: no costs file or the platform not priced there" if price is None else "no time"
        return None, False, f"unknown: the run measured none and nothing to estimate it from ({why})"
    watts = price.nominal_w_per_node.value
    energy_j = watts * share * time_s
    return energy_j, False, f"estimated: {watts:g} W per node x {share:g} node(s) x {time_s:.3g} s"


def _samples(record: Mapping[str, Any], time_s: float | None) -> float | None:
    """Samples one run trained on: throughput x time (the workloads report samples per second)."""
    throughput = _metric(record, "throughput_sps")
    return None if throughput is None or time_s is None else throughput * time_s
