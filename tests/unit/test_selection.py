"""--platform selectors: names, globs, tags, accelerator kinds, suggestions."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_hetero.config.loader import builtin_catalogue, load_catalogue
from pytest_hetero.config.models import Catalogue
from pytest_hetero.errors import UnknownPlatformError
from pytest_hetero.selection import select_platforms

CENTRE = Path(__file__).resolve().parents[2] / "platforms.example-centre.yaml"


@pytest.fixture(scope="module")
def centre() -> Catalogue:
    loaded = load_catalogue(CENTRE)
    return Catalogue(platforms=loaded.platforms + builtin_catalogue().platforms, source=loaded.source)


def _names(catalogue: Catalogue, *selectors: str) -> list[str]:
    return [p.name for p in select_platforms(catalogue, selectors)]


def test_the_accelerator_kind_selects_every_platform_of_that_kind(centre: Catalogue) -> None:
    assert _names(centre, "cerebras") == ["cerebras-cs2"]
    assert _names(centre, "nvidia-gpu") == ["a100-k8s-1gpu", "a100-k8s-8gpu"]
    assert _names(centre, "kind:cpu") == ["cpu-rome-slurm"]  # the built-in 'local' only by name


def test_names_and_globs_come_before_tags_and_kinds(centre: Catalogue) -> None:
    assert _names(centre, "a100-*", "cerebras-cs2") == ["a100-k8s-1gpu", "a100-k8s-8gpu", "cerebras-cs2"]
    assert _names(centre, "local") == ["local"]


def test_a_bare_tag_and_an_explicit_one(centre: Catalogue) -> None:
    assert _names(centre, "slurm") == ["mi250x-slurm-2node", "cerebras-cs2", "cpu-rome-slurm"]
    assert _names(centre, "tag:multi-node") == ["mi250x-slurm-2node"]


def test_an_unknown_selector_suggests_the_closest_names_tags_and_kinds(centre: Catalogue) -> None:
    with pytest.raises(UnknownPlatformError) as info:
        select_platforms(centre, ["cerebas"])
    message = str(info.value)
    assert "--platform 'cerebas' matches no platform" in message
    assert "did you mean 'cerebras' or 'cerebras-cs2'?" in message
    assert "accelerator kinds: amd-gpu, cerebras, cpu, graphcore-ipu, nvidia-gpu" in message
