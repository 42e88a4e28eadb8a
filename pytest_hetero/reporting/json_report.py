"""The canonical, versioned JSON report (schema: ``schemas/report.schema.json``)."""

from __future__ import annotations

import json
import os
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

__all__ = ["REPORT_VERSION", "build_report", "write_report"]

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
    """Write atomically, so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n")
        tmp.replace(path)
    except BaseException:  # a full disk (ENOSPC), or Ctrl-C: no half-written temporary file stays behind
        tmp.unlink(missing_ok=True)
        raise
