"""``--hetero-update-references``: measured values written back into references.yaml, in place.

The file is edited as a round-trip YAML document (ruamel.yaml): comments,
key order, quoting, indentation and the number and null forms of everything
not touched stay as they were, so ``git diff`` shows only the lines whose
values changed. A value that rounds (4 significant digits) to what the file
already says is not touched, nor is a reference of value 0 (its bounds are
absolute: a limit, not a measurement). Tolerances, ``xfail``, ``host_bound``
and ``noise_floor`` are kept. An existing entry keeps its set of metrics
(the ones measured beside them are reported, not added); a new entry gets
every measured metric with 20 % on its bad side. For a host-bound platform
the entry records the fingerprint of this host.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.util import load_yaml_guess_indent

from pytest_hetero.check.references import HOST_KEY, ReferenceBook, load_references, read_text
from pytest_hetero.errors import ConfigError
from pytest_hetero.host_fingerprint import HostFingerprint
from pytest_hetero.metrics import Metric

__all__ = ["ReferenceUpdate", "UpdateSummary", "update_references"]

_NEW_FILE = "# Performance references; semantics: docs/references.md\nversion: 1\nreferences: {}\n"
#: The tolerance a new reference gets on its bad side.
_NEW_TOLERANCE = 0.2
_NULL, _BOOL = "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool"


@dataclass(frozen=True)
class ReferenceUpdate:
    """What one benchmark measured, to be written into the entry that applies to it."""

    test_key: str
    platform: str
    metrics: Mapping[str, Metric]
    host: HostFingerprint | None = None  # set for host-bound platforms


@dataclass
class UpdateSummary:
    changed: int = 0  # values and host fields written
    #: Measured metrics that existing entries have no reference for: "test on platform: a, b".
    not_added: list[str] = field(default_factory=list)


def update_references(path: Path, updates: Iterable[ReferenceUpdate]) -> UpdateSummary:
    """Apply ``updates`` to ``path`` in place (written only when something changed)."""
    book = load_references(path)  # the file as it is must be valid: nothing is written over a broken one
    text = read_text(path, "references") if path.exists() else _NEW_FILE
    yaml, doc = _load(path, text)
    if not doc["references"]:
        doc["references"] = CommentedMap()  # block style, not the flow of an empty '{}'
    summary = UpdateSummary()
    for update in updates:
        _apply(doc["references"], book, update, summary)
    if summary.changed:
        _write(path, yaml, doc)
    return summary


def _load(path: Path, text: str) -> tuple[YAML, Any]:
    try:
        _, indent, block_seq_indent = load_yaml_guess_indent(text)
    except YAMLError as exc:
        raise ConfigError(f"{path}: cannot edit the references: {exc}") from exc
    yaml = YAML()
    yaml.Constructor, yaml.Representer = _KeepingConstructor, _KeepingRepresenter
    yaml.preserve_quotes = True
    yaml.width = 1 << 16  # never re-wrap a long line
    yaml.indent(mapping=indent or 2, sequence=indent or 2, offset=block_seq_indent or 0)
    yaml.explicit_start = text.lstrip().startswith("---")
    return yaml, yaml.load(text)


def _write(path: Path, yaml: YAML, doc: Any) -> None:
    out = io.StringIO()
    yaml.dump(doc, out)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(out.getvalue())
        load_references(Path(tmp))  # what is written must read back as valid references
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _apply(references: Any, book: ReferenceBook, update: ReferenceUpdate, summary: UpdateSummary) -> None:
    key, pattern = book.locate(update.test_key, update.platform) or (update.test_key, update.platform)
    if key not in references:
        references[key] = CommentedMap()
    if pattern not in references[key]:
        references[key][pattern] = CommentedMap()
    section = references[key][pattern]
    old = book.entries.get(key, {}).get(pattern)
    known = dict(old.metrics) if old is not None else {}
    summary.changed += 0 if update.host is None else _set_host(section, update.host)
    measured = {name: metric for name, metric in update.metrics.items() if metric.value is not None}
    if known:  # a curated entry: its metrics only
        left_out = sorted(set(measured) - set(known))
        if left_out:
            summary.not_added.append(f"{update.test_key} on {update.platform}: {', '.join(left_out)}")
    for name, metric in measured.items():
        assert metric.value is not None
        value, current = _round(metric.value), known.get(name)
        if current is None and not known:
            section[name] = _new_reference(value, metric)
        elif current is None or current.value in (0, value):
            continue
        else:
            _set_value(section, name, value)
        summary.changed += 1


def _set_host(section: Any, host: HostFingerprint) -> int:
    wanted = host.as_dict()
    current = section.get(HOST_KEY)
    if not isinstance(current, dict):
        section.insert(0, HOST_KEY, _flow(wanted))
        return len(wanted)
    changed = 0
    for name, value in wanted.items():
        if _plain(current.get(name)) != value:
            current[name] = value
            changed += 1
    return changed


def _set_value(section: Any, name: str, value: float) -> None:
    entry = section[name]
    key = 0 if isinstance(entry, list) else "value"  # the short form is [value, lower, upper, unit]
    entry[key] = _number(value, as_int=isinstance(entry[key], int))


def _new_reference(value: float, metric: Metric) -> CommentedMap:
    lower, upper = (-_NEW_TOLERANCE, None) if metric.higher_is_better else (None, _NEW_TOLERANCE)
    return _flow({"value": _number(value), "lower": lower, "upper": upper, "unit": metric.unit})


def _flow(data: Mapping[str, Any]) -> CommentedMap:
    mapping = CommentedMap(data)
    mapping.fa.set_flow_style()
    return mapping


def _round(value: float) -> float:
    return float(f"{value:.4g}")


# --- keeping the written form of scalars ----------------------------------------------------------------------


class _Kept:
    """A scalar written back exactly as it was read (``~``, ``Null``, ``True``) or as chosen (a number)."""

    def __init__(self, tag: str, text: str) -> None:
        self.tag, self.text = tag, text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Kept) and (self.tag, self.text) == (other.tag, other.text)

    def __hash__(self) -> int:
        return hash((self.tag, self.text))


def _number(value: float, as_int: bool = False) -> _Kept:
    """The form PyYAML (YAML 1.1, which reads the file) and ruamel both read as this number;
    ``as_int``: written as an integer when it is one (the value it replaces was written so)."""
    if as_int and value.is_integer():
        return _Kept("tag:yaml.org,2002:int", str(int(value)))
    text = repr(value)
    mantissa, exp, rest = text.partition("e")
    if exp and "." not in mantissa:
        text = f"{mantissa}.0e{rest}"  # '1e-05' is a string to YAML 1.1
    return _Kept("tag:yaml.org,2002:float", text)


def _plain(value: Any) -> Any:
    if isinstance(value, _Kept):
        return None if value.tag == _NULL else value.text
    return value


class _KeepingConstructor(RoundTripConstructor):
    def construct_kept_null(self, node: ScalarNode) -> _Kept:
        return _Kept(_NULL, str(node.value))

    def construct_kept_bool(self, node: ScalarNode) -> _Kept:
        return _Kept(_BOOL, str(node.value))


class _KeepingRepresenter(RoundTripRepresenter):
    def represent_kept(self, data: _Kept) -> ScalarNode:
        return self.represent_scalar(data.tag, data.text)


_KeepingConstructor.add_constructor(_NULL, _KeepingConstructor.construct_kept_null)
_KeepingConstructor.add_constructor(_BOOL, _KeepingConstructor.construct_kept_bool)
_KeepingRepresenter.add_representer(_Kept, _KeepingRepresenter.represent_kept)
