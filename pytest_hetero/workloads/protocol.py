"""The contract between the plugin and a workload job (stdlib only: it runs inside the job).

The plugin starts a workload with the environment :func:`job_environment`
builds; the workload prints MLPerf ``:::MLLOG`` events and then one final
line, written by :func:`emit_metrics` and read back by
:func:`parse_metrics_line`, the only parser of that line::

    :::HETERO_METRICS {"metrics": [{"name": ..., "value": ..., "unit": ..., "higher_is_better": ...}],
                       "workload": ..., "config": {...}}

Environment variables of the job:

- ``HETERO_WORKLOAD_CONFIG``: the workload's config, a JSON object;
- ``HETERO_PLATFORM``: the catalogue's platform name;
- ``HETERO_ACCELERATOR_KIND``: the platform's accelerator kind (built in: :data:`ACCELERATOR_KINDS`);
- ``HETERO_ACCELERATORS_PER_NODE``: an integer;
- ``HETERO_RUN_ID``: the pytest run's id (shared by xdist workers);
- ``HETERO_PEAK_TFLOPS_JSON``: ``{"bf16": 312, ...}``, TFLOP/s per accelerator;
- ``HETERO_DATA_<NAME>``: one per ``data_roots`` entry (:func:`data_env_name`);
  ``HETERO_DATA_NODE_LOCAL``, from the ``node_local`` entry, is where data is staged;
- ``HETERO_REPEAT``: which repeat this job is (``--hetero-repeat``), 1 for the first;
- ``HETERO_SEED``: the seed of this repeat, an integer (:func:`repeat_seed`): the
  config's ``seed`` for the first repeat, a distinct one derived from it for each
  other. A workload uses it instead of its config's seed and logs it (MLLOG
  ``seed``). Unset when the config names no seed and this is the first repeat:
  the workload's own default applies.

Errors: :class:`MetricsLineError` (a ``ValueError``) when the metrics line is
missing or malformed; it carries the line number and the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = [
    "ACCELERATORS_PER_NODE_ENV",
    "ACCELERATOR_KINDS",
    "ACCELERATOR_KIND_ENV",
    "DATA_ENV_PREFIX",
    "DATA_NODE_LOCAL_ENV",
    "METRICS_PREFIX",
    "PEAK_TFLOPS_ENV",
    "PLATFORM_ENV",
    "RAPL_ROOT_ENV",
    "REPEAT_ENV",
    "RUN_ID_ENV",
    "SEED_ENV",
    "WORKLOAD_CONFIG_ENV",
    "MetricsLineError",
    "WorkloadMetric",
    "data_env_name",
    "emit_metrics",
    "format_metrics_line",
    "job_environment",
    "parse_metrics_line",
    "repeat_seed",
]

#: The built-in accelerator kinds, in the order the docs list them.
ACCELERATOR_KINDS = ("cpu", "nvidia-gpu", "amd-gpu", "graphcore-ipu", "cerebras")

WORKLOAD_CONFIG_ENV = "HETERO_WORKLOAD_CONFIG"
PLATFORM_ENV = "HETERO_PLATFORM"
ACCELERATOR_KIND_ENV = "HETERO_ACCELERATOR_KIND"
ACCELERATORS_PER_NODE_ENV = "HETERO_ACCELERATORS_PER_NODE"
RUN_ID_ENV = "HETERO_RUN_ID"
PEAK_TFLOPS_ENV = "HETERO_PEAK_TFLOPS_JSON"
DATA_ENV_PREFIX = "HETERO_DATA_"
#: ``data_env_name("node_local")``: the data root a workload stages to.
DATA_NODE_LOCAL_ENV = DATA_ENV_PREFIX + "NODE_LOCAL"
REPEAT_ENV = "HETERO_REPEAT"
SEED_ENV = "HETERO_SEED"
#: Moves the RAPL powercap tree the CPU energy counter reads (tests point it at a tree they write).
RAPL_ROOT_ENV = "HETERO_RAPL_ROOT"

METRICS_PREFIX = ":::HETERO_METRICS "


# --------------------------------------------------------------------------
# The job's environment
# --------------------------------------------------------------------------


def data_env_name(root_name: str) -> str:
    """``HETERO_DATA_<NAME>`` for a ``data_roots`` entry: ``imagenet`` -> ``HETERO_DATA_IMAGENET``.

    Runs of characters other than letters, digits, ``_ . -`` become one ``_``;
    leading and trailing ``_`` are dropped and the name is cut at 120 characters.
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", root_name).strip("_")[:120]
    return DATA_ENV_PREFIX + slug.upper()


