"""A built-in workload's config checked on the driver, before any job is submitted.

The workload programs check their config when they start (unknown keys with a
suggestion, types, presets, ranges); the same checks run here at collection, so
a typo is a usage error (exit 4) rather than a failed job. They live in the
workload modules, which import torch: without torch on the driver the config
is checked only when the job starts.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util

from pytest_hetero.workload import Workload
from pytest_hetero.workloads import BUILTIN

__all__ = ["builtin_config_problem"]


def builtin_config_problem(workload: Workload) -> str | None:
    """What is wrong with a built-in workload's config, or None (also for other workloads, or without torch)."""
    if workload.module is None or BUILTIN.get(workload.name) != workload.module:
        return None
    return _problem(workload.module, workload.config_json)


@functools.cache
def _problem(module_name: str, config_json: str) -> str | None:
    if importlib.util.find_spec("torch") is None:
        return None  # the workload checks it when its job starts
    from pytest_hetero.workloads.common import WorkloadConfigError
    from pytest_hetero.workloads.harness import checked_config

    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None  # a torch that does not load here: the job's own start says why
    try:
        checked_config(module.SPEC, module.DEFAULTS, module.PRESETS, module.LAYOUTS, ["--config-json", config_json])
    except (WorkloadConfigError, ValueError) as exc:
        return str(exc).replace(" in --config-json", "")
    return None
