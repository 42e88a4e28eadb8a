"""What makes a host's speed figures comparable: CPU model, core count, memory, torch build.

References of host-bound platforms (the local backend: jobs run on the pytest
host) record the fingerprint of the host they were measured on; on another
host their speed bands do not apply (see :mod:`pytest_hetero.check.references`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["HostFingerprint", "cpu_model", "host_fingerprint"]

#: Memory sizes this close count as the same (VMs of one kind report a little more or less).
_MEMORY_TOLERANCE = 0.1


@dataclass(frozen=True)
class HostFingerprint:
    cpu_model: str
    cpu_count: int
    memory_gib: int
    torch: str | None = None  # version with its build tag, e.g. 2.13.0+cpu

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> HostFingerprint:
        """From a references file's ``host:`` entry (already checked against the schema)."""
        torch = data.get("torch")
        return cls(str(data["cpu_model"]), int(data["cpu_count"]), int(data["memory_gib"]), torch and str(torch))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def differences(self, here: HostFingerprint) -> list[str]:
        """What differs between this (where a reference was measured) and ``here``; empty: the same host kind."""
        found = []
        for name in ("cpu_model", "cpu_count", "torch"):
            there_value, here_value = getattr(self, name), getattr(here, name)
            if there_value != here_value:
                found.append(f"{name} {there_value!r} there, {here_value!r} here")
        if not _similar(self.memory_gib, here.memory_gib):
            found.append(f"memory_gib {self.memory_gib} there, {here.memory_gib} here")
        return found


def _similar(a: int, b: int) -> bool:
    return abs(a - b) <= max(1.0, _MEMORY_TOLERANCE * max(a, b))


@cache
def host_fingerprint() -> HostFingerprint:
    """This host's fingerprint (cached: it does not change during a run)."""
    return HostFingerprint(cpu_model(), _cpu_count(), _memory_gib(), _torch_build())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform  # where /proc/cpuinfo says nothing: rare, and the module costs a few regexes to load

    return platform.processor() or "unknown"


def _cpu_count() -> int:
    # The CPUs this process may run on (a container's cpuset), which is what a local job gets.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _memory_gib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (OSError, ValueError, AttributeError):
        return 0


def _torch_build() -> str | None:
    # The distribution's version carries the build tag of wheels from the PyTorch index (+cpu, +cu121);
    # reading it does not import torch.
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None