def repeat_seed(seed: int | None, index: int) -> int | None:
    """The seed of repeat ``index`` (0 for the first) of a run whose config's seed is ``seed``.

    The first repeat keeps the config's seed, so a single run is the run the
    config describes; every other repeat gets its own, derived from both
    (SHA-256, 31 bits: valid for every framework's generator), the same on
    every platform and in every session. Without a config seed the first
    repeat is None (the workload's default) and the others derive from ``None``.
    """
    if index == 0:
        return seed
    digest = hashlib.sha256(f"pytest-hetero repeat seed:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def job_environment(
    *,
    config_json: str,
    platform: str,
    accelerator_kind: str,
    accelerators_per_node: int,
    run_id: str,
    peak_tflops: Mapping[str, float],
    data_roots: Mapping[str, str],
    repeat: int | None = None,
    seed: int | None = None,
) -> dict[str, str]:
    """The variables the plugin sets for every workload job; ``repeat`` counts from 1."""
    env = {
        WORKLOAD_CONFIG_ENV: config_json,
        PLATFORM_ENV: platform,
        ACCELERATOR_KIND_ENV: accelerator_kind,
        ACCELERATORS_PER_NODE_ENV: str(accelerators_per_node),
        RUN_ID_ENV: run_id,
        PEAK_TFLOPS_ENV: json.dumps(dict(peak_tflops)),
        **{data_env_name(name): path for name, path in data_roots.items()},
    }
    if repeat is not None:
        env[REPEAT_ENV] = str(repeat)
    if seed is not None:
        env[SEED_ENV] = str(seed)
    return env


# --------------------------------------------------------------------------
# Writing the metrics line (the workload side)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadMetric:
    """One measured value as it appears in the metrics line."""

    name: str
    value: float | None
    unit: str
    higher_is_better: bool

    def to_json(self) -> dict[str, Any]:
        """Return the record entry; a non-finite value becomes ``None``."""
        return {
            "name": self.name,
            "value": _finite_or_none(self.value),
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
        }


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _json_safe(value: Any) -> Any:
    """Replace nan/inf anywhere in a JSON-like value by ``None``."""
    if isinstance(value, float):
        return _finite_or_none(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def format_metrics_line(
    metrics: Iterable[WorkloadMetric],
    workload: str,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The final ``:::HETERO_METRICS`` line, strict JSON (no trailing newline).

    ``extra`` adds top-level keys beside ``metrics``, ``workload`` and ``config``
    (which it cannot replace): the built-in workloads add their ``card`` and a
    ``provenance`` object; the plugin keeps them as the result's
    ``workload.reported`` and ``provenance.workload``.
    """
    record: dict[str, Any] = {
        "metrics": [m.to_json() for m in metrics],
        "workload": workload,
        "config": _json_safe(config),
    }
    for key, value in (extra or {}).items():
        record.setdefault(str(key), _json_safe(value))
    return METRICS_PREFIX + json.dumps(record, allow_nan=False, sort_keys=False)


def emit_metrics(
    metrics: Iterable[WorkloadMetric],
    workload: str,
    config: Mapping[str, Any],
    stream: TextIO | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write the metrics line to ``stream`` (stdout by default) and flush; ``extra``: see format_metrics_line."""
    out = sys.stdout if stream is None else stream
    out.write(format_metrics_line(metrics, workload, config, extra) + "\n")
    out.flush()


# --------------------------------------------------------------------------
# Reading it (the plugin side, and tests)
# --------------------------------------------------------------------------


class MetricsLineError(ValueError):
    """The metrics line is missing or malformed.

    ``lineno`` is the 1-based line of the text (None when there is no metrics
    line); ``reason`` says what is wrong without the location.
    """

    def __init__(self, reason: str, lineno: int | None = None) -> None:
        super().__init__(reason if lineno is None else f"line {lineno}: {reason}")
        self.reason = reason
        self.lineno = lineno


def parse_metrics_line(text: str) -> dict[str, Any]:
    """The decoded record of the last metrics line in ``text`` (a job's stdout).

    Checks the shape: an object with a ``metrics`` list whose entries have a
    string ``name``, a numeric or null ``value``, and, where present, a string
    ``unit`` and a bool ``higher_is_better``. Raises MetricsLineError.
    """
    found = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.startswith(METRICS_PREFIX)]
    if not found:
        raise MetricsLineError(f"the workload printed no '{METRICS_PREFIX.strip()}' line")
    lineno, line = found[-1]
    try:
        record = json.loads(line[len(METRICS_PREFIX) :])
    except json.JSONDecodeError as exc:
        raise MetricsLineError(f"malformed metrics record: {exc.msg} at column {exc.colno}", lineno) from exc
    if not isinstance(record, dict) or not isinstance(record.get("metrics"), list):
        raise MetricsLineError("the metrics record must be an object with a 'metrics' list", lineno)
    for index, entry in enumerate(record["metrics"]):
        problem = _entry_problem(entry)
        if problem:
            raise MetricsLineError(f"metrics[{index}]: {problem}", lineno)
    return record


def _entry_problem(entry: object) -> str | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        return "each metric needs a string 'name'"
    name, value = entry["name"], entry.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"metric {name!r} has non-numeric value {value!r}"
    if not isinstance(entry.get("unit", ""), str) or not isinstance(entry.get("higher_is_better", True), bool):
        return f"metric {name!r}: 'unit' must be a string, 'higher_is_better' a bool"
    return None
