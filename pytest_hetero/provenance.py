"""Where a result came from: host, hardware, software versions, commit."""

from __future__ import annotations

import os
import platform as pyplatform
import socket
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest_hetero
from pytest_hetero.pybench import commit_info

__all__ = ["host_provenance"]


@cache
def host_provenance() -> dict[str, Any]:
    """Provenance of the pytest host (workloads add their own device facts).

    Commit information comes from pytest-benchmark (``get_commit_info``); the
    session adds pytest-benchmark's machine information.
    """
    return {
        "host": socket.gethostname(),
        "os": f"{pyplatform.system()} {pyplatform.release()}",
        "machine": pyplatform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": pyplatform.python_version(),
        "packages": {name: _version(name) for name in ("pytest", "torch", "mlperf-logging")},
        "pytest_hetero": pytest_hetero.__version__,
        "git": _git(commit_info()),
    }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return pyplatform.processor() or "unknown"


def _git(info: dict[str, Any]) -> dict[str, Any] | None:
    if not info.get("id") or info.get("error"):
        return None
    return {"commit": info["id"], "dirty": bool(info.get("dirty")), "branch": info.get("branch")}
