"""Where a result came from: host, hardware, software versions, commit."""

from __future__ import annotations

import os
import platform as pyplatform
import socket
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest_hetero

__all__ = ["host_provenance"]


@cache
def host_provenance(rootdir: Path) -> dict[str, Any]:
    """Provenance of the pytest host (workloads add their own device facts)."""
    return {
        "host": socket.gethostname(),
        "os": f"{pyplatform.system()} {pyplatform.release()}",
        "machine": pyplatform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": pyplatform.python_version(),
        "packages": {name: _version(name) for name in ("pytest", "torch", "mlperf-logging")},
        "pytest_hetero": pytest_hetero.__version__,
        "git": _git(rootdir),
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


def _git(rootdir: Path) -> dict[str, Any] | None:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=rootdir, capture_output=True, text=True, timeout=5, check=True)
        return done.stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "-uno"))}
    except (OSError, subprocess.SubprocessError):
        return None
