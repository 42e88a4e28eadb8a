"""Load and validate platforms.yaml against the shipped JSON Schema.

Every problem is reported at once, each with the file and the JSON path of
the bad field (``platforms.yaml: $.platforms[1].backend.kind: unknown backend
'slurmm'; known: fake, kubernetes, local, slurm``). The schema types every
``kind`` as a string; the registries decide which names exist (plugins add
theirs), and each backend and launcher checks its own ``options``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_hetero.accelerators import known_accelerator_kinds, unknown_accelerator_kind
from pytest_hetero.backends.registry import BACKENDS
from pytest_hetero.config.models import (
    Accelerator,
    BackendConfig,
    Catalogue,
    Environment,
    LauncherConfig,
    Platform,
    ResourceGroup,
    Resources,
)
from pytest_hetero.config.safe_yaml import load_yaml, non_finite_paths
from pytest_hetero.errors import ConfigError, UnavailableError
from pytest_hetero.launchers import LAUNCHERS
from pytest_hetero.redact import register_secret
from pytest_hetero.registry import Registry
from pytest_hetero.schemas import load_schema, schema_errors

__all__ = [
    "builtin_catalogue",
    "load_catalogue",
    "parse_catalogue",
]


def builtin_catalogue() -> Catalogue:
    """The default catalogue: one ``local`` CPU platform on this host."""
    local = Platform(
        name="local",
        description="This host's CPUs, workload run as a local process",
        accelerator=Accelerator(kind="cpu", model="host"),
        backend=BackendConfig(kind="local"),
        tags=("cpu", "local"),
    )
    return Catalogue(platforms=(local,), source="<built-in>")


def load_catalogue(path: Path) -> Catalogue:
    """Read, validate and build the catalogue in ``path``; raise :class:`ConfigError`."""
    return parse_catalogue(load_yaml(path, "platform catalogue"), source=str(path))


def parse_catalogue(data: object, source: str) -> Catalogue:
    """Validate already-parsed data and build the frozen models."""
    problems = schema_errors(data, load_schema("platforms")) + list(non_finite_paths(data))
    entries = data.get("platforms") if isinstance(data, dict) else None
    if isinstance(entries, list):  # every problem at once, even next to schema errors
        problems += [p for p in _semantic_problems(entries) if p not in problems]
        problems.sort(key=lambda problem: _document_order(problem, entries))
    _raise_if_any(problems, source)
    assert isinstance(data, dict)
    platforms = tuple(_platform(entry, source) for entry in data["platforms"])
    _raise_if_any(list(_launcher_problems(platforms)), source)  # needs the built platform: its allocation
    return Catalogue(platforms=platforms, source=source)


def _raise_if_any(problems: list[str], source: str) -> None:
    if problems:
        listing = "\n  ".join(problems)
        raise ConfigError(f"{source}: invalid platform catalogue ({len(problems)} problem(s)):\n  {listing}")


def _launcher_problems(platforms: Iterable[Platform]) -> Iterable[str]:
    """The launchers' own rules on their options against the platform's allocation (poprun's shapes)."""
    for index, platform in enumerate(platforms):
        try:
            launcher = LAUNCHERS.get(platform.launcher.kind)(platform)
        except UnavailableError:
            continue  # reported when the platform is selected
        yield from (f"$.platforms[{index}].launcher.options: {p}" for p in launcher.problems())


_ENTRY_FIELD = re.compile(r"^\$\.platforms\[(\d+)\](?:\.(\w+))?")


def _document_order(problem: str, entries: list[Any]) -> tuple[int, int]:
    """Problems in the order of the file: by platform, then by field as written."""
    match = _ENTRY_FIELD.match(problem)
    if match is None:
        return (-1, 0)
    index, key = int(match.group(1)), match.group(2)
    entry = entries[index] if index < len(entries) else None
    fields = list(entry) if isinstance(entry, dict) else []
    return (index, fields.index(key) if key in fields else -1)


def _semantic_problems(entries: list[Any]) -> Iterable[str]:
    """Checks the schema cannot express: unique names, backend and launcher options.

    Entries may still be malformed here (their schema errors are reported too): skip what is unreadable.
    """
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        name = entry.get("name")
        if isinstance(name, str) and name in seen:
            yield f"$.platforms[{index}].name: {name!r} is already used by $.platforms[{seen[name]}]"
        if isinstance(name, str):
            seen.setdefault(name, index)
        where = f"$.platforms[{index}]"
        yield from _accelerator_problems(entry.get("accelerator"), f"{where}.accelerator.kind")
        yield from _backend_problems(entry.get("backend"), f"{where}.backend")
        yield from _extension_problems(LAUNCHERS, entry.get("launcher"), f"{where}.launcher")


def _accelerator_problems(section: object, path: str) -> list[str]:
    kind = section.get("kind") if isinstance(section, dict) else None
    if not isinstance(kind, str) or kind in known_accelerator_kinds():
        return []
    return [f"{path}: {unknown_accelerator_kind(kind)}"]


def _extension_problems(registry: Registry[Any], section: object, path: str) -> list[str]:
    """A backend/launcher section: a registered kind, and options its class accepts."""
    if not isinstance(section, dict) or not isinstance(section.get("kind"), str):
        return []  # the schema reports it
    kind = section["kind"]
    if kind not in registry:
        return [f"{path}.kind: {registry.unknown(kind)}"]
    try:
        cls = registry.get(kind)
    except UnavailableError:
        return []  # reported when the platform is selected, not for every catalogue user
    return schema_errors(section.get("options", {}), cls.options_schema, prefix=f"{path}.options")


def _backend_problems(section: object, path: str) -> list[str]:
    """A backend section: the checks of every extension, then the backend's own reading of its options."""
    problems = _extension_problems(BACKENDS, section, path)
    if problems or not isinstance(section, dict) or section.get("kind") not in BACKENDS:
        return problems
    try:
        BACKENDS.get(section["kind"]).parse_options(section.get("options", {}))
    except UnavailableError:
        return []  # as above: reported when the platform is selected
    except ConfigError as exc:
        found = str(exc).split("; ")
        if all(p.startswith("backend.options") for p in found):  # already with their paths
            return [path + p.removeprefix("backend") for p in found]
        return [f"{path}.options: {exc}"]
    return []


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


def _platform(entry: dict[str, Any], source: str) -> Platform:
    acc = entry["accelerator"]
    env = entry.get("environment", {})
    return Platform(
        name=entry["name"],
        description=entry.get("description", ""),
        accelerator=Accelerator(
            kind=acc["kind"],
            model=acc.get("model", ""),
            count_per_node=acc.get("count_per_node", 1),
            memory_gb=acc.get("memory_gb"),
            peak_tflops=_frozen(acc.get("peak_tflops")),
        ),
        backend=BackendConfig(kind=entry["backend"]["kind"], options=_frozen(entry["backend"].get("options"))),
        launcher=LauncherConfig(**_with_frozen_options(entry.get("launcher", {}))),
        resources=Resources(**entry.get("resources", {})),
        environment=_environment(env),
        data_roots=_frozen(entry.get("data_roots")),
        tags=tuple(entry.get("tags", ())),
        max_jobs=entry.get("max_jobs", 1),
        resource_group=_resource_group(entry.get("resource_group")),
        source=source,
    )


def _environment(section: dict[str, Any]) -> Environment:
    """Plain values, values marked secret, and ``from_env`` references read from this process's environment.

    Every secret value is registered with :mod:`pytest_hetero.redact`, which masks it in every output.
    """
    values: dict[str, str] = {}
    secrets: set[str] = set()
    missing: dict[str, str] = {}
    for name, raw in (section.get("env") or {}).items():
        if isinstance(raw, str):
            values[name] = raw
            continue
        if "from_env" in raw and raw["from_env"] not in os.environ:
            missing[name] = raw["from_env"]
            continue
        values[name] = os.environ[raw["from_env"]] if "from_env" in raw else raw["value"]
        if raw.get("secret", "from_env" in raw):
            secrets.add(name)
            register_secret(values[name])
    return Environment(
        env=_frozen(values),
        secrets=frozenset(secrets),
        missing=_frozen(missing),
        container_image=section.get("container_image"),
        python=section.get("python"),
        venv=section.get("venv"),
        setup=tuple(section.get("setup", ())),
    )


def _resource_group(section: str | dict[str, Any] | None) -> ResourceGroup | None:
    """``NAME`` or ``{name: NAME, max_jobs: N}``; absent: the backend's default."""
    if section is None:
        return None
    if isinstance(section, str):
        return ResourceGroup(name=section)
    return ResourceGroup(name=section["name"], max_jobs=section.get("max_jobs", 1))


def _with_frozen_options(section: dict[str, Any]) -> dict[str, Any]:
    return {**section, "options": _frozen(section.get("options"))} if section else {}
