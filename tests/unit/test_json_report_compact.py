"""The report as written says once what every record repeats; read back, every record is whole again."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fake_reports import HASH_A, HASH_B, record, report, write

from pytest_hetero.cli import load_report
from pytest_hetero.reporting.json_report import compact_report, expand_report, write_report
from pytest_hetero.schemas import load_schema, schema_errors

RUN_DIR = "/work/.hetero/runs/20260501-100000-aaaaaa"


def _full_record(platform: str, name: str, fingerprint: str) -> dict[str, Any]:
    rec = record(platform=platform)
    workdir = f"{RUN_DIR}/{name}"
    rec["platform"]["fingerprint"] = fingerprint
    rec["platform"]["fingerprint_parts"] = {"backend": HASH_A, "env": HASH_B}
    rec["job"].update(
        ids=["local-7", "local-8"],
        workdir=workdir,
        logs={"stdout": f"{workdir}/stdout.log", "elsewhere": "/var/log/x.log"},
    )
    window = {"id": "w1", "start_unix_s": 1.5, "end_unix_s": 2.5, "load_avg_start": None, "load_avg_end": None}
    own = [
        {**window, "job": f"{rec['nodeid']}#0", "job_id": "local-7", "platform": platform},
        {**window, "id": "w2", "job": f"{rec['nodeid']}#1", "job_id": "other", "platform": platform},
    ]
    beside = [{**window, "id": "w3", "job": "x::y#0", "job_id": "local-9", "platform": "b"}]
    rec["contention"] = {
        "resource_group": "host:x",
        "group_max_jobs": 1,
        "windows": own,
        "beside": beside,
        "contended": True,
    }
    return rec


def _full_report() -> dict[str, Any]:
    return report([_full_record("a100", "one", HASH_A), _full_record("h100", "two", HASH_B)])


def test_the_written_report_says_parts_and_paths_once_and_reads_back_whole(tmp_path: Path) -> None:
    full = _full_report()
    before = copy.deepcopy(full)
    path = tmp_path / "out.json"
    write_report(path, full)
    assert full == before  # the session's own report is not changed by writing it
    written = json.loads(path.read_text())
    assert schema_errors(written, load_schema("report")) == []
    assert written["run_dir"] == RUN_DIR
    parts = {"backend": HASH_A, "env": HASH_B}
    assert written["platform_fingerprint_parts"] == {HASH_A: parts, HASH_B: parts}
    first = written["results"][0]
    assert "fingerprint_parts" not in first["platform"]
    assert first["job"]["workdir"] == "one"
    assert first["job"]["logs"] == {"stdout": "stdout.log", "elsewhere": "/var/log/x.log"}
    own = first["contention"]["windows"]
    assert "job" not in own[0] and "job_id" not in own[0] and "platform" not in own[0]
    assert own[1]["job_id"] == "other" and "job" not in own[1]  # only what the record implies is left out
    assert first["contention"]["beside"][0]["platform"] == "b"
    assert load_report(path) == before


def test_a_report_written_before_reads_as_it_is(tmp_path: Path) -> None:
    full = _full_report()
    path = write(tmp_path / "old.json", full)
    assert load_report(path) == full
    assert expand_report(copy.deepcopy(full)) == full


def test_records_in_different_directories_keep_their_absolute_paths() -> None:
    full = _full_report()
    full["results"][1]["job"]["workdir"] = "/elsewhere/two"
    compact = compact_report(full)
    assert "run_dir" not in compact
    assert compact["results"][0]["job"]["workdir"] == f"{RUN_DIR}/one"
    assert expand_report(json.loads(json.dumps(compact))) == full
