"""Read YAML input files (catalogue, references) with bounded size, depth and expansion.

A hostile or broken file gives a :class:`ConfigError` naming the file (and the
line where known) quickly and in bounded memory, never a traceback:

- more than :data:`MAX_FILE_BYTES`: refused before it is read whole;
- not UTF-8 (UTF-16 with its byte-order mark, binary with NUL bytes, stray bytes): refused;
- nested deeper than :data:`~.yaml_bounded.MAX_DEPTH`: refused while composing (no RecursionError);
- aliases that expand to more than :data:`~.yaml_bounded.MAX_EXPANDED_NODES` values ("billion laughs"):
  refused before anything walks the expanded document;
- a key given twice in one mapping: refused with both lines (YAML says keys are unique;
  PyYAML would keep the last one silently).

The parsing itself (PyYAML, about 7 ms to import) is in :mod:`.yaml_bounded`, loaded with the first file.

:func:`non_finite_paths` finds ``.nan``/``.inf`` numbers, which JSON Schema's ``number`` admits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_hetero.errors import ConfigError

__all__ = ["MAX_FILE_BYTES", "load_yaml", "non_finite_paths", "read_text"]

MAX_FILE_BYTES = 16 * 1024 * 1024
_BOMS = {b"\xff\xfe": "UTF-16 (little-endian)", b"\xfe\xff": "UTF-16 (big-endian)"}


def read_text(path: Path, what: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A file's text, strictly UTF-8; anything else is a :class:`ConfigError` naming the file."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    if len(raw) > max_bytes:
        raise ConfigError(f"{path}: {what}: larger than {max_bytes // (1024 * 1024)} MiB; not read")
    for bom, encoding in _BOMS.items():
        if raw.startswith(bom):
            raise ConfigError(f"{path}: {what} must be UTF-8 text, not {encoding}; save the file as UTF-8")
    if b"\x00" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
        raise ConfigError(f"{path}:{line}: {what} must be UTF-8 text: this is a binary file (NUL byte)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: {what} must be UTF-8 text: byte 0x{raw[exc.start]:02x} (offset {exc.start}) is not; "
            "save the file as UTF-8"
        ) from None


def load_yaml(path: Path, what: str) -> Any:
    """Parse one YAML document within the bounds above; problems name the file, line and column."""
    from pytest_hetero.config.yaml_bounded import parse_bounded

    return parse_bounded(read_text(path, what), path, what)


def non_finite_paths(data: object, path: str = "$") -> Iterator[str]:
    """JSON paths of NaN and infinite numbers in already-bounded data."""
    if isinstance(data, float) and not math.isfinite(data):
        yield f"{path}: {data} is not a finite number"
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from non_finite_paths(value, f"{path}.{key}" if _plain(key) else f"{path}[{key!r}]")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from non_finite_paths(value, f"{path}[{index}]")


def _plain(key: object) -> bool:
    return isinstance(key, str) and key.isidentifier()
