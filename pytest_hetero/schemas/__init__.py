"""JSON Schemas shipped as package data, and validation with JSON paths."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

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
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{prefix}{e.json_path[1:]}: {_message(e)}" for e in errors]


def _message(error: jsonschema.ValidationError) -> str:
    # oneOf failures say only "is not valid under any of the given schemas"; show why.
    if error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return f"{error.message}; closest: {best.message}"
    return error.message
