"""Rank platforms per workload under an objective, like for like (``pytest-hetero rank``).

Records are grouped by benchmark (the report's ``test`` key, the cases of a
scaling sweep together: :func:`~pytest_hetero.decide.scaling.unscaled_key`). Within a group
only records of one workload fingerprint (program code and config) are ranked
together: the fingerprint most records share; every other record is refused
with the reason (which config keys or files differ). Failed and skipped
results are refused too, and so is a result without the objective's figure
(no cost: its platform is not priced in the costs file; no energy: none
measured and no nominal power). A platform measured at several shapes (node
counts or accelerators per node: a scaling sweep) gets speed-up and parallel
efficiency, and is ranked at its best shape within the budget and deadline;
repeated runs of one shape are ranked by their best run.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_hetero.decide.costs import CostModel, unpriced_message
from pytest_hetero.decide.figures import RunFigures, figures_of
from pytest_hetero.decide.pareto import pareto_front
from pytest_hetero.decide.scaling import unscaled_key

__all__ = ["OBJECTIVES", "Candidate", "Constraints", "Objective", "Refusal", "ScalingPoint", "WorkloadRanking", "rank"]

Objective = Literal["time", "cost", "energy"]
OBJECTIVES: tuple[Objective, ...] = ("time", "cost", "energy")


@dataclass(frozen=True)
class Constraints:
    budget: float | None = None  # at most this much money per run
    deadline_s: float | None = None  # at most this long per run

    def violation(self, figures: RunFigures) -> str | None:
        """Why a run is out of bounds, or None."""
        if self.deadline_s is not None and (figures.time_s is None or figures.time_s > self.deadline_s):
            return f"over the deadline ({_num(figures.time_s)} s > {self.deadline_s:g} s)"
        if self.budget is not None and (figures.cost is None or figures.cost > self.budget):
            return f"over the budget ({_num(figures.cost)} > {self.budget:g} per run)"
        return None


@dataclass(frozen=True)
class Candidate:
    """One comparable result: where it came from and its figures."""

    report: str
    nodeid: str
    figures: RunFigures
    throughput_sps: float | None
    violation: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(nodes, accelerators per node): what a scaling sweep varies."""
        return self.figures.nodes, self.figures.accelerators_per_node

    @property
    def label(self) -> str:
        nodes, per_node = self.shape
        acc = f", {per_node} accelerators per node" if per_node != 1 else ""
        return f"{self.figures.platform} ({nodes} node{'s' if nodes != 1 else ''}{acc})"


@dataclass(frozen=True)
class Refusal:
    report: str
    nodeid: str
    platform: str
    reason: str
    missing: bool = False  # refused for want of the objective's figure (cost or energy)


@dataclass(frozen=True)
class ScalingPoint:
    nodes: int
    accelerators_per_node: int
    time_s: float | None
    speedup: float | None
    efficiency: float | None


@dataclass
class WorkloadRanking:
    """One benchmark's ranking."""

    test: str
    objective: Objective
    fingerprint: str
    ranked: list[Candidate] = field(default_factory=list)  # one per platform: its best count, best first
    candidates: list[Candidate] = field(default_factory=list)  # every comparable result
    refused: list[Refusal] = field(default_factory=list)
    scaling: dict[str, list[ScalingPoint]] = field(default_factory=dict)
    front: list[Candidate] = field(default_factory=list)  # the Pareto front of time against cost
    answer: str = ""
    unpriced: list[str] = field(default_factory=list)  # measured platforms the costs file does not price

    def note(self, cand: Candidate) -> str:
        """Why an unranked comparable result is not its platform's ranked one."""
        if cand.violation or cand in self.ranked:
            return cand.violation or ""
        best = next(c for c in self.ranked if c.figures.platform == cand.figures.platform)
        if best.shape != cand.shape:
            return "another shape (node or accelerator count) ranks for this platform"
        runs = sum(1 for c in self.candidates if c.figures.platform == best.figures.platform and c.shape == best.shape)
        return f"repeated run of the ranked shape: the best of its {runs} runs ranks"


def _key(objective: Objective, figures: RunFigures) -> float:
    value = {"time": figures.time_s, "cost": figures.cost, "energy": figures.energy_j}[objective]
    return math.inf if value is None else value


def _num(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4g}"


