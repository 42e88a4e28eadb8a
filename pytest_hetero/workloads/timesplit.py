"""Where a run's time went: compute, data wait, staging, communication, and the rest. Stdlib only.

The training loop's :class:`~pytest_hetero.workloads.common.StepTimer` splits
each step into the wait for its batch and the compute block; collectives add
their time to ``comm_time_s`` inside the compute block; staging copies the
dataset before the run starts. So, for staging plus time to train::

    staging        the copy to node-local storage (0 without staging)
    data_wait      waiting for batches, summed over every step
    communication  collectives (inside the steps' compute blocks)
    compute        the steps' compute blocks less communication
    other          the rest of time to train: evaluation, logging, between steps

The record carries each part in seconds, its fraction, and the dominant part
(the largest); with :mod:`.storage`'s description of the data roots, this is
what says whether a result measured the accelerator or the filesystem.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Protocol

from pytest_hetero.workloads.common import StepTimer
from pytest_hetero.workloads.data import StagingResult
from pytest_hetero.workloads.storage import data_roots_storage

__all__ = ["PARTS", "STORAGE_KEY", "TIME_SPLIT_KEY", "RunTimes", "attribution", "time_split"]

PARTS = ("compute", "data_wait", "staging", "communication", "other")
#: Keys of the metrics record (beside ``metrics``) the plugin keeps as the result's ``workload.reported``.
TIME_SPLIT_KEY = "time_split"
STORAGE_KEY = "storage"


def _finite(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else 0.0


def time_split(
    *, compute_steps_s: float, data_wait_s: float, communication_s: float, staging_s: float, time_to_train_s: float
) -> dict[str, Any]:
    """The parts (seconds and fractions) and the dominant one; see the module docstring."""
    steps_s = _finite(compute_steps_s) + _finite(data_wait_s)
    parts = {
        "compute": max(0.0, _finite(compute_steps_s) - _finite(communication_s)),
        "data_wait": _finite(data_wait_s),
        "staging": _finite(staging_s),
        "communication": min(_finite(communication_s), _finite(compute_steps_s)),
        "other": max(0.0, _finite(time_to_train_s) - steps_s),
    }
    total_s = sum(parts.values())
    fractions = {name: (value / total_s if total_s > 0 else 0.0) for name, value in parts.items()}
    dominant = max(PARTS, key=lambda name: parts[name]) if total_s > 0 else "unknown"
    return {"seconds": parts, "fractions": fractions, "total_s": total_s, "dominant": dominant}


class RunTimes(Protocol):
    """What the training loop measured (``training.Run``)."""

    timer: StepTimer
    staging: StagingResult | None
    time_to_train_s: float


def attribution(
    run: RunTimes, config: Mapping[str, Any], communication_s: float, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The record's ``time_split`` and ``storage`` (per data root, with the staging copy's bytes and time)."""
    timer, staging = run.timer, run.staging
    data_dir = str(config.get("data_dir") or "") if config.get("data") == "real" else ""
    split = time_split(
        compute_steps_s=sum(timer.compute_s),
        data_wait_s=sum(timer.data_wait_s),
        communication_s=communication_s,
        staging_s=staging.staging_time_s if staging else 0.0,
        time_to_train_s=run.time_to_train_s,
    )
    source = str(staging.source) if staging else data_dir
    environ = os.environ if environ is None else environ
    storage: dict[str, Any] = {"roots": data_roots_storage(environ, source, str(staging.target) if staging else "")}
    if staging is not None:
        storage["staging"] = {
            "source": str(staging.source),
            "target": str(staging.target),
            "bytes": staging.bytes_copied,
            "files": staging.files,
            "time_s": staging.staging_time_s,
        }
    return {TIME_SPLIT_KEY: split, STORAGE_KEY: storage}
