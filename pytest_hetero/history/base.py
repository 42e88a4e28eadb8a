"""Run history: every measured metric of every run, for comparisons and trends.

A store keeps, per run, its id, creation time, git commit, exit status and
host, and one row per record × metric with every sample of that metric (the
``samples`` of a ``--hetero-repeat`` run, else the single ``value``).
Adding the same report twice changes nothing, so retries are safe.

``pytest_hetero.history.open_store(target)`` picks the backend from the target:

    target                                   store
    .hetero/history.sqlite (any path)         SQLite file (stdlib sqlite3, WAL)
    sqlite:///abs/path.sqlite                 the same, spelled as a URL
    postgresql://user:pw@host:5432/db         PostgreSQL (psycopg 3, extra 'postgres')

A :class:`Selection` names the baseline of a comparison: ``last`` (the most
recent other run that has the series with the same config hash and
fingerprints), ``N`` (the last N such runs, samples pooled), ``baseline:NAME``
(the run saved under NAME with :meth:`HistoryStore.save_baseline`).

Each row keeps the record's workload config hash and its workload and platform
fingerprints (:mod:`pytest_hetero.fingerprint`); rows stored before
fingerprints existed have empty ones.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, NamedTuple

from pytest_hetero.errors import HistoryError, StoreUnavailableError

__all__ = [
    "HistoryError",
    "HistoryStore",
    "Measurement",
    "RunInfo",
    "Selection",
    "SeriesPoint",
    "StoreUnavailableError",
    "Variant",
    "fingerprint_parts",
    "measurements",
    "metric_samples",
    "run_info",
]


@dataclass(frozen=True)
class Selection:
    """Which earlier runs a comparison uses (``last``, ``N``, ``baseline:NAME``)."""

    kind: Literal["runs", "baseline"]
    count: int = 1
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> Selection:
        value = text.strip()
        if value == "last":
            return cls("runs", 1)
        if value.startswith("baseline:") and value[len("baseline:") :].strip():
            return cls("baseline", name=value[len("baseline:") :].strip())
        if value.isascii() and value.isdigit() and int(value) >= 1:
            return cls("runs", int(value))
        raise HistoryError(f"comparison target {text!r}: expected 'last', a number of runs N >= 1, or 'baseline:NAME'")

    def __str__(self) -> str:
        if self.kind == "baseline":
            return f"baseline:{self.name}"
        return "last" if self.count == 1 else str(self.count)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    created_at: str
    git_commit: str | None
    exit_status: int | None
    host: str | None


class SeriesPoint(NamedTuple):
    """One run's value of one (test, platform, metric), for trends."""

    run_id: str
    created_at: str
    value: float | None
    config_hash: str


class Variant(NamedTuple):
    """What one stored run of a series measured: its config hash and fingerprints ("" when not kept)."""

    run_id: str
    created_at: str
    config_hash: str
    workload_fingerprint: str
    platform_fingerprint: str


@dataclass(frozen=True)
class Measurement:
    """One record × metric of a report: the row a store keeps."""

    nodeid: str
    test: str
    platform: str
    metric: str
    config_hash: str
    unit: str
    higher_is_better: bool
    outcome: str
    value: float | None
    samples: tuple[float, ...]
    workload_fingerprint: str = ""
    platform_fingerprint: str = ""


def metric_samples(metric: dict[str, Any]) -> list[float]:
    """Every repeat's value of a report metric: ``samples`` when present, else ``[value]``."""
    raw = metric.get("samples")
    values = raw if isinstance(raw, list) and raw else [metric.get("value")]
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def measurements(report: dict[str, Any]) -> list[Measurement]:
    """The rows of a JSON report (metrics without any value are left out)."""
    rows = []
    for record in report["results"]:
        for name, metric in record["metrics"].items():
            samples = metric_samples(metric)
            if samples:
                rows.append(_measurement(record, name, metric, samples))
    return rows


def _measurement(record: dict[str, Any], name: str, metric: dict[str, Any], samples: list[float]) -> Measurement:
    return Measurement(
        nodeid=record["nodeid"],
        test=record["test"],
        platform=record["platform"]["name"],
        metric=name,
        config_hash=record["workload"]["config_hash"],
        unit=metric.get("unit", ""),
        higher_is_better=bool(metric.get("higher_is_better", True)),
        outcome=record["outcome"],
        value=metric.get("value"),
        samples=tuple(samples),
        workload_fingerprint=str(record["workload"].get("fingerprint") or ""),
        platform_fingerprint=str(record["platform"].get("fingerprint") or ""),
    )


def fingerprint_parts(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Fingerprint -> its parts (workload: file -> hash; platform: part -> hash), for every record that has them."""
    found: dict[str, dict[str, str]] = {}
    for record in report["results"]:
        for side, parts_key in (("workload", "code"), ("platform", "fingerprint_parts")):
            fingerprint = record[side].get("fingerprint")
            if fingerprint:
                found[str(fingerprint)] = {str(k): str(v) for k, v in (record[side].get(parts_key) or {}).items()}
    return found


def run_info(report: dict[str, Any]) -> RunInfo:
    provenance = report.get("provenance") or {}
    git = provenance.get("git") or {}
    return RunInfo(
        run_id=report["run_id"],
        created_at=report["created_at"],
        git_commit=git.get("commit"),
        exit_status=report.get("exit_status"),
        host=provenance.get("host"),
    )


class HistoryStore(ABC):
    """Where runs are kept. Every method is safe to call from concurrent processes."""

    description: str = ""  # where the store is, for messages (no password)

    @abstractmethod
    def add_report(self, report: dict[str, Any]) -> None:
        """Store a run and all its measurements; adding a run again adds nothing."""

    @abstractmethod
    def samples(
        self,
        test: str,
        platform: str,
        metric: str,
        config_hash: str,
        selection: Selection,
        *,
        exclude_run_id: str | None = None,
        workload_fingerprint: str | None = None,
        platform_fingerprint: str | None = None,
    ) -> list[float]:
        """The selected runs' samples of one series with this config hash ([] when none).

        ``exclude_run_id`` leaves out the current run when it is already stored. The
        fingerprints, when given, must match too ("" matches rows stored without them).
        """

    @abstractmethod
    def save_baseline(self, name: str, run_id: str) -> None:
        """Name a stored run (``baseline:NAME``); saving a name again moves it."""

    @abstractmethod
    def baselines(self) -> dict[str, str]:
        """Baseline name -> run id."""

    @abstractmethod
    def runs(self, limit: int = 20) -> list[RunInfo]:
        """The most recent runs, newest first."""

    @abstractmethod
    def series(self, test: str, platform: str, metric: str) -> list[SeriesPoint]:
        """Every stored value of one metric of one test on one platform, oldest first."""

    @abstractmethod
    def variants(self, test: str, platform: str, metric: str) -> list[Variant]:
        """What each stored run of one series measured, oldest first: why a baseline did not pair."""

    @abstractmethod
    def parts(self, fingerprint: str) -> dict[str, str]:
        """A stored fingerprint's parts: source file or platform part -> hash ({} when unknown)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
