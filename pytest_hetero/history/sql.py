"""The SQL history stores: SQLite (default) and PostgreSQL (shared by many CI runners).

Both run every operation as one short transaction and retry it, with jittered
back-off, when another writer holds the lock: SQLite takes the write lock up
front (``BEGIN IMMEDIATE``, WAL journal, a busy timeout), PostgreSQL retries
serialization failures and deadlocks. Rows are inserted with
``ON CONFLICT DO NOTHING``, so a retried or repeated report adds nothing twice
and concurrent writers (pytest-xdist workers, parallel CI jobs) lose nothing.

Schema versions (``hetero_meta``, key ``schema``): 1, the first; 2 adds each
measurement's workload and platform fingerprints, and ``hetero_fingerprints``:
each fingerprint's parts (file or platform part -> hash), kept once, to say
what changed. Opening a version-1 store migrates it in place (two columns,
empty for the rows already there); a store of a newer version than this code
knows is refused.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pytest_hetero.history.base import (
    HistoryError,
    HistoryStore,
    RunInfo,
    Selection,
    SeriesPoint,
    StoreUnavailableError,
    Variant,
    fingerprint_parts,
    measurements,
    run_info,
)

__all__ = ["PostgresStore", "SQLiteStore", "SqlHistoryStore"]

SCHEMA_VERSION = 2
T = TypeVar("T")
Rows = list[tuple[Any, ...]]
Execute = Callable[[str, Sequence[Any]], Rows]

_TABLES = """
CREATE TABLE IF NOT EXISTS hetero_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hetero_runs (
    seq {serial},
    run_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    git_commit TEXT,
    exit_status INTEGER,
    host TEXT
);
CREATE TABLE IF NOT EXISTS hetero_measurements (
    run_id TEXT NOT NULL REFERENCES hetero_runs (run_id),
    nodeid TEXT NOT NULL,
    test TEXT NOT NULL,
    platform TEXT NOT NULL,
    metric TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    unit TEXT NOT NULL,
    higher_is_better INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    value {real},
    samples TEXT NOT NULL,
    workload_fingerprint TEXT NOT NULL DEFAULT '',
    platform_fingerprint TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, nodeid, metric)
);
CREATE INDEX IF NOT EXISTS hetero_measurements_series ON hetero_measurements (test, platform, metric);
CREATE TABLE IF NOT EXISTS hetero_fingerprints (fingerprint TEXT PRIMARY KEY, parts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hetero_baselines (
    name TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES hetero_runs (run_id),
    saved_at TEXT NOT NULL
);
"""

_INSERT_RUN = (
    "INSERT INTO hetero_runs (run_id, created_at, git_commit, exit_status, host) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id) DO UPDATE SET exit_status = excluded.exit_status"
)
_INSERT_MEASUREMENT = (
    "INSERT INTO hetero_measurements (run_id, nodeid, test, platform, metric, config_hash, unit, higher_is_better, "
    "outcome, value, samples, workload_fingerprint, platform_fingerprint) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_INSERT_FINGERPRINT = "INSERT INTO hetero_fingerprints (fingerprint, parts) VALUES (?, ?) ON CONFLICT DO NOTHING"
#: From each version to the next, run in the transaction that creates the schema.
_MIGRATIONS = {
    1: (
        "ALTER TABLE hetero_measurements ADD COLUMN workload_fingerprint TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE hetero_measurements ADD COLUMN platform_fingerprint TEXT NOT NULL DEFAULT ''",
    ),
}
_SERIES_WHERE = "m.test = ? AND m.platform = ? AND m.metric = ?"
_FROM = "FROM hetero_measurements m JOIN hetero_runs r ON r.run_id = m.run_id"


class SqlHistoryStore(HistoryStore):
    """The queries both dialects share; a subclass supplies :meth:`_attempt` and its retryable errors."""

    placeholder = "?"
    retry_s = 300.0  # give up on a locked store after this long
    db_errors: tuple[type[Exception], ...] = (sqlite3.Error,)  # reported as StoreUnavailableError

    def __init__(self, description: str) -> None:
        self.description = description

    @abstractmethod
    def _attempt(self, work: Callable[[Execute], T], write: bool) -> T:
        """Run ``work`` in one transaction; raise on conflict (see :meth:`_is_retryable`)."""

    @abstractmethod
    def _is_retryable(self, exc: Exception) -> bool: ...

    def _run(self, work: Callable[[Execute], T], *, write: bool = False) -> T:
        delay_s = 0.01
        deadline = time.monotonic() + self.retry_s
        while True:
            try:
                return self._attempt(work, write)
            except self.db_errors as exc:
                if not self._is_retryable(exc) or time.monotonic() > deadline:
                    raise StoreUnavailableError(f"history store {self.description}: {exc}") from exc
            time.sleep(delay_s * (0.5 + random.random()))  # noqa: S311 - jitter, not cryptography
            delay_s = min(delay_s * 2, 1.0)

    def _sql(self, statement: str) -> str:
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    def _create_schema(self, execute: Execute, serial: str, real: str) -> None:
        for statement in _TABLES.format(serial=serial, real=real).split(";"):
            if statement.strip():
                execute(statement, ())
        # A new store is created at the current version; an existing one keeps its own until migrated.
        version = str(SCHEMA_VERSION)
        execute("INSERT INTO hetero_meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", ("schema", version))
        found = int(execute("SELECT value FROM hetero_meta WHERE key = ?", ("schema",))[0][0])
        if found > SCHEMA_VERSION:
            raise HistoryError(f"history store {self.description} has schema {found}; upgrade pytest-hetero")
        for old in range(found, SCHEMA_VERSION):
            for statement in _MIGRATIONS[old]:
                execute(statement, ())
        if found < SCHEMA_VERSION:
            execute("UPDATE hetero_meta SET value = ? WHERE key = ?", (version, "schema"))

    def add_report(self, report: dict[str, Any]) -> None:
        try:
            run, rows, parts = run_info(report), measurements(report), fingerprint_parts(report)
        except (KeyError, TypeError, AttributeError) as exc:
            raise HistoryError(f"history store {self.description}: not a pytest-hetero report ({exc!r})") from exc

        def work(execute: Execute) -> None:
            execute(_INSERT_RUN, (run.run_id, run.created_at, run.git_commit, run.exit_status, run.host))
            for m in rows:
                values = (m.nodeid, m.test, m.platform, m.metric, m.config_hash, m.unit, int(m.higher_is_better))
                measured = (m.outcome, m.value, json.dumps(list(m.samples)))
                fingerprints = (m.workload_fingerprint, m.platform_fingerprint)
                execute(_INSERT_MEASUREMENT, (run.run_id, *values, *measured, *fingerprints))
            for fingerprint, named in parts.items():
                execute(_INSERT_FINGERPRINT, (fingerprint, json.dumps(named, sort_keys=True)))

        self._run(work, write=True)

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
        same, params = _same(config_hash, workload_fingerprint, platform_fingerprint)
        if selection.kind == "baseline":
            return self._baseline_samples((test, platform, metric, *params), same, selection.name)
        query = (
            f"SELECT m.run_id, m.samples {_FROM} WHERE {_SERIES_WHERE} AND {same} AND m.run_id <> ? "
            "ORDER BY r.created_at DESC, r.seq DESC"
        )
        rows = self._run(lambda ex: ex(query, (test, platform, metric, *params, exclude_run_id or "")))
        chosen: list[str] = []
        values: list[float] = []
        for run_id, encoded in rows:
            if run_id not in chosen:
                if len(chosen) == selection.count:
                    break
                chosen.append(run_id)
            values.extend(json.loads(encoded))
        return values

    def _baseline_samples(self, params: tuple[str, ...], same: str, name: str) -> list[float]:
        known = self.baselines()
        if name not in known:
            names = ", ".join(sorted(known)) or "none saved yet"
            raise HistoryError(f"history store {self.description}: no baseline {name!r} (known: {names})")
        query = f"SELECT m.samples {_FROM} WHERE {_SERIES_WHERE} AND {same} AND m.run_id = ?"
        rows = self._run(lambda ex: ex(query, (*params, known[name])))
        return [value for (encoded,) in rows for value in json.loads(encoded)]

    def save_baseline(self, name: str, run_id: str) -> None:
        if not name.strip():
            raise HistoryError("a baseline needs a non-empty name")
        saved_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def work(execute: Execute) -> None:
            if not execute("SELECT 1 FROM hetero_runs WHERE run_id = ?", (run_id,)):
                raise HistoryError(f"history store {self.description}: no run {run_id!r} to save as {name!r}")
            execute(
                "INSERT INTO hetero_baselines (name, run_id, saved_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET run_id = excluded.run_id, saved_at = excluded.saved_at",
                (name, run_id, saved_at),
            )

        self._run(work, write=True)

    def baselines(self) -> dict[str, str]:
        rows = self._run(lambda ex: ex("SELECT name, run_id FROM hetero_baselines ORDER BY name", ()))
        return {name: run_id for name, run_id in rows}

    def runs(self, limit: int = 20) -> list[RunInfo]:
        query = (
            "SELECT run_id, created_at, git_commit, exit_status, host FROM hetero_runs "
            "ORDER BY created_at DESC, seq DESC LIMIT ?"
        )
        return [RunInfo(*row) for row in self._run(lambda ex: ex(query, (limit,)))]

    def series(self, test: str, platform: str, metric: str) -> list[SeriesPoint]:
        query = (
            f"SELECT r.run_id, r.created_at, m.value, m.config_hash {_FROM} WHERE {_SERIES_WHERE} "
            "ORDER BY r.created_at, r.seq"
        )
        return [SeriesPoint(*row) for row in self._run(lambda ex: ex(query, (test, platform, metric)))]

    def variants(self, test: str, platform: str, metric: str) -> list[Variant]:
        query = (
            f"SELECT r.run_id, r.created_at, m.config_hash, m.workload_fingerprint, m.platform_fingerprint {_FROM} "
            f"WHERE {_SERIES_WHERE} ORDER BY r.created_at, r.seq"
        )
        return [Variant(*row) for row in self._run(lambda ex: ex(query, (test, platform, metric)))]

    def parts(self, fingerprint: str) -> dict[str, str]:
        query = "SELECT parts FROM hetero_fingerprints WHERE fingerprint = ?"
        rows = self._run(lambda ex: ex(query, (fingerprint,)))
        return dict(json.loads(rows[0][0])) if rows else {}


def _same(config_hash: str, workload: str | None, platform: str | None) -> tuple[str, list[str]]:
    """The WHERE clause (and its parameters) of rows that measured the same thing (None: any fingerprint)."""
    clauses, params = ["m.config_hash = ?"], [config_hash]
    for column, value in (("workload_fingerprint", workload), ("platform_fingerprint", platform)):
        if value is not None:
            clauses.append(f"m.{column} = ?")
            params.append(value)
    return " AND ".join(clauses), params


class SQLiteStore(SqlHistoryStore):
    """A SQLite file in WAL mode: readers never wait, writers queue on the lock.

    WAL needs shared memory, so the file must be on a local filesystem, not NFS
    or Lustre; CI runners on different hosts share a PostgreSQL store instead.
    """

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        super().__init__(str(self.path))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailableError(f"history store {self.path}: cannot open: {exc}") from exc
        self._run(lambda ex: ex("PRAGMA journal_mode=WAL", ()))
        self._run(lambda ex: self._create_schema(ex, "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL"), write=True)

    def _attempt(self, work: Callable[[Execute], T], write: bool) -> T:
        conn = self._conn

        def execute(statement: str, params: Sequence[Any]) -> Rows:
            return conn.execute(statement, tuple(params)).fetchall()

        if not write:  # a single statement or a read: autocommit, no lock held between statements
            return work(execute)
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(execute)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _is_retryable(self, exc: Exception) -> bool:
        text = str(exc).lower()
        return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)

    def close(self) -> None:
        self._conn.close()


class PostgresStore(SqlHistoryStore):
    """A PostgreSQL database (psycopg 3): one store for every CI runner."""

    placeholder = "%s"

    def __init__(self, url: str, *, connect_timeout_s: int = 10) -> None:
        super().__init__(_redact_url(url))
        psycopg = _import_psycopg()
        self.db_errors = (psycopg.Error,)
        self._errors = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s)
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"history store {self.description}: cannot connect: {exc}") from exc
        # An advisory lock serialises concurrent CREATE TABLE IF NOT EXISTS, which can otherwise collide.
        self._run(self._create_pg_schema)

    def _create_pg_schema(self, execute: Execute) -> None:
        execute("SELECT pg_advisory_xact_lock(7204913)", ())
        self._create_schema(execute, "BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION")

    def _attempt(self, work: Callable[[Execute], T], write: bool) -> T:
        with self._conn.transaction(), self._conn.cursor() as cursor:

            def execute(statement: str, params: Sequence[Any]) -> Rows:
                cursor.execute(self._sql(statement), tuple(params))
                return cursor.fetchall() if cursor.description else []

            return work(execute)

    def _is_retryable(self, exc: Exception) -> bool:
        return isinstance(exc, self._errors)

    def close(self) -> None:
        self._conn.close()


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise StoreUnavailableError(
            "a postgresql:// history store needs psycopg 3: pip install 'pytest-hetero[postgres]'"
        ) from exc
    return psycopg


def _redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
