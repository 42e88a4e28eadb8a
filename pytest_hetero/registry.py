"""Name registries for the extension points: backends, launchers, accelerator kinds.

A registry maps a name to a class, given directly or as ``"module:Class"`` and
imported only when the name is used, so an optional dependency (submitit,
kubernetes) costs nothing until a platform needs it. A name whose import fails
is *unavailable*, with the reason and the install hint, not an import error at
start-up. Third-party plugins register their own names from the
``pytest_hetero_register`` hook (or at import time); the catalogue schema types
every ``kind`` as a plain string and the loader checks it here::

    $.platforms[2].backend.kind: unknown backend 'slurmm'; known: fake, kubernetes, local, slurm
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from pytest_hetero.errors import ConfigError, UnavailableError

__all__ = ["Entry", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    target: type[T] | str  # the class, or "module:Class" imported on first use
    install_hint: str = ""


class Registry(Generic[T]):
    """Names of one extension point (``what``: "backend", "launcher", ...) to their classes."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, target: type[T] | str, install_hint: str = "") -> None:
        """Register (or replace) ``name``; ``target`` is the class or ``"module:Class"``."""
        if not name or not isinstance(name, str):
            raise ConfigError(f"cannot register a {self.what} without a name")
        self._entries[name] = Entry(name, target, install_hint)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def unknown(self, name: object) -> str:
        """The message for a name nobody registered."""
        return f"unknown {self.what} {name!r}; known: {', '.join(self.names()) or '(none)'}"

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; :class:`UnavailableError` saying why not."""
        entry = self._entries.get(name)
        if entry is None:
            raise UnavailableError(self.unknown(name))
        if not isinstance(entry.target, str):
            return entry.target
        return self._import(entry, entry.target)

    def _import(self, entry: Entry[T], target: str) -> type[T]:
        module_name, _, class_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if exc.name == module_name:
                raise UnavailableError(f"{self.what} {entry.name!r} is not part of this installation ({exc})") from exc
            hint = f"; install it with: {entry.install_hint}" if entry.install_hint else ""
            raise UnavailableError(f"{self.what} {entry.name!r} is unavailable: {exc}{hint}") from exc
        try:
            cls: type[T] = getattr(module, class_name)
        except AttributeError:
            raise UnavailableError(f"{self.what} {entry.name!r}: {module_name} has no {class_name!r}") from None
        return cls
