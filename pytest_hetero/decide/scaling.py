"""Scaling sweeps: ``@pytest.mark.hetero(scale={"nodes": [1, 2]})`` runs a benchmark at each count per platform.

The count is a resource of the platform (``nodes``, or ``accelerators_per_node``),
so each case runs on the catalogue's platform with that one resource replaced:
the same name (its references and history series are told apart by the case
id, ``[<platform>-nodes2]``), its own backend and launch context. A count the
platform cannot give (several nodes on a backend that cannot span nodes) is
skipped with the reason. ``pytest-hetero rank`` turns the cases into speed-up
and parallel efficiency.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_hetero.config.models import Platform
from pytest_hetero.errors import ConfigError

__all__ = ["SCALE_RESOURCES", "Scale", "case_id", "read_scale", "scaled_key", "scaled_platform", "unscaled_key"]

#: What a sweep may vary, and how a case id spells it.
SCALE_RESOURCES = {"nodes": "nodes", "accelerators_per_node": "acc"}


@dataclass(frozen=True)
class Scale:
    resource: str  # a key of SCALE_RESOURCES
    counts: tuple[int, ...]

    def case_id(self, platform: str, count: int) -> str:
        return case_id(platform, self.resource, count)


def case_id(platform: str, resource: str, count: int) -> str:
    """The pytest id of one count: ``cpu-slurm-nodes2``."""
    return f"{platform}-{_token(resource, count)}"


def _token(resource: str, count: int) -> str:
    return f"{SCALE_RESOURCES[resource]}{count}"


def scaled_key(key: str, resource: str, count: int) -> str:
    """The case key (references, history) of one count: ``file.py::test[nodes2]``, ``file.py::test[4-nodes2]``."""
    token = _token(resource, count)
    return f"{key[:-1]}-{token}]" if key.endswith("]") else f"{key}[{token}]"


_TOKEN = re.compile(r"(?:^|-)(?:" + "|".join(SCALE_RESOURCES.values()) + r")\d+$")


def unscaled_key(key: str) -> str:
    """The benchmark a sweep's case belongs to: :func:`scaled_key` undone (other keys unchanged)."""
    if not key.endswith("]") or "[" not in key:
        return key
    base, params = key[:-1].split("[", 1)
    params = _TOKEN.sub("", params)
    return f"{base}[{params}]" if params else base


def read_scale(value: Any, where: str) -> Scale | None:
    """The marker's ``scale=`` argument, validated; None when absent."""
    if value is None:
        return None
    usage = f"{where}: @pytest.mark.hetero scale= must be one of {sorted(SCALE_RESOURCES)} -> a list of counts"
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ConfigError(f"{usage}, e.g. scale={{'nodes': [1, 2]}}")
    ((resource, counts),) = value.items()
    if resource not in SCALE_RESOURCES:
        raise ConfigError(f"{usage}; got {resource!r}")
    valid = isinstance(counts, (list, tuple)) and counts
    if not valid or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in counts):
        raise ConfigError(f"{where}: @pytest.mark.hetero scale={{{resource!r}: ...}} needs counts >= 1, got {counts!r}")
    if len(set(counts)) != len(counts):
        raise ConfigError(f"{where}: @pytest.mark.hetero scale={{{resource!r}: ...}} repeats a count: {counts!r}")
    return Scale(resource, tuple(counts))


def scaled_platform(platform: Platform, resource: str, count: int) -> Platform:
    """``platform`` with one resource replaced (same name: one platform, several shapes)."""
    resources = dataclasses.replace(platform.resources, **{resource: count})
    return dataclasses.replace(platform, resources=resources)
