"""Run workload programs as real subprocesses and read what they printed (test helper)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pytest_hetero
from pytest_hetero.workloads.mllog import ComplianceReport, check_compliance, mllog_lines
from pytest_hetero.workloads.protocol import (
    ACCELERATOR_KIND_ENV,
    PEAK_TFLOPS_ENV,
    WORKLOAD_CONFIG_ENV,
    parse_metrics_line,
)

REPO_ROOT = Path(pytest_hetero.__file__).resolve().parents[1]
# Variables of the plugin's job environment that must not leak in from an outer run.
_SCRUBBED = (WORKLOAD_CONFIG_ENV, ACCELERATOR_KIND_ENV, PEAK_TFLOPS_ENV, "RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class Run:
    """A finished workload process and what it printed."""

    returncode: int
    stdout: str
    stderr: str
    cwd: Path

    @property
    def record(self) -> dict[str, Any]:
        return parse_metrics_line(self.stdout)

    @property
    def metrics(self) -> dict[str, Any]:
        return {m["name"]: m["value"] for m in self.record["metrics"]}

    @property
    def units(self) -> dict[str, tuple[str, bool]]:
        return {m["name"]: (m["unit"], m["higher_is_better"]) for m in self.record["metrics"]}

    def events(self, key: str) -> list[dict[str, Any]]:
        """The MLLOG records with ``key``, in order."""
        records = [json.loads(line.split(" ", 1)[1]) for line in mllog_lines(self.stdout)]
        return [r for r in records if r["key"] == key]


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN/Infinity, as strict JSON parsers do."""

    def reject(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def job_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env.update({"PYTHONPATH": os.pathsep.join(python_path), "OMP_NUM_THREADS": "1", **(extra or {})})
    return env


def run_module(
    module: str,
    cwd: Path,
    config: dict[str, Any],
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    python: str = sys.executable,
    timeout_s: float = 300,
) -> Run:
    """``python [prefix] -m module --config-json CONFIG`` in ``cwd``."""
    cwd.mkdir(parents=True, exist_ok=True)
    argv = [python, *prefix, "-m", module, "--config-json", json.dumps(config)]
    result = subprocess.run(
        argv, cwd=cwd, env=job_env(env), capture_output=True, text=True, timeout=timeout_s, check=False
    )
    return Run(result.returncode, result.stdout, result.stderr, cwd)


def run_ok(module: str, cwd: Path, config: dict[str, Any], **kwargs: Any) -> Run:
    run = run_module(module, cwd, config, **kwargs)
    assert run.returncode == 0, run.stderr[-4000:]
    return run


def compliance(run: Run, usage: str, ruleset: str, workdir: Path) -> ComplianceReport:
    pytest.importorskip("mlperf_logging")
    workdir.mkdir(parents=True, exist_ok=True)
    return check_compliance(mllog_lines(run.stdout), usage, ruleset, workdir)


def finding_keys(report: ComplianceReport) -> list[str]:
    """A short name per checker finding: the failed rule's key."""
    keys = []
    for message in report.messages:
        if message.startswith("CHECK for '"):
            keys.append(message.split("'")[1])
        elif message.startswith("Failed checks for "):
            keys.append(message.split()[3])
        else:
            keys.append(message)
    return keys


# The metrics every training workload reports on a CPU, with unit and direction.
CPU_METRICS = {
    "throughput_sps": ("samples/s", True),
    "step_time_ms": ("ms", False),
    "data_wait_s": ("s", False),
    "data_wait_fraction": ("ratio", False),
    "steady_steps": ("steps", True),
    "epoch_time_s": ("s", False),
    "epochs": ("epochs", False),
    "time_to_train_s": ("s", False),
    "comm_time_s": ("s", False),
    "train_loss": ("", False),
    "peak_rss_mb": ("MiB", False),
    "model_tflops": ("TFLOP/s", True),
}
STAGING_METRICS = {"staging_time_s": ("s", False), "read_throughput_mbps": ("MB/s", True)}
