"""Typed backend options and typed job handles: the contract every backend keeps.

Each backend declares its ``backend.options`` twice, on purpose: as a JSON Schema
(checked first, with JSON paths) and as a frozen dataclass with the defaults
(what the backend reads). These tests keep the two in step, and check that the
catalogue loader and the constructors report bad options with their path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.backends.base import (
    Backend,
    BackendOptions,
    JobHandle,
    JobSpec,
    JobState,
    check_options,
    narrow_handle,
)
from pytest_hetero.backends.fake import FakeBackend, FakeJobHandle, FakeOptions, FakeResult
from pytest_hetero.backends.k8s_options import K8sOptions
from pytest_hetero.backends.kubernetes import KubernetesBackend
from pytest_hetero.backends.local import LocalBackend, LocalJobHandle, LocalOptions
from pytest_hetero.backends.registry import BACKENDS, register_backend
from pytest_hetero.backends.slurm import SlurmBackend, SlurmJobHandle
from pytest_hetero.backends.slurm_script import SlurmOptions
from pytest_hetero.config.loader import parse_catalogue
from pytest_hetero.config.models import Accelerator, BackendConfig, Platform
from pytest_hetero.errors import ConfigError

BUILT_IN: list[tuple[type[Backend], type[BackendOptions]]] = [
    (LocalBackend, LocalOptions),
    (FakeBackend, FakeOptions),
    (SlurmBackend, SlurmOptions),
    (KubernetesBackend, K8sOptions),
]


def _platform(kind: str, options: Mapping[str, Any] | None = None, **entry: Any) -> Platform:
    data = {"name": "p", "accelerator": {"kind": "cpu"}, "backend": {"kind": kind, "options": dict(options or {})}}
    return parse_catalogue({"version": 1, "platforms": [{**data, **entry}]}, source="platforms.yaml").platforms[0]


@pytest.mark.parametrize(("backend", "options_type"), BUILT_IN, ids=lambda c: getattr(c, "__name__", ""))
def test_the_dataclass_has_one_field_per_schema_key(backend: type[Backend], options_type: type[Any]) -> None:
    fields = {field.name for field in dataclasses.fields(options_type)}
    assert fields == set(backend.options_schema["properties"])
    assert options_type.__dataclass_params__.frozen


@pytest.mark.parametrize(("backend", "options_type"), BUILT_IN, ids=lambda c: getattr(c, "__name__", ""))
def test_no_options_means_the_defaults(backend: type[Backend], options_type: type[Any]) -> None:
    assert backend.parse_options({}) == options_type()


def test_defaults_and_conversions() -> None:
    assert LocalOptions() == LocalOptions(kill_grace_s=5.0, inherit_env=True)
    slurm = SlurmBackend.parse_options({"sbatch_extra": ["--hint=nomultithread"], "queue_timeout_min": 5})
    assert slurm.sbatch_extra == ("--hint=nomultithread",)
    assert (slurm.queue_timeout_min, slurm.command_timeout_s, slurm.unreachable_grace_s) == (5, 30.0, 120.0)
    k8s = KubernetesBackend.parse_options({"tolerations": [{"key": "gpu"}], "image_pull_secrets": ["ngc"]})
    assert (k8s.tolerations, k8s.image_pull_secrets, k8s.pending_timeout_s) == (({"key": "gpu"},), ("ngc",), 600.0)
    assert FakeBackend.parse_options({"state": "FAILED"}).state is JobState.FAILED


def test_parse_options_reports_every_schema_problem_with_its_path() -> None:
    with pytest.raises(ConfigError) as info:
        SlurmBackend.parse_options({"exclusive": "yes", "tasks_per_node": 0})
    assert str(info.value) == (
        "backend.options.exclusive: 'yes' is not of type 'boolean'; "
        "backend.options.tasks_per_node: 0 is less than the minimum of 1"
    )


def test_the_constructor_refuses_bad_options_naming_the_platform() -> None:
    platform = Platform(
        name="gpu", accelerator=Accelerator(kind="cpu"), backend=BackendConfig("slurm", {"partiton": "gpu"})
    )
    with pytest.raises(ConfigError, match=r"^platform 'gpu' \(<built-in>\): backend.options: Additional properties"):
        SlurmBackend(platform)


def test_platform_problems_are_checked_by_the_class() -> None:
    assert LocalBackend.platform_problems(_platform("local")) == []
    with_image = _platform("slurm", environment={"container_image": "nvcr.io/x"})
    assert SlurmBackend.platform_problems(with_image) == [
        "the slurm backend does not start containers itself; drop environment.container_image and pass your "
        "site's flags instead (e.g. pyxis: launcher srun with extra_args: ['--container-image=...'])"
    ]
    assert KubernetesBackend.platform_problems(_platform("kubernetes")) == [
        "backend kubernetes needs environment.container_image"
    ]
    with pytest.raises(ConfigError, match=r"^platform 'p' \(platforms.yaml\): the slurm backend does not start"):
        SlurmBackend(with_image)


# -- the catalogue loader asks the backend, after the schema ---------------------------------------
class _PickyBackend(LocalBackend):
    """Accepts what the local backend's schema accepts, but no grace period over a minute."""

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any]) -> LocalOptions:
        options = super().parse_options(raw)
        if options.kill_grace_s > 60:
            raise ConfigError(f"kill_grace_s: {options.kill_grace_s:g} s is longer than the 60 s allowed")
        return options


