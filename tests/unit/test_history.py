"""The run-history store: SQLite always; PostgreSQL live, on the server HETERO_TEST_POSTGRES_URL names.

Without that variable the PostgreSQL cases skip, with the reason, except under CI (``CI`` set), where
they fail: CI starts a throwaway server first (docs/history.md, "Testing against PostgreSQL").
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_reports import HASH_A, HASH_B, record, report

from pytest_hetero.history import HistoryError, HistoryStore, Selection, StoreUnavailableError, open_store

POSTGRES_URL = os.environ.get("HETERO_TEST_POSTGRES_URL")


def _run(n: int, values: list[float], config_hash: str = HASH_A, exit_status: int = 0) -> dict[str, Any]:
    """Run number ``n`` (runs are a minute apart), one record with ``throughput_sps`` samples."""
    rec = record(metrics={"throughput_sps": values, "time_to_train_s": [100.0 + n]}, config_hash=config_hash)
    return report([rec], run_id=f"run-{n:02d}", created_at=f"2026-05-01T10:{n:02d}:00Z", exit_status=exit_status)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the server named by HETERO_TEST_POSTGRES_URL, dropped afterwards."""
    if not POSTGRES_URL:
        reason = "HETERO_TEST_POSTGRES_URL is not set; start a server as docs/history.md shows and set it"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the live PostgreSQL tests must run: {reason}", pytrace=False)
        pytest.skip(reason)
    psycopg = pytest.importorskip("psycopg")
    name = f"hetero_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base, _, _ = POSTGRES_URL.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "history" / "runs.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(target: str) -> Iterator[HistoryStore]:
    with open_store(target) as opened:
        yield opened


def test_selection_parses_last_n_and_baseline() -> None:
    assert Selection.parse("last") == Selection("runs", 1)
    assert Selection.parse("5") == Selection("runs", 5)
    assert Selection.parse("baseline:release-1.2") == Selection("baseline", name="release-1.2")
    assert [str(Selection.parse(t)) for t in ("last", "5", "baseline:x")] == ["last", "5", "baseline:x"]
    for bad in ("", "0", "-2", "baseline:", "previous"):
        with pytest.raises(HistoryError, match=f"comparison target {bad!r}: expected 'last'"):
            Selection.parse(bad)


def test_last_and_n_runs_with_the_same_config_hash(store: HistoryStore) -> None:
    store.add_report(_run(1, [400.0, 401.0, 402.0]))
    store.add_report(_run(2, [410.0, 411.0, 412.0]))
    store.add_report(_run(3, [999.0], config_hash=HASH_B))  # another config: never a baseline for HASH_A
    store.add_report(_run(4, [420.0, 421.0, 422.0]))
    args = ("test_resnet50", "a100", "throughput_sps", HASH_A)
    assert store.samples(*args, Selection.parse("last")) == [420.0, 421.0, 422.0]
    assert store.samples(*args, Selection.parse("last"), exclude_run_id="run-04") == [410.0, 411.0, 412.0]
    assert sorted(store.samples(*args, Selection.parse("2"))) == [410.0, 411.0, 412.0, 420.0, 421.0, 422.0]
    assert len(store.samples(*args, Selection.parse("10"))) == 9
    assert store.samples("test_resnet50", "a100", "throughput_sps", HASH_B, Selection.parse("last")) == [999.0]
    assert store.samples("test_other", "a100", "throughput_sps", HASH_A, Selection.parse("last")) == []


def test_adding_a_report_again_adds_nothing(store: HistoryStore, target: str) -> None:
    store.add_report(_run(1, [400.0, 401.0]))
    store.add_report(_run(1, [400.0, 401.0], exit_status=6))  # retried upload: the final exit status wins
    assert store.samples("test_resnet50", "a100", "throughput_sps", HASH_A, Selection.parse("5")) == [400.0, 401.0]
    assert [(r.run_id, r.exit_status) for r in store.runs()] == [("run-01", 6)]


def test_runs_series_and_provenance(store: HistoryStore) -> None:
    for n in (3, 1, 2):  # stored out of order: ordering follows created_at
        store.add_report(_run(n, [400.0 + n]))
    runs = store.runs(limit=2)
    assert [r.run_id for r in runs] == ["run-03", "run-02"]
    assert runs[0].git_commit == "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
    assert runs[0].host == "ci-runner-1"
    series = store.series("test_resnet50", "a100", "throughput_sps")
    assert [(p.run_id, p.value, p.config_hash) for p in series] == [
        ("run-01", 401.0, HASH_A),
        ("run-02", 402.0, HASH_A),
        ("run-03", 403.0, HASH_A),
    ]
    run_id, created_at, value, config_hash = series[0]  # plain tuples for callers that unpack
    assert (run_id, created_at, value, config_hash) == ("run-01", "2026-05-01T10:01:00Z", 401.0, HASH_A)


