"""The xdist controller's side of submitting ahead under pytest-xdist (see :mod:`pytest_hetero.xdist_plan`).

Imported only when xdist asks for a scheduler, so a run without xdist never imports it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScheduling  # type: ignore[import-untyped]  # xdist ships no type information
from xdist.workermanage import WorkerController  # type: ignore[import-untyped]

from pytest_hetero.xdist_plan import ASSIGNMENT, MARKER

__all__ = ["PlannedScheduling", "make_scheduler"]


def make_scheduler(config: pytest.Config, log: Any, xdist_dir: Path) -> LoadScheduling | None:
    """The controller's scheduler for ``--dist load`` (the default of ``-n``); None keeps xdist's choice."""
    if config.getoption("dist", "no") != "load":
        return None
    return PlannedScheduling(config, log, xdist_dir)


def _worker_number(node: WorkerController) -> int:
    worker_id = str(node.workerinput["workerid"])
    return int(worker_id.removeprefix("gw")) if worker_id.removeprefix("gw").isdigit() else 0


class PlannedScheduling(LoadScheduling):  # type: ignore[misc]  # untyped base
    """xdist's load scheduling, except that a collection with benchmarks is dealt out whole at the start."""

    def __init__(self, config: pytest.Config, log: Any, xdist_dir: Path) -> None:
        super().__init__(config, log)
        self.xdist_dir = xdist_dir
        self.collection: list[str] | None = None

    def schedule(self) -> None:
        if self.collection is not None or not (self.xdist_dir / MARKER).exists():
            super().schedule()
            return
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        collection: list[str] = next(iter(self.node2collection.values()))
        self.collection = collection
        nodes = sorted(self.nodes, key=_worker_number)
        shares = {node: list(range(k, len(collection), len(nodes))) for k, node in enumerate(nodes)}
        self._write_assignment({str(node.workerinput["workerid"]): share for node, share in shares.items()})
        for node, share in shares.items():
            if share:
                self.node2pending[node].extend(share)
                node.send_runtest_some(share)
        for node in nodes:
            node.shutdown()

    def _write_assignment(self, assignment: dict[str, list[int]]) -> None:
        self.xdist_dir.mkdir(parents=True, exist_ok=True)
        path = self.xdist_dir / ASSIGNMENT
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(assignment))
        tmp.replace(path)
