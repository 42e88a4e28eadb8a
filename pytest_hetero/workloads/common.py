"""Helpers shared by the workload programs (stdlib only).

A workload runs inside stock vendor images (NGC PyTorch, ROCm, ...), so this
module imports nothing beyond the standard library at import time.
``mlperf_logging`` and ``psutil`` are used when installed and replaced by
small stdlib fallbacks otherwise.

The contract with the plugin side (spelled in :mod:`.protocol`):

- config: ``--config-json JSON``, ``--config PATH`` or the environment variable
  ``HETERO_WORKLOAD_CONFIG``; unknown keys and wrong types exit with status 2;
  ``HETERO_SEED`` (set per repeat by the plugin) replaces the config's ``seed``;
- stdout: MLPerf ``:::MLLOG {json}`` events, then exactly one final line
  ``:::HETERO_METRICS {"metrics": [...], "workload": ..., "config": {...}}``,
  written by :func:`emit_metrics` (re-exported here from :mod:`.protocol`).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pytest_hetero.workloads.measure import peak_rss_mb
from pytest_hetero.workloads.mllog import MLLOG_PREFIX, MLLogger, make_mllogger
from pytest_hetero.workloads.protocol import (
    METRICS_PREFIX,
    SEED_ENV,
    WORKLOAD_CONFIG_ENV,
    WorkloadMetric,
    emit_metrics,
)

__all__ = [
    "METRICS_PREFIX",
    "MLLOG_PREFIX",
    "ConfigValue",
    "MLLogger",
    "StepTimer",
    "TimingSummary",
    "WorkloadConfigError",
    "WorkloadMetric",
    "check_choice",
    "check_min",
    "config_or_exit",
    "emit_metrics",
    "exit_config_error",
    "make_mllogger",
    "parse_config",
    "parse_preset_config",
    "peak_rss_mb",
    "timing_metrics",
]

ConfigValue = bool | int | float | str
T = TypeVar("T")


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


class WorkloadConfigError(ValueError):
    """A workload configuration is invalid; the message says what to change."""


def parse_config(
    argv: Sequence[str], defaults: Mapping[str, ConfigValue], prog: str | None = None
) -> dict[str, ConfigValue]:
    """Merge the workload config over ``defaults`` and validate it.

    Precedence, lowest first: ``defaults``; ``HETERO_WORKLOAD_CONFIG`` (read
    only when neither flag is given); ``--config PATH``; ``--config-json``;
    then ``HETERO_SEED``, the seed of this repeat, replaces ``seed`` (when the
    workload has that key). Raises WorkloadConfigError for unknown keys, wrong types and unreadable input;
    a bad command line exits with status 2 (argparse).
    """
    args = _argument_parser(defaults, prog).parse_args(list(argv))
    layers = _config_layers(args.config, args.config_json)
    merged: dict[str, ConfigValue] = dict(defaults)
    for source, layer in layers:
        merged.update(_validated_layer(layer, defaults, source))
    repeat_seed = os.environ.get(SEED_ENV)
    if repeat_seed is not None and "seed" in defaults:  # this repeat's own seed (--hetero-repeat)
        merged.update(_validated_layer({"seed": _integer(repeat_seed, f"${SEED_ENV}")}, defaults, f"${SEED_ENV}"))
    return merged


def _integer(text: str, source: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise WorkloadConfigError(f"{source} must be an integer, got {text!r}") from None


def config_or_exit(argv: Sequence[str], defaults: Mapping[str, ConfigValue], prog: str) -> dict[str, ConfigValue]:
    """``parse_config``, but print the error to stderr and exit 2 on failure."""
    try:
        return parse_config(argv, defaults, prog)
    except WorkloadConfigError as exc:
        exit_config_error(prog, exc)


def parse_preset_config(
    argv: Sequence[str],
    defaults: Mapping[str, ConfigValue],
    presets: Mapping[str, Mapping[str, ConfigValue]],
    prog: str | None = None,
    recipes: Mapping[str, Mapping[str, ConfigValue]] | None = None,
) -> dict[str, ConfigValue]:
    """``parse_config`` where the ``preset`` key picks a named set of defaults, then ``recipe`` another.

    Keys given explicitly override the preset's and the recipe's values, so a
    test can run ``{"preset": "subset", "epochs": 2}``; a recipe (the optimiser
    and its schedule: ``{"recipe": "lamb"}``) overrides the preset's. Raises
    WorkloadConfigError for an unknown preset or recipe.
    """
    chosen = str(parse_config(argv, defaults, prog)["preset"])
    if chosen not in presets:
        raise WorkloadConfigError(f"config key 'preset' must be one of {', '.join(presets)}; got {chosen!r}")
    with_preset = {**defaults, **presets[chosen]}
    if not recipes:
        return parse_config(argv, with_preset, prog)
    recipe = str(parse_config(argv, with_preset, prog)["recipe"])
    if recipe not in recipes:
        raise WorkloadConfigError(f"config key 'recipe' must be one of {', '.join(recipes)}; got {recipe!r}")
    return parse_config(argv, {**with_preset, **recipes[recipe]}, prog)


def exit_config_error(prog: str, exc: WorkloadConfigError) -> NoReturn:
    """Print ``prog: config error: ...`` to stderr and exit with status 2."""
    print(f"{prog}: config error: {exc}", file=sys.stderr)
    raise SystemExit(2)


def _argument_parser(defaults: Mapping[str, ConfigValue], prog: str | None) -> argparse.ArgumentParser:
    keys = "\n".join(f"  {key} = {json.dumps(value)}" for key, value in defaults.items())
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Run a pytest-hetero workload. Without flags the config is read "
        f"from ${WORKLOAD_CONFIG_ENV} (JSON) when set.",
        epilog=f"config keys and defaults:\n{keys}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help="JSON file with config keys")
    parser.add_argument("--config-json", metavar="JSON", help="config keys as a JSON object")
    parser.add_argument(
        "--describe", action="store_true", help="print the workload card (JSON, built on the meta device) and exit"
    )
    return parser


def _config_layers(path: str | None, text: str | None) -> list[tuple[str, dict[str, Any]]]:
    layers: list[tuple[str, dict[str, Any]]] = []
    env_text = os.environ.get(WORKLOAD_CONFIG_ENV)
    if path is None and text is None and env_text:
        env_source = f"${WORKLOAD_CONFIG_ENV}"
        layers.append((env_source, _json_object(env_text, env_source)))
    if path is not None:
        layers.append((path, _json_object(_read_text(path), path)))
    if text is not None:
        layers.append(("--config-json", _json_object(text, "--config-json")))
    return layers


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkloadConfigError(f"cannot read --config {path}: {exc.strerror}") from exc


def _json_object(text: str, source: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkloadConfigError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise WorkloadConfigError(f"{source} must be a JSON object, got {type(value).__name__}")
    return value


def _validated_layer(
    layer: Mapping[str, Any], defaults: Mapping[str, ConfigValue], source: str
) -> dict[str, ConfigValue]:
    unknown = [key for key in layer if key not in defaults]
    if unknown:
        raise WorkloadConfigError(_unknown_keys_message(unknown, defaults, source))
    return {key: _coerce(key, value, defaults[key], source) for key, value in layer.items()}


def _unknown_keys_message(unknown: Sequence[str], defaults: Mapping[str, ConfigValue], source: str) -> str:
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, list(defaults), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        parts.append(f"{key!r}{hint}")
    noun = "key" if len(unknown) == 1 else "keys"
    valid = ", ".join(sorted(defaults))
    return f"unknown config {noun} {', '.join(parts)} in {source}; valid keys: {valid}"


def _coerce(key: str, value: Any, default: ConfigValue, source: str) -> ConfigValue:
    """Check ``value`` against the default's type; ints are accepted as floats."""
    expected = type(default)
    if expected is float and type(value) is int:
        return float(value)
    if type(value) is expected:
        checked: ConfigValue = value
        return checked
    raise WorkloadConfigError(
        f"config key {key!r} in {source} must be {expected.__name__}, got {type(value).__name__} {value!r}"
    )