def rank(
    reports: Sequence[tuple[str, Mapping[str, Any]]],
    model: CostModel | None,
    objective: Objective = "time",
    constraints: Constraints | None = None,
) -> list[WorkloadRanking]:
    """Per benchmark (sorted by test key), the platforms ranked under ``objective``."""
    constraints = constraints or Constraints()
    groups: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for name, report in reports:
        for record in report.get("results", []):
            groups.setdefault(unscaled_key(record["test"]), []).append((name, record))
    return [_rank_one(test, groups[test], model, objective, constraints) for test in sorted(groups)]


def _rank_one(
    test: str,
    records: list[tuple[str, Mapping[str, Any]]],
    model: CostModel | None,
    objective: Objective,
    constraints: Constraints,
) -> WorkloadRanking:
    usable, refused = _usable(records)
    fingerprint = _majority(r["workload"].get("fingerprint", "") for _, r in usable)
    ranking = WorkloadRanking(test, objective, fingerprint, refused=refused)
    reference = next((r for _, r in usable if r["workload"].get("fingerprint", "") == fingerprint), None)
    for name, record in usable:
        platform = record["platform"]["name"]
        if reference is not None and record["workload"].get("fingerprint", "") != fingerprint:
            ranking.refused.append(Refusal(name, record["nodeid"], platform, _unlike(record, reference)))
            continue
        if model is not None and model.get(platform) is None and platform not in ranking.unpriced:
            ranking.unpriced.append(platform)
        figures = figures_of(record, model)
        missing = _missing(objective, figures, model)
        if missing is not None:
            ranking.refused.append(Refusal(name, record["nodeid"], platform, missing, missing=True))
            continue
        throughput = record.get("metrics", {}).get("throughput_sps", {}).get("value")
        ranking.candidates.append(
            Candidate(name, record["nodeid"], figures, throughput, constraints.violation(figures))
        )
    ranking.ranked = _best_per_platform(ranking.candidates, objective)
    ranking.scaling = _scaling(ranking.candidates)
    ranking.front = pareto_front(ranking.candidates)
    ranking.answer = _answer(ranking, constraints, model)
    return ranking


def _missing(objective: Objective, figures: RunFigures, model: CostModel | None) -> str | None:
    """Why a result cannot be ranked under ``objective`` (its figure is unknown), or None."""
    if objective == "time" or _key(objective, figures) != math.inf:
        return None
    priced = model is not None and model.get(figures.platform) is not None
    if figures.time_s is None:
        why = "the run's time is unknown (no time_to_train_s metric, no job wall time)"
    elif objective == "cost" or (model is not None and not priced):
        why = unpriced_message(model, figures.platform) if model is not None else "no costs file (--costs FILE)"
    else:
        why = "the run measured no energy and no costs file gives the platform's nominal power (--costs FILE)"
    return f"not ranked by {objective}: no {objective} figure: {why}"


def _usable(records: list[tuple[str, Mapping[str, Any]]]) -> tuple[list[tuple[str, Mapping[str, Any]]], list[Refusal]]:
    usable, refused = [], []
    for name, record in records:
        platform, outcome = record["platform"]["name"], record.get("outcome")
        if outcome != "passed":
            why = record.get("skip_reason") or (record.get("error") or {}).get("message", "")
            reason = f"outcome {outcome}: nothing comparable was measured" + (
                f" ({why.splitlines()[0]})" if why else ""
            )
            refused.append(Refusal(name, record["nodeid"], platform, reason))
        elif not record["workload"].get("fingerprint"):
            reason = "no workload fingerprint (written by an older pytest-hetero): what it measured is unknown"
            refused.append(Refusal(name, record["nodeid"], platform, reason))
        else:
            usable.append((name, record))
    return usable, refused


def _majority(fingerprints: Iterable[str]) -> str:
    counts = Counter(fingerprints)
    return max(counts, key=lambda fp: counts[fp]) if counts else ""  # ties: the first seen


