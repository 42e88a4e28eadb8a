"""What a benchmark test declares it runs: a :class:`Workload`."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pytest_hetero.errors import ConfigError
from pytest_hetero.workloads import BUILTIN

__all__ = ["Workload", "canonical_json"]


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no spaces: the input of every config hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Workload:
    """A program to benchmark: a Python module (``python -m``) or a command.

    ``config`` is handed to the program as ``--config-json`` (modules) and in
    the ``HETERO_WORKLOAD_CONFIG`` environment variable (both kinds).
    """

    name: str
    module: str | None = None
    command: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if bool(self.module) == bool(self.command):
            raise ConfigError(f"workload {self.name!r}: give exactly one of module= or command=")

    @classmethod
    def builtin(cls, name: str, config: Mapping[str, Any] | None = None) -> Workload:
        try:
            module = BUILTIN[name]
        except KeyError:
            known = ", ".join(sorted(BUILTIN))
            raise ConfigError(f"unknown workload {name!r}; built-in workloads: {known}") from None
        return cls(name=name, module=module, config=MappingProxyType(dict(config or {})))

    @property
    def config_json(self) -> str:
        return canonical_json(dict(self.config))

    @functools.cached_property
    def config_hash(self) -> str:
        """Short SHA-256 over how the program is called (module or argv) and its config (computed once).

        Not its code: :func:`pytest_hetero.fingerprint.fingerprints` adds that.
        """
        identity = {"module": self.module, "command": list(self.command), "config": dict(self.config)}
        return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]

    @property
    def seed(self) -> int | None:
        """The config's ``seed`` (the first repeat's; the others derive theirs from it), if it names one."""
        value = self.config.get("seed")
        return value if isinstance(value, int) and not isinstance(value, bool) else None
