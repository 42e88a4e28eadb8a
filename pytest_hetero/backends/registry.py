"""Backend registry: names to classes, imported lazily (see :mod:`pytest_hetero.registry`).

A backend whose optional dependency is missing is reported as unavailable
with the reason and the install hint, instead of failing at import time.
Third-party backends register here, from the ``pytest_hetero_register`` hook
or at import time; a catalogue may then name them as ``backend.kind``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_hetero.registry import Registry

if TYPE_CHECKING:
    from pytest_hetero.backends.base import Backend

__all__ = ["BACKENDS", "get_backend_class", "known_backends", "register_backend"]

BACKENDS: Registry[Backend] = Registry("backend")


def register_backend(name: str, target: type[Backend] | str, install_hint: str = "") -> None:
    """Register (or replace) a backend under ``name``; ``target`` is the class or ``module:Class``."""
    BACKENDS.register(name, target, install_hint)


def known_backends() -> list[str]:
    return BACKENDS.names()


def get_backend_class(name: str) -> type[Backend]:
    """Import and return the backend class, or explain why it is unavailable."""
    return BACKENDS.get(name)


register_backend("local", "pytest_hetero.backends.local:LocalBackend")
register_backend("fake", "pytest_hetero.backends.fake:FakeBackend")
register_backend("slurm", "pytest_hetero.backends.slurm:SlurmBackend", "pip install 'pytest-hetero[slurm]'")
register_backend(
    "kubernetes", "pytest_hetero.backends.kubernetes:KubernetesBackend", "pip install 'pytest-hetero[kubernetes]'"
)