def test_baselines_are_named_runs(store: HistoryStore) -> None:
    store.add_report(_run(1, [400.0, 401.0]))
    store.add_report(_run(2, [300.0]))
    store.save_baseline("release-1", "run-01")
    assert store.baselines() == {"release-1": "run-01"}
    args = ("test_resnet50", "a100", "throughput_sps", HASH_A)
    assert store.samples(*args, Selection.parse("baseline:release-1")) == [400.0, 401.0]
    store.save_baseline("release-1", "run-02")  # moving a name is allowed
    assert store.samples(*args, Selection.parse("baseline:release-1")) == [300.0]
    with pytest.raises(HistoryError, match=r"no baseline 'nightly' \(known: release-1\)"):
        store.samples(*args, Selection.parse("baseline:nightly"))
    with pytest.raises(HistoryError, match="no run 'run-99' to save as 'x'"):
        store.save_baseline("x", "run-99")


def test_metrics_without_values_are_not_stored(store: HistoryStore) -> None:
    rec = record(metrics={"throughput_sps": [410.0]})
    rec["metrics"]["mfu"] = {"name": "mfu", "value": None, "unit": "", "higher_is_better": True}
    store.add_report(report([rec], run_id="run-x"))
    assert store.series("test_resnet50", "a100", "mfu") == []
    assert [p.value for p in store.series("test_resnet50", "a100", "throughput_sps")] == [410.0]


def test_not_a_report_is_a_clear_error(store: HistoryStore) -> None:
    with pytest.raises(HistoryError, match="not a pytest-hetero report"):
        store.add_report({"run_id": "x"})


def test_open_store_picks_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(f"sqlite://{tmp_path}/a.sqlite") as store:
        assert store.description == f"{tmp_path}/a.sqlite"
    assert (tmp_path / "a.sqlite").exists()
    with pytest.raises(HistoryError, match="unknown scheme 'mysql'"):
        open_store("mysql://localhost/db")
    with pytest.raises(StoreUnavailableError, match="cannot open"):
        open_store(str(tmp_path))  # a directory, not a database file
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    with pytest.raises(StoreUnavailableError, match=r"pip install 'pytest-hetero\[postgres\]'"):
        open_store("postgresql://user:secret@127.0.0.1:5432/history")


def test_unreachable_postgres_is_an_infrastructure_error() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StoreUnavailableError, match=r"postgresql://ci:\*\*\*@127.0.0.1:1/h: cannot connect") as info:
        open_store("postgresql://ci:secret@127.0.0.1:1/h")
    assert "secret" not in str(info.value)


# --- fingerprints and the version-1 schema ---------------------------------------------------------------------

V1_TABLES = """
CREATE TABLE hetero_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE hetero_runs (seq {serial}, run_id TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, git_commit TEXT,
    exit_status INTEGER, host TEXT);
CREATE TABLE hetero_measurements (run_id TEXT NOT NULL REFERENCES hetero_runs (run_id), nodeid TEXT NOT NULL,
    test TEXT NOT NULL, platform TEXT NOT NULL, metric TEXT NOT NULL, config_hash TEXT NOT NULL, unit TEXT NOT NULL,
    higher_is_better INTEGER NOT NULL, outcome TEXT NOT NULL, value {real}, samples TEXT NOT NULL,
    PRIMARY KEY (run_id, nodeid, metric));
CREATE TABLE hetero_baselines (name TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES hetero_runs (run_id),
    saved_at TEXT NOT NULL);
INSERT INTO hetero_meta VALUES ('schema', '1');
INSERT INTO hetero_runs (run_id, created_at) VALUES ('old-run', '2026-04-01T10:00:00Z');
INSERT INTO hetero_measurements VALUES ('old-run', 'n', 'test_resnet50', 'a100', 'throughput_sps', '{hash}',
    'samples/s', 1, 'passed', 400.0, '[400.0]')
"""


