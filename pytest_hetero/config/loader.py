"""Load and validate platforms.yaml against the shipped JSON Schema.

Every problem is reported at once, each with the file and the JSON path of
the bad field (``platforms.yaml: $.platforms[1].backend.kind: 'slurmm' is
not one of [...]``). Backend options are checked by the backend's own schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from pytest_hetero.config.models import (
    Accelerator,
    BackendConfig,
    Catalogue,
    Environment,
    LauncherConfig,
    Platform,
    Resources,
)
from pytest_hetero.errors import BackendUnavailableError, ConfigError
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
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the platform catalogue: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from exc
    return parse_catalogue(data, source=str(path))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else str(problem)


def parse_catalogue(data: object, source: str) -> Catalogue:
    """Validate already-parsed data and build the frozen models."""
    problems = schema_errors(data, load_schema("platforms"))
    entries = data.get("platforms") if isinstance(data, dict) else None
    if isinstance(entries, list):  # every problem at once, even next to schema errors
        problems += [p for p in _semantic_problems(entries) if p not in problems]
    if problems:
        listing = "\n  ".join(problems)
        raise ConfigError(f"{source}: invalid platform catalogue ({len(problems)} problem(s)):\n  {listing}")
    assert isinstance(data, dict)
    platforms = tuple(_platform(entry, source) for entry in data["platforms"])
    return Catalogue(platforms=platforms, source=source)


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
        yield from _backend_option_problems(entry.get("backend"), f"$.platforms[{index}].backend.options")
        yield from _launcher_option_problems(entry.get("launcher"), f"$.platforms[{index}].launcher.options")


def _options(section: object) -> tuple[str, object] | None:
    """(kind, options) of a backend/launcher section that is readable enough to check."""
    if not isinstance(section, dict) or not isinstance(section.get("kind"), str):
        return None
    return section["kind"], section.get("options", {})


def _backend_option_problems(backend: object, path: str) -> list[str]:
    from pytest_hetero.backends.registry import get_backend_class

    found = _options(backend)
    if found is None:
        return []
    try:
        cls = get_backend_class(found[0])
    except BackendUnavailableError:
        return []  # reported when the platform is selected, not for every catalogue user
    return schema_errors(found[1], cls.options_schema, prefix=path)


def _launcher_option_problems(launcher: object, path: str) -> list[str]:
    from pytest_hetero.launchers import launcher_option_schema

    found = _options(launcher)
    schema = launcher_option_schema(found[0]) if found else None
    return schema_errors(found[1], schema, prefix=path) if found and schema else []


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
        environment=Environment(
            env=_frozen(env.get("env")),
            container_image=env.get("container_image"),
            python=env.get("python"),
            venv=env.get("venv"),
            setup=tuple(env.get("setup", ())),
        ),
        data_roots=_frozen(entry.get("data_roots")),
        tags=tuple(entry.get("tags", ())),
        max_jobs=entry.get("max_jobs", 1),
        source=source,
    )


def _with_frozen_options(section: dict[str, Any]) -> dict[str, Any]:
    return {**section, "options": _frozen(section.get("options"))} if section else {}