def check_choice(config: Mapping[str, ConfigValue], key: str, choices: Sequence[str]) -> None:
    """Raise WorkloadConfigError unless ``config[key]`` is one of ``choices``."""
    if config[key] not in choices:
        allowed = ", ".join(choices)
        raise WorkloadConfigError(f"config key {key!r} must be one of {allowed}; got {config[key]!r}")


def check_min(config: Mapping[str, ConfigValue], key: str, minimum: float) -> None:
    """Raise WorkloadConfigError unless ``config[key] >= minimum``."""
    value = config[key]
    if isinstance(value, str) or value < minimum:
        raise WorkloadConfigError(f"config key {key!r} must be >= {minimum}; got {value!r}")


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TimingSummary:
    """Step timings of a training loop, warm-up steps separated out.

    ``throughput_sps`` and ``step_time_ms`` cover the steady steps only; the
    data-wait figures cover every step (cold-cache reads are part of the I/O
    story), as a total and as a fraction of the summed step times.
    """

    total_steps: int
    steady_steps: int
    throughput_sps: float
    step_time_ms: float
    loop_time_s: float
    data_wait_s: float
    data_wait_fraction: float


@dataclass
class StepTimer:
    """Measures data-wait and compute time per step of a training loop.

    Use ``batch = timer.fetch(batches)`` then ``with timer.compute(): ...``;
    the compute block must synchronise the device before it ends.
    """

    warmup_steps: int
    samples_per_step: int
    clock: Callable[[], float] = time.perf_counter
    data_wait_s: list[float] = field(default_factory=list)
    compute_s: list[float] = field(default_factory=list)
    _pending_wait_s: float = 0.0

    def fetch(self, batches: Iterator[T]) -> T:
        """Return ``next(batches)`` and record how long it took."""
        start = self.clock()
        batch = next(batches)
        self._pending_wait_s = self.clock() - start
        return batch

    @contextmanager
    def compute(self) -> Iterator[None]:
        """Time the body as the compute part of the current step."""
        start = self.clock()
        yield
        self.compute_s.append(self.clock() - start)
        self.data_wait_s.append(self._pending_wait_s)
        self._pending_wait_s = 0.0

    def summary(self) -> TimingSummary:
        """Summarise the recorded steps; needs one step past the warm-up."""
        step_s = [w + c for w, c in zip(self.data_wait_s, self.compute_s, strict=True)]
        steady_s = step_s[self.warmup_steps :]
        if not steady_s:
            raise ValueError(f"no steady steps: {len(step_s)} steps recorded, {self.warmup_steps} of them warm-up")
        loop_time_s = sum(step_s)
        wait_s = sum(self.data_wait_s)
        return TimingSummary(
            total_steps=len(step_s),
            steady_steps=len(steady_s),
            throughput_sps=_ratio(len(steady_s) * self.samples_per_step, sum(steady_s)),
            step_time_ms=statistics.median(steady_s) * 1e3,
            loop_time_s=loop_time_s,
            data_wait_s=wait_s,
            data_wait_fraction=_ratio(wait_s, loop_time_s),
        )


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def timing_metrics(summary: TimingSummary) -> list[WorkloadMetric]:
    """The metrics every training workload reports from its step timings."""
    return [
        WorkloadMetric("throughput_sps", summary.throughput_sps, "samples/s", True),
        WorkloadMetric("step_time_ms", summary.step_time_ms, "ms", False),
        WorkloadMetric("data_wait_s", summary.data_wait_s, "s", False),
        WorkloadMetric("data_wait_fraction", summary.data_wait_fraction, "ratio", False),
        WorkloadMetric("steady_steps", float(summary.steady_steps), "steps", True),
    ]
