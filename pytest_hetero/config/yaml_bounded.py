"""PyYAML's safe loader within bounds: depth, alias expansion, unique keys (used by :mod:`.safe_yaml`).

Imported with the first YAML file a run reads: a run that reads none (the built-in
catalogue, no references) does not load PyYAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pytest_hetero.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_EXPANDED_NODES", "parse_bounded"]

MAX_DEPTH = 64
MAX_EXPANDED_NODES = 200_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


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


def parse_bounded(text: str, path: Path, what: str) -> Any:
    """Parse one YAML document of ``path`` within the bounds; problems name the file, line and column."""
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
