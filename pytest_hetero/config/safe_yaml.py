"""Read YAML input files (catalogue, references) with bounded size, depth and expansion.

A hostile or broken file gives a :class:`ConfigError` naming the file (and the
line where known) quickly and in bounded memory, never a traceback:

- more than :data:`MAX_FILE_BYTES`: refused before it is read whole;
- not UTF-8 (UTF-16 with its byte-order mark, binary with NUL bytes, stray bytes): refused;
- nested deeper than :data:`MAX_DEPTH`: refused while composing (no RecursionError);
- aliases that expand to more than :data:`MAX_EXPANDED_NODES` values ("billion laughs"):
  refused before anything walks the expanded document;
- a key given twice in one mapping: refused with both lines (YAML says keys are unique;
  PyYAML would keep the last one silently).

:func:`non_finite_paths` finds ``.nan``/``.inf`` numbers, which JSON Schema's ``number`` admits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pytest_hetero.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_EXPANDED_NODES", "MAX_FILE_BYTES", "load_yaml", "non_finite_paths", "read_text"]

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_EXPANDED_NODES = 200_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOMS = {b"\xff\xfe": "UTF-16 (little-endian)", b"\xfe\xff": "UTF-16 (big-endian)"}


class _Refused(yaml.YAMLError):
    def __init__(self, problem: str, node: Node | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = node.start_mark if node is not None else None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a depth bound while composing and unique mapping keys."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", None)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            _check_unique_keys(node)
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


def _check_unique_keys(node: MappingNode) -> None:
    first: dict[str, Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
            continue
        earlier = first.setdefault(key_node.value, key_node)
        if earlier is not key_node:
            raise _Refused(
                f"duplicate key {key_node.value!r} (first given on line {earlier.start_mark.line + 1}); "
                "keys must be unique",
                key_node,
            )


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    """Values the document holds once every alias is expanded (shared nodes counted each time)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # a recursive alias counts once instead of looping
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = min(size, MAX_EXPANDED_NODES + 1)
    return memo[id(node)]


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
    text = read_text(path, what)
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            raise _Refused(f"expands to more than {MAX_EXPANDED_NODES} values (aliases)", node)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: {what}: not valid YAML: {problem}") from None
    except RecursionError:  # a bound above missed a path through PyYAML: still a clear error
        raise ConfigError(f"{path}: {what}: nested too deeply") from None
    finally:
        loader.dispose()


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
