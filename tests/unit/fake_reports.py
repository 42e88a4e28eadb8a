"""Realistic JSON reports for the history, comparison and CLI tests, valid against the shipped schema."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from pytest_hetero.check.statistics import summary_stats
from pytest_hetero.schemas import load_schema, schema_errors

HASH_A = "0123456789abcdef"
HASH_B = "fedcba9876543210"


def record(
    test: str = "test_resnet50",
    platform: str = "a100",
    metrics: dict[str, list[float]] | None = None,
    *,
    config_hash: str = HASH_A,
    unit: str = "samples/s",
    higher_is_better: bool = True,
    band: tuple[float | None, float | None] | None = None,
    outcome: str = "passed",
) -> dict[str, Any]:
    """One record; each metric is given by its samples (more than one: ``samples`` and ``stats`` too)."""
    metrics = metrics if metrics is not None else {"throughput_sps": [412.0]}
    return {
        "nodeid": f"benchmarks/test_bench.py::{test}[{platform}]",
        "test": test,
        "outcome": outcome,
        "platform": {
            "name": platform,
            "backend": "local",
            "launcher": "python",
            "accelerator": {"kind": "nvidia-gpu", "model": "A100-SXM4-80GB", "count_per_node": 4},
            "nodes": 1,
            "tags": ["gpu"],
            "source": "platforms.yaml",
        },
        "workload": {
            "name": "resnet50",
            "module": "pytest_hetero.workloads.resnet50",
            "command": [],
            "config": {"batch_size": 256, "train_steps": 100},
            "config_hash": config_hash,
            "reported": {},
        },
        "metrics": {name: _metric(name, values, unit, higher_is_better) for name, values in metrics.items()},
        "verdicts": [_verdict(name, statistics.median(v), band) for name, v in metrics.items() if band],
        "comparisons": [],
        "stage_timings_s": {"provision": 0.01, "launch": 0.02, "wait": 12.5, "collect": 0.01, "check": 0.0},
        "job": {
            "id": "local-1",
            "ids": ["local-1"],
            "state": "COMPLETED",
            "exit_code": 0,
            "argv": [],
            "env": {},
            "workdir": "/tmp",
            "logs": {},
        },
        "error": None,
        "started_at": "2026-05-01T10:00:00Z",
        "references_file": "benchmarks/references.yaml",
        "provenance": {},
    }


def _metric(name: str, values: list[float], unit: str, higher_is_better: bool) -> dict[str, Any]:
    metric: dict[str, Any] = {
        "name": name,
        "value": statistics.median(values),
        "unit": unit,
        "higher_is_better": higher_is_better,
    }
    if len(values) > 1:
        metric["samples"] = list(values)
        metric["stats"] = summary_stats(values)
    return metric


def _verdict(name: str, value: float, band: tuple[float | None, float | None]) -> dict[str, Any]:
    low, high = band
    inside = (low is None or value >= low) and (high is None or value <= high)
    return {
        "metric": name,
        "verdict": "pass" if inside else "fail",
        "value": value,
        "reference": {"value": 400.0, "lower": -0.1, "upper": None},
        "lower_bound": low,
        "upper_bound": high,
        "message": f"{name} = {value:.4g}",
    }


def report(
    records: list[dict[str, Any]],
    *,
    run_id: str = "20260501-100000-aaaaaa",
    created_at: str = "2026-05-01T10:05:00Z",
    commit: str = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
    exit_status: int = 0,
) -> dict[str, Any]:
    """A whole report, validated against ``report.schema.json``."""
    summary: dict[str, int] = {}
    for rec in records:
        summary[rec["outcome"]] = summary.get(rec["outcome"], 0) + 1
    document = {
        "schema_version": 1,
        "run_id": run_id,
        "created_at": created_at,
        "pytest_hetero_version": "0.1.0",
        "argv": ["pytest", "benchmarks/"],
        "exit_status": exit_status,
        "interrupted": False,
        "platforms": sorted({rec["platform"]["name"] for rec in records}),
        "summary": summary,
        "cancelled_jobs": [],
        "provenance": {
            "host": "ci-runner-1",
            "os": "Linux 6.1",
            "machine": "x86_64",
            "cpu_model": "AMD EPYC 7763",
            "python": "3.11.7",
            "packages": {"pytest": "9.2.0"},
            "pytest_hetero": "0.1.0",
            "git": {"commit": commit, "dirty": False},
        },
        "results": records,
    }
    assert schema_errors(document, load_schema("report")) == []
    return document


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2))
    return path
