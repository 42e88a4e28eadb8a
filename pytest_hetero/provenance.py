"""Where a result came from: host, hardware, software versions, commit."""

from __future__ import annotations

import os
import platform as pyplatform
import socket
from functools import cache
from importlib import metadata
from typing import Any

import pytest_hetero
from pytest_hetero.host_fingerprint import cpu_model, host_fingerprint
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
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": pyplatform.python_version(),
        "packages": {name: _version(name) for name in ("pytest", "torch", "mlperf-logging")},
        "pytest_hetero": pytest_hetero.__version__,
        "git": _git(commit_info()),
        # What references of host-bound platforms are keyed by (docs/references.md).
        "host_fingerprint": host_fingerprint().as_dict(),
    }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git(info: dict[str, Any]) -> dict[str, Any] | None:
    if not info.get("id") or info.get("error"):
        return None
    return {"commit": info["id"], "dirty": bool(info.get("dirty")), "branch": info.get("branch")}
