"""Run history: the store interface (:mod:`.base`), the SQL stores (:mod:`.sql`) and the factory."""

from __future__ import annotations

from pytest_hetero.history.base import (
    HistoryError,
    HistoryStore,
    Measurement,
    RunInfo,
    Selection,
    SeriesPoint,
    StoreUnavailableError,
    Variant,
    measurements,
    metric_samples,
    run_info,
)

__all__ = [
    "HistoryError",
    "HistoryStore",
    "Measurement",
    "RunInfo",
    "Selection",
    "SeriesPoint",
    "StoreUnavailableError",
    "Variant",
    "measurements",
    "metric_samples",
    "open_store",
    "run_info",
]


def open_store(target: str) -> HistoryStore:
    """A SQLite file for a path (or ``sqlite:///path``), PostgreSQL for ``postgresql://``."""
    from pytest_hetero.history.sql import PostgresStore, SQLiteStore  # sqlite3 and SQL only for runs with a history

    if target.startswith(("postgresql://", "postgres://")):
        return PostgresStore(target)
    if "://" in target and not target.startswith("sqlite://"):
        scheme = target.split("://", 1)[0]
        raise HistoryError(f"history store {target!r}: unknown scheme {scheme!r} (use a file path or postgresql://)")
    path = target[len("sqlite://") :] if target.startswith("sqlite://") else target
    if not path:
        raise HistoryError("history store: empty path")
    return SQLiteStore(path)