def _unlike(record: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    """Why ``record`` measured something else than ``reference``."""
    mine, theirs = record["workload"], reference["workload"]
    where = f"{reference['platform']['name']} in the ranked group"
    if mine.get("config_hash") != theirs.get("config_hash"):
        a, b = mine.get("config", {}), theirs.get("config", {})
        keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        shown = ", ".join(f"{k}={a.get(k)!r} vs {b.get(k)!r}" for k in keys[:4]) or "how it is called"
        return (
            f"not like for like: workload config differs from {where} ({shown}; config hash "
            f"{mine.get('config_hash')} ≠ {theirs.get('config_hash')})"
        )
    code_a, code_b = mine.get("code", {}), theirs.get("code", {})
    files = sorted(f for f in code_a.keys() | code_b.keys() if code_a.get(f) != code_b.get(f))
    return (
        f"not like for like: the workload's program differs from {where} "
        f"({', '.join(files[:3]) or 'code'}; fingerprint {mine.get('fingerprint')} ≠ {theirs.get('fingerprint')})"
    )


def _best_per_platform(candidates: list[Candidate], objective: Objective) -> list[Candidate]:
    """Each platform at its best result within the bounds (out-of-bounds ones only if none is in), best first."""
    best: dict[str, Candidate] = {}
    for cand in candidates:
        held = best.get(cand.figures.platform)
        if held is None or (cand.violation is None, -_key(objective, cand.figures)) > (
            held.violation is None,
            -_key(objective, held.figures),
        ):
            best[cand.figures.platform] = cand
    return sorted(best.values(), key=lambda c: (c.violation is not None, _key(objective, c.figures)))


def _scaling(candidates: list[Candidate]) -> dict[str, list[ScalingPoint]]:
    """Speed-up and parallel efficiency against each platform's smallest shape (sweeps only).

    A shape is (nodes, accelerators per node); of repeated runs of one shape the fastest counts.
    """
    by_platform: dict[str, dict[tuple[int, int], Candidate]] = {}
    for cand in candidates:
        shapes = by_platform.setdefault(cand.figures.platform, {})
        held = shapes.get(cand.shape)
        if held is None or _key("time", cand.figures) < _key("time", held.figures):
            shapes[cand.shape] = cand
    found = {}
    for platform, shapes in sorted(by_platform.items()):
        if len(shapes) < 2:
            continue
        base = shapes[min(shapes, key=lambda s: (s[0] * s[1], s))]
        found[platform] = [_point(base, shapes[s]) for s in sorted(shapes, key=lambda s: (s[0] * s[1], s))]
    return found


def _point(base: Candidate, cand: Candidate) -> ScalingPoint:
    speedup = None
    if base.throughput_sps and cand.throughput_sps is not None:
        speedup = cand.throughput_sps / base.throughput_sps
    elif base.figures.time_s and cand.figures.time_s:
        speedup = base.figures.time_s / cand.figures.time_s
    used, base_used = cand.shape[0] * cand.shape[1], base.shape[0] * base.shape[1]
    efficiency = None if speedup is None else speedup * base_used / used
    return ScalingPoint(cand.shape[0], cand.shape[1], cand.figures.time_s, speedup, efficiency)


def _answer(ranking: WorkloadRanking, constraints: Constraints, model: CostModel | None) -> str:
    """The cheapest platform that trains within the deadline (and budget), in one line."""
    bounds = []
    if constraints.deadline_s is not None:
        bounds.append(f"the deadline of {constraints.deadline_s:g} s")
    if constraints.budget is not None:
        bounds.append(f"the budget of {constraints.budget:g}{' ' + model.currency if model else ''} per run")
    within = "within " + " and ".join(bounds) if bounds else "(no deadline or budget given)"
    head = f"{ranking.test}: cheapest platform {within}"
    if model is None and all(c.figures.cost is None for c in ranking.candidates):
        return f"{head}: unknown, no costs file (--costs FILE)"
    if not ranking.candidates:
        return f"{head}: unknown, no result could be ranked (see refused)"
    priced = [c for c in ranking.candidates if c.figures.cost is not None]
    if not priced:
        return f"{head}: unknown, the costs file prices none of {_names(ranking.candidates)}"
    fits = [c for c in priced if c.violation is None]
    if not fits:
        return f"{ranking.test}: no platform trains {within}"
    best = min(fits, key=lambda c: (c.figures.cost or 0.0, c.figures.time_s or 0.0))
    f = best.figures
    return (
        f"{head}: {best.label}, "
        f"{f.cost:.4g} {f.currency} per run ({f.capital:.4g} capital + {f.operating:.4g} operating), "
        f"{_num(f.time_s)} s, {_num(f.energy_j)} J {f.energy_word}".rstrip()
    )


def _names(candidates: Iterable[Candidate]) -> str:
    return ", ".join(sorted({c.figures.platform for c in candidates}))