def _create_version_1(target: str) -> None:
    """A store as pytest-hetero 0.1 wrote it: no fingerprint columns, one run."""
    if target.startswith("postgresql://"):
        import psycopg

        script = V1_TABLES.format(serial="BIGSERIAL PRIMARY KEY", real="DOUBLE PRECISION", hash=HASH_A)
        with psycopg.connect(target, autocommit=True) as conn:
            for statement in script.split(";"):
                conn.execute(statement)
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(target) as conn:
        conn.executescript(V1_TABLES.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT", real="REAL", hash=HASH_A))


def _fingerprinted(n: int, values: list[float], workload: str, platform: str = "b" * 16) -> dict[str, Any]:
    document = _run(n, values)
    document["results"][0]["workload"]["fingerprint"] = workload
    document["results"][0]["platform"]["fingerprint"] = platform
    return document


def test_a_version_1_store_is_migrated_and_its_rows_never_pair_with_fingerprinted_ones(target: str) -> None:
    _create_version_1(target)
    args = ("test_resnet50", "a100", "throughput_sps", HASH_A, Selection.parse("last"))
    with open_store(target) as store:
        store.add_report(_fingerprinted(1, [410.0], "a" * 16))
        assert store.samples(*args) == [410.0]  # without fingerprints given: any (as callers of 0.1 asked)
        assert store.samples(*args, workload_fingerprint="a" * 16, platform_fingerprint="b" * 16) == [410.0]
        assert store.samples(*args, workload_fingerprint="c" * 16, platform_fingerprint="b" * 16) == []
        assert store.samples(*args, workload_fingerprint="", platform_fingerprint="") == [400.0]  # old with old
        variants = store.variants("test_resnet50", "a100", "throughput_sps")
        assert [(v.run_id, v.workload_fingerprint, v.platform_fingerprint) for v in variants] == [
            ("old-run", "", ""),
            ("run-01", "a" * 16, "b" * 16),
        ]
    with open_store(target) as again:  # opening a migrated store again changes nothing
        assert len(again.variants("test_resnet50", "a100", "throughput_sps")) == 2


def test_a_store_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    open_store(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE hetero_meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(HistoryError, match="has schema 99; upgrade pytest-hetero"):
        open_store(str(path))


# --- concurrency: real OS processes writing at once ------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fake_reports import record, report
    from pytest_hetero.history import open_store
    from pytest_hetero.history.sql import SQLiteStore

    target, worker, n_runs, busy_timeout_s, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:6]
    store = SQLiteStore(target, busy_timeout_s=float(busy_timeout_s)) if busy_timeout_s != "-" else open_store(target)
    Path(go + f".ready{worker}").touch()
    while not Path(go).exists():
        time.sleep(0.005)
    for run in range(n_runs):
        metrics = {"throughput_sps": [400.0 + run, 401.0, 402.0], "step_time_ms": [12.5], "mfu": [0.41]}
        records = [record(f"test_{t}", f"p{worker}", metrics) for t in range(4)]
        store.add_report(report(records, run_id=f"w{worker}-r{run}", created_at=f"2026-05-01T11:{run:02d}:00Z"))
    store.add_report(report([record("test_shared", "shared")], run_id="shared-run"))  # every worker: one run
    store.close()
    """
)


def _write_concurrently(tmp_path: Path, target: str, busy_timeouts: list[str], n_runs: int) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-c", WRITER, target]
    procs = [
        subprocess.Popen([*argv, str(w), str(n_runs), timeout, str(go)], env=env, stderr=subprocess.PIPE, text=True)
        for w, timeout in enumerate(busy_timeouts)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.ready*"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # all processes start writing at the same moment
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), errors


def test_concurrent_sqlite_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    open_store(str(path)).close()  # created once up front, as the plugin's controller would
    busy_timeouts = ["-", "-", "-", "0.001", "0.001", "0.001"]  # half give up on the lock at once and must retry
    _write_concurrently(tmp_path, str(path), busy_timeouts, n_runs=6)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM hetero_runs").fetchone() == (6 * 6 + 1,)
        assert db.execute("SELECT count(*) FROM hetero_measurements").fetchone() == (6 * 6 * 4 * 3 + 1,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_concurrent_creation_of_a_new_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "runs.sqlite"  # nobody created it: the processes race to set it up
    _write_concurrently(tmp_path, str(path), ["-", "-", "-", "0.001"], n_runs=2)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM hetero_runs").fetchone() == (4 * 2 + 1,)


def test_concurrent_postgres_writers_lose_nothing(tmp_path: Path, postgres_url: str) -> None:
    _write_concurrently(tmp_path, postgres_url, ["-"] * 6, n_runs=4)
    with open_store(postgres_url) as store:
        assert len(store.runs(limit=100)) == 6 * 4 + 1
        for worker in range(6):
            assert len(store.series("test_0", f"p{worker}", "mfu")) == 4
