from __future__ import annotations

import importlib
import sys

import pytest

from pytest_hetero.backends.local import LocalBackend
from pytest_hetero.config.models import Accelerator, BackendConfig, Environment, LauncherConfig, Platform
from pytest_hetero.errors import ConfigError
from pytest_hetero.launchers import get_launcher
from pytest_hetero.workload import Workload


def _platform(launcher: str, **options: object) -> Platform:
    return Platform(
        name="p",
        accelerator=Accelerator(kind="nvidia-gpu", count_per_node=4),
        backend=BackendConfig(kind="local"),
        launcher=LauncherConfig(kind=launcher, options=options),
        environment=Environment(venv="/opt/venv"),
    )


WORKLOAD = Workload.builtin("resnet50", {"batch_size": 8})


def argv_of(platform: Platform, workload: Workload) -> list[str]:
    """The launcher's argv in the context the local backend supplies."""
    return get_launcher(platform).command(workload, LocalBackend(platform).launch_context())


def test_python_launcher_uses_the_venv() -> None:
    argv = argv_of(_platform("python"), WORKLOAD)
    assert argv == [
        "/opt/venv/bin/python",
        "-m",
        "pytest_hetero.workloads.resnet50",
        "--config-json",
        '{"batch_size":8}',
    ]


def test_torchrun_one_process_per_accelerator() -> None:
    argv = argv_of(_platform("torchrun"), WORKLOAD)
    assert argv[:6] == [
        "/opt/venv/bin/python",
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        "--nproc-per-node=4",
    ]
    assert argv[6:8] == ["-m", "pytest_hetero.workloads.resnet50"]


def test_torchrun_runs_a_non_python_command_with_no_python() -> None:
    argv = argv_of(_platform("torchrun", nproc_per_node=2), Workload(name="w", command=("./bench", "--x")))
    assert argv[-3:] == ["--no-python", "./bench", "--x"]
    assert "--nproc-per-node=2" in argv


def test_local_platform_defaults_to_this_interpreter() -> None:
    platform = Platform(name="l", accelerator=Accelerator(kind="cpu"), backend=BackendConfig(kind="local"))
    assert argv_of(platform, Workload(name="w", command=("x.py",)))[0] == sys.executable


def test_config_hash_changes_with_config_only() -> None:
    same = Workload.builtin("resnet50", {"batch_size": 8})
    other = Workload.builtin("resnet50", {"batch_size": 16})
    assert same.config_hash == WORKLOAD.config_hash != other.config_hash


def test_unknown_builtin_workload() -> None:
    with pytest.raises(ConfigError, match=r"unknown workload 'resnet51'; built-in workloads: .*resnet50"):
        Workload.builtin("resnet51")


EXPORTS = {
    "pytest_hetero": ["__version__"],
    "pytest_hetero.errors": [
        "UnavailableError",
        "CheckError",
        "CollectError",
        "ConfigError",
        "HeteroError",
        "HistoryError",
        "JobFailedError",
        "JobTimeoutError",
        "Stage",
        "StageError",
        "StoreUnavailableError",
        "SubmitError",
        "TeardownError",
        "UnknownPlatformError",
    ],
    "pytest_hetero.backends": [
        "Backend",
        "JobHandle",
        "JobOutput",
        "JobSpec",
        "JobState",
        "get_backend_class",
        "known_backends",
        "register_backend",
    ],
    "pytest_hetero.backends.fake": ["FakeBackend", "FakeResult"],
    "pytest_hetero.plugin": ["_hetero_platform", "hetero_platform", "hetero_result", "hetero_run"],
}


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_public_names_are_pinned(module: str) -> None:
    assert sorted(importlib.import_module(module).__all__) == sorted(EXPORTS[module])
