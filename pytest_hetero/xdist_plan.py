"""Submit ahead under pytest-xdist: every worker learns, before its first test, all the items it will run.

xdist's default ``load`` scheduling hands items out a few at a time, so a
worker cannot plan (submit ahead) what it has not been given yet, and a run's
concurrency would be its number of workers. When the collection holds
benchmarks, the controller instead deals *every* item out at once,
round-robin in collection order, and writes who got what to
``<output dir>/xdist/<run id>/`` (removed at the end of the run; not the run
directory, which exists only once something ran); each worker reads its share
before its first test and plans those jobs, like a lone process does::

    worker     collection: benchmarks found -> touch xdist-benchmarks
    controller all collections in -> deal items round-robin -> xdist-assignment.json,
               send each worker its share, then shut the workers down (they finish their share)
    worker     first test: read its share, plan its jobs (Scheduler.plan), wait per test

``max_jobs`` and resource groups still hold across workers: slots are file
locks in the run directory and the host's lock directory
(:mod:`pytest_hetero.isolation`), so the workers' schedulers share them. A
collection without benchmarks keeps xdist's own scheduling. Items of a worker
that crashed go to the others as xdist does it; those run their jobs on demand.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["ASSIGNMENT", "MARKER", "assigned_indices", "note_benchmarks"]

#: Touched by a worker whose collection holds benchmarks.
MARKER = "xdist-benchmarks"
#: Worker id -> indices of the collection it runs, written by the controller
#: (:class:`pytest_hetero.xdist_scheduling.PlannedScheduling`).
ASSIGNMENT = "xdist-assignment.json"


def note_benchmarks(xdist_dir: Path) -> None:
    """A worker's collection holds benchmarks (written before xdist sends it to the controller)."""
    xdist_dir.mkdir(parents=True, exist_ok=True)
    (xdist_dir / MARKER).touch()


def assigned_indices(xdist_dir: Path, worker_id: str) -> list[int] | None:
    """The collection indices dealt to ``worker_id``; None when the controller dealt nothing out up front."""
    try:
        assignment = json.loads((xdist_dir / ASSIGNMENT).read_text())
    except (OSError, ValueError):
        return None
    found = assignment.get(worker_id) if isinstance(assignment, dict) else None
    return [int(index) for index in found] if isinstance(found, list) else None
