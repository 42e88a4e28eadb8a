"""Backend registry: names to classes, imported lazily.

A backend whose optional dependency is missing is reported as unavailable
with the reason and the install hint, instead of failing at import time.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from pytest_hetero.backends.base import Backend
from pytest_hetero.errors import BackendUnavailableError

__all__ = ["BackendEntry", "get_backend_class", "known_backends", "register_backend"]


@dataclass(frozen=True)
class BackendEntry:
    name: str
    target: str  # "module:Class"
    install_hint: str = ""


_REGISTRY: dict[str, BackendEntry] = {}


def register_backend(name: str, target: str, install_hint: str = "") -> None:
    """Register (or replace) a backend under ``name``; ``target`` is ``module:Class``."""
    _REGISTRY[name] = BackendEntry(name, target, install_hint)


def known_backends() -> list[str]:
    return sorted(_REGISTRY)


def get_backend_class(name: str) -> type[Backend]:
    """Import and return the backend class, or explain why it is unavailable."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise BackendUnavailableError(
            f"backend {name!r} is not available in this version of pytest-hetero "
            f"(available: {', '.join(known_backends())})"
        )
    module_name, _, class_name = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name == module_name:
            raise BackendUnavailableError(f"backend {name!r} is not part of this installation ({exc})") from exc
        hint = f"; install it with: {entry.install_hint}" if entry.install_hint else ""
        raise BackendUnavailableError(f"backend {name!r} is unavailable: {exc}{hint}") from exc
    cls: type[Backend] = getattr(module, class_name)
    return cls


register_backend("local", "pytest_hetero.backends.local:LocalBackend")
register_backend("fake", "pytest_hetero.backends.fake:FakeBackend")
register_backend("slurm", "pytest_hetero.backends.slurm:SlurmBackend", "pip install 'pytest-hetero[slurm]'")
register_backend(
    "kubernetes", "pytest_hetero.backends.kubernetes:KubernetesBackend", "pip install 'pytest-hetero[kubernetes]'"
)
