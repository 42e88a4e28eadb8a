from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.config.loader import load_catalogue, parse_catalogue
from pytest_hetero.errors import ConfigError, UnknownPlatformError
from pytest_hetero.selection import select_platforms

REPO = Path(__file__).resolve().parents[2]


def _one(**overrides: object) -> dict[str, Any]:
    platform = {"name": "x", "accelerator": {"kind": "cpu"}, "backend": {"kind": "local"}, **overrides}
    return {"version": 1, "platforms": [platform]}


def test_repository_catalogue_is_valid() -> None:
    catalogue = load_catalogue(REPO / "platforms.yaml")
    assert catalogue.platforms, "the example catalogue must not be empty"


def test_models_are_built_with_defaults() -> None:
    platform = parse_catalogue(
        _one(resources={"nodes": 2}, accelerator={"kind": "nvidia-gpu", "count_per_node": 4}), "f"
    ).platforms[0]
    assert platform.total_accelerators == 8
    assert platform.launcher.kind == "python"
    assert platform.time_limit_s == 3600.0


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            {"backend": {"kind": "local", "options": {"grace": 1}}},
            "$.platforms[0].backend.options: Additional properties are not allowed ('grace' was unexpected)",
        ),
        (
            {"launcher": {"kind": "torchrun", "options": {"nproc_per_node": 0}}},
            "$.platforms[0].launcher.options.nproc_per_node: 0 is less than the minimum of 1",
        ),
        ({"colour": "red"}, "$.platforms[0]: Additional properties are not allowed ('colour' was unexpected)"),
        ({"environment": {"env": {"A": 1}}}, "$.platforms[0].environment.env.A: 1 is not of type 'string'"),
    ],
)
def test_problems_carry_the_json_path(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_catalogue(_one(**overrides), "platforms.yaml")
    assert problem in str(info.value)
    assert str(info.value).startswith("platforms.yaml: invalid platform catalogue")


def test_duplicate_names() -> None:
    data = _one()
    data["platforms"].append(dict(data["platforms"][0]))
    with pytest.raises(ConfigError, match=r"\$.platforms\[1\].name: 'x' is already used by \$.platforms\[0\]"):
        parse_catalogue(data, "f")


def test_not_a_mapping_at_all() -> None:
    with pytest.raises(ConfigError, match=r"\$: \['a'\] is not of type 'object'"):
        parse_catalogue(["a"], "f")


def test_selection_by_name_glob_and_unknown() -> None:
    data = _one()
    data["platforms"] += [
        {"name": "a100-40", "accelerator": {"kind": "nvidia-gpu"}, "backend": {"kind": "local"}},
        {"name": "a100-80", "accelerator": {"kind": "nvidia-gpu"}, "backend": {"kind": "local"}},
    ]
    catalogue = parse_catalogue(data, "f")
    assert [p.name for p in select_platforms(catalogue, ["a100-*"])] == ["a100-40", "a100-80"]
    assert [p.name for p in select_platforms(catalogue, ["x", "a100-80"])] == ["x", "a100-80"]
    with pytest.raises(UnknownPlatformError, match="known platforms: x, a100-40, a100-80"):
        select_platforms(catalogue, ["h100"])
