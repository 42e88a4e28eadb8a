"""JSON Schemas shipped as package data, and validation with JSON paths."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

__all__ = ["load_schema", "schema_errors"]


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema ``<name>.schema.json`` (``platforms``, ``references``, ``report``)."""
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_errors(instance: object, schema: Mapping[str, Any], prefix: str = "$") -> list[str]:
    """All validation errors as ``<json path>: <message>``, sorted by path."""
    import jsonschema  # about 15 ms with its dependencies: only runs that validate something pay it

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    return [_describe(_deepest(e), prefix) for e in errors]


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For oneOf/anyOf, the alternative that got furthest: its error names the real problem."""
    if not error.context:
        return error
    # A branch that failed only on its top-level type is the wrong branch, not the problem.
    candidates = [e for e in error.context if e.validator != "type" or e.absolute_path != error.absolute_path]
    return _deepest(max(candidates or error.context, key=lambda e: len(e.absolute_path)))


def _describe(error: jsonschema.ValidationError, prefix: str) -> str:
    return f"{prefix}{error.json_path[1:]}: {error.message}"