@pytest.fixture
def picky_backend() -> Iterator[str]:
    register_backend("picky", _PickyBackend)
    try:
        yield "picky"
    finally:
        BACKENDS.unregister("picky")


def test_the_loader_reports_parse_options_problems_at_the_options_path(picky_backend: str) -> None:
    options = {"ok": {}, "slow": {"kill_grace_s": 90}, "typo": {"grace": 1}}
    entries = [
        {"name": name, "accelerator": {"kind": "cpu"}, "backend": {"kind": picky_backend, "options": value}}
        for name, value in options.items()
    ]
    with pytest.raises(ConfigError) as info:
        parse_catalogue({"version": 1, "platforms": entries}, source="platforms.yaml")
    problems = str(info.value).splitlines()[1:]
    assert [p.strip() for p in problems] == [
        "$.platforms[1].backend.options: kill_grace_s: 90 s is longer than the 60 s allowed",
        "$.platforms[2].backend.options: Additional properties are not allowed ('grace' was unexpected)",
    ]


# -- typed handles ------------------------------------------------------------------------------
def test_a_backend_refuses_another_backends_handle(tmp_path: Path) -> None:
    platform = _platform("fake")
    spec = JobSpec(name="t", argv=("true",), workdir=tmp_path, platform=platform)
    fake = FakeBackend(platform)
    handle = fake.submit(spec)
    assert isinstance(handle, FakeJobHandle) and narrow_handle(handle, FakeJobHandle) is handle
    with pytest.raises(TypeError, match="not a LocalJobHandle: FakeJobHandle"):
        LocalBackend(_platform("local")).status(handle)
    with pytest.raises(TypeError, match="not a SlurmJobHandle"):
        narrow_handle(JobHandle(job_id="1", spec=spec), SlurmJobHandle)
    assert not hasattr(handle, "data") and not hasattr(LocalJobHandle, "data")


# -- the public fake ------------------------------------------------------------------------------
def test_fake_results_from_options(tmp_path: Path) -> None:
    platform = _platform("fake", {"metrics": {"throughput_sps": {"value": 2.5}}, "exit_code": 3, "state": "FAILED"})
    fake = FakeBackend(platform)
    assert fake.options == FakeOptions(metrics={"throughput_sps": {"value": 2.5}}, exit_code=3, state=JobState.FAILED)
    output = fake.collect(fake.submit(JobSpec(name="t", argv=("x",), workdir=tmp_path, platform=platform)))
    assert (output.state, output.exit_code) == (JobState.FAILED, 3)
    assert '"value": 2.5' in output.stdout()


def test_the_fake_stands_in_for_any_platform_without_reading_its_options(tmp_path: Path) -> None:
    """A conftest's pytest_hetero_make_backend may fake a Slurm platform: its sbatch options are not the fake's."""
    platform = _platform("slurm", {"partition": "gpu", "command_timeout_s": 5}, environment={"python": "python3"})
    fake = FakeBackend(platform, handler=lambda spec: FakeResult(metrics={"throughput_sps": 1.0}))
    assert fake.platform is platform and fake.options == FakeOptions()
    assert fake.collect(fake.submit(JobSpec("t", ("x",), tmp_path, platform))).state is JobState.COMPLETED


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "object", "required": ["value"], "properties": {"value": {}}}, "'value' is a required"),
        ({"type": "object", "minProperties": 1}, "should be non-empty"),
        ({"type": "array"}, "is not of type 'array'"),
    ],
)
def test_no_options_are_still_checked_where_the_schema_can_refuse_them(schema: dict[str, Any], problem: str) -> None:
    """The shortcut for ``{}`` (no validator run) applies only to schemas that cannot refuse an empty object."""
    assert check_options({"type": "object", "additionalProperties": False, "properties": {"x": {}}}, {}) == {}
    with pytest.raises(ConfigError, match=problem):
        check_options(schema, {})
