"""The canonical, versioned JSON report (schema: ``schemas/report.schema.json``)."""

from __future__ import annotations

import json
import os
import posixpath
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest_hetero
from pytest_hetero.redact import redact_tree

if TYPE_CHECKING:
    from pytest_hetero.results import ResultRecord

__all__ = ["REPORT_VERSION", "build_report", "compact_report", "expand_report", "write_report"]

REPORT_VERSION = 1


def build_report(
    *,
    run_id: str,
    records: Sequence[ResultRecord],
    platforms: list[str],
    exit_status: int,
    interrupted: bool,
    cancelled_jobs: list[str],
    provenance: dict[str, Any],
) -> dict[str, Any]:
    report = {
        "schema_version": REPORT_VERSION,
        "run_id": run_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "pytest_hetero_version": pytest_hetero.__version__,
        "argv": list(sys.argv),
        "exit_status": exit_status,
        "interrupted": interrupted,
        "platforms": platforms,
        "summary": dict(Counter(r["outcome"] for r in records)),
        "cancelled_jobs": cancelled_jobs,
        "provenance": provenance,
        "results": sorted(records, key=lambda r: (r["nodeid"], r["platform"]["name"])),
    }
    redacted: dict[str, Any] = redact_tree(report)  # argv, provenance: no secret in what is written or stored
    return redacted


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write atomically (:func:`compact_report`), so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(compact_report(report), indent=2, sort_keys=False, default=str) + "\n")
        tmp.replace(path)
    except BaseException:  # a full disk (ENOSPC), or Ctrl-C: no half-written temporary file stays behind
        tmp.unlink(missing_ok=True)
        raise


def compact_report(report: dict[str, Any]) -> dict[str, Any]:
    """The report as written: what every record repeats is said once, at the report's level.

    - ``platform_fingerprint_parts``: platform fingerprint -> its parts (the records keep the fingerprint);
    - a record's own windows (``contention.windows``, one per repeat) leave out what the record says:
      ``platform`` (its platform's name), ``job`` (``<nodeid>#<repeat>``) and ``job_id`` (``job.ids[repeat]``);
    - ``run_dir``: the directory holding every job's work directory, when they share one; a record's
      ``job.workdir`` is then relative to it, and its ``job.logs`` relative to the work directory.

    :func:`expand_report` undoes it; a report written before either (absolute paths, parts in every
    record) reads the same through it.
    """
    if "results" not in report:  # another format written the same way (the pytest-benchmark export)
        return report
    records = [{**r, "platform": dict(r["platform"]), "job": dict(r["job"])} for r in report["results"]]
    compact = {**report, "results": records}
    for record in records:
        _compact_windows(record)
    parts: dict[str, Any] = {}
    for record in records:
        platform = record["platform"]
        if platform.get("fingerprint") and "fingerprint_parts" in platform:
            parts[platform["fingerprint"]] = platform.pop("fingerprint_parts")
    if parts:
        compact["platform_fingerprint_parts"] = parts
    workdirs = [r["job"]["workdir"] for r in records if posixpath.isabs(r["job"].get("workdir") or "")]
    run_dirs = {posixpath.dirname(workdir) for workdir in workdirs}
    if len(run_dirs) == 1:
        compact["run_dir"] = run_dir = run_dirs.pop()
        for record in records:
            job = record["job"]
            workdir = job.get("workdir") or ""
            if posixpath.isabs(workdir):
                job["logs"] = {name: _relative(path, workdir) for name, path in (job.get("logs") or {}).items()}
                job["workdir"] = _relative(workdir, run_dir)
    return compact


def _relative(path: str, start: str) -> str:
    """``path`` relative to ``start`` when it lies under it, else as it is."""
    return posixpath.relpath(path, start) if path.startswith(start.rstrip("/") + "/") else path


def expand_report(report: dict[str, Any]) -> dict[str, Any]:
    """A report read back, records whole again (see :func:`compact_report`); changed in place, returned."""
    parts = report.pop("platform_fingerprint_parts", None) or {}
    run_dir = report.pop("run_dir", None)
    for record in report.get("results") or []:
        platform, job = record.get("platform") or {}, record.get("job") or {}
        found = parts.get(platform.get("fingerprint"))
        if found is not None and "fingerprint_parts" not in platform:
            platform["fingerprint_parts"] = dict(found)
        _expand_windows(record)
        workdir = job.get("workdir")
        if run_dir and isinstance(workdir, str) and workdir and not posixpath.isabs(workdir):
            job["workdir"] = workdir = posixpath.join(run_dir, workdir)
            logs = job.get("logs") or {}
            job["logs"] = {name: posixpath.join(workdir, path) for name, path in logs.items()}
    return report


def _own_window_fields(record: dict[str, Any], repeat: int) -> dict[str, Any]:
    """What a record's window for ``repeat`` says that the record says already."""
    ids = record["job"].get("ids") or []
    return {
        "job": f"{record['nodeid']}#{repeat}",
        "job_id": ids[repeat] if repeat < len(ids) else None,
        "platform": record["platform"]["name"],
    }


def _compact_windows(record: dict[str, Any]) -> None:
    contention = record.get("contention")
    if not contention or not contention.get("windows"):
        return
    windows = []
    for repeat, window in enumerate(contention["windows"]):
        implied = _own_window_fields(record, repeat)
        windows.append({k: v for k, v in window.items() if not (k in implied and implied[k] == v)})
    record["contention"] = {**contention, "windows": windows}


def _expand_windows(record: dict[str, Any]) -> None:
    contention = record.get("contention")
    if not isinstance(contention, dict) or "nodeid" not in record:
        return
    for repeat, window in enumerate(contention.get("windows") or []):
        for key, value in _own_window_fields(record, repeat).items():
            window.setdefault(key, value)
