"""What a pytest-xdist worker cannot send on a test report: interrupted cases, cancelled jobs, leftovers.

Records reach the controller on test reports. A case cut short by Ctrl-C has
no final report, and once interrupted the controller stops reading its
workers' messages: the report of a run under ``-n`` listed none of the cases
its workers were running. So at its session end each worker writes what its
shutdown found (the interrupted records, the jobs it cancelled, what its
backends could not clean up) to the run directory, which all workers share,
and the controller, which waits for its workers to end before it writes the
reports, reads every worker's file back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_hetero.session import HeteroSession

__all__ = ["hand_over", "take_over"]

_PREFIX = "handover-"


def _path(run_dir: Path, worker: str) -> Path:
    return run_dir / f"{_PREFIX}{worker}.json"


def hand_over(hetero: HeteroSession) -> None:
    """On a worker, after its shutdown: write what the controller must add to the report (if anything)."""
    found: dict[str, Any] = {
        "records": hetero.records,
        "cancelled_jobs": hetero.cancelled_jobs,
        "leftovers": hetero.leftovers,
    }
    if not any(found.values()):
        return
    workerinput: dict[str, Any] = getattr(hetero.config, "workerinput", {})
    path = _path(hetero.run_dir, str(workerinput.get("workerid", os.getpid())))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(found))
    partial.replace(path)  # the controller reads whole files only


def take_over(hetero: HeteroSession) -> None:
    """On the controller: add every worker's handed-over records, cancelled jobs and leftovers."""
    if not hetero.run_dir.is_dir():
        return
    for path in sorted(hetero.run_dir.glob(f"{_PREFIX}*.json")):
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            hetero.problems.append(f"could not read what an xdist worker handed over ({path}): {exc}")
            continue
        hetero.records.extend(found.get("records", []))
        hetero.cancelled_jobs.extend(found.get("cancelled_jobs", []))
        hetero.leftovers.extend(found.get("leftovers", []))
        path.unlink(missing_ok=True)
