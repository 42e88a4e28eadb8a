"""Graphcore's poprun: the launcher's argv and rules (the Slurm golden: tests/golden/slurm/ipu-poprun.sh),
and the PopTorch adapter taking its replicas from PopDist when poprun started it."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from pytest_hetero.config.loader import parse_catalogue
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import ConfigError
from pytest_hetero.launchers import get_launcher
from pytest_hetero.launchers.base import LaunchContext
from pytest_hetero.workload import Workload
from pytest_hetero.workloads.accelerators import make_adapter
from pytest_hetero.workloads.accelerators.base import AdapterSettings
from pytest_hetero.workloads.distributed import DistEnv

WORKLOAD = Workload.builtin("resnet50", {"batch_size": 8})


def _platform(ipus: int = 16, **options: object) -> Platform:
    entry = {
        "name": "pod16",
        "accelerator": {"kind": "graphcore-ipu", "count_per_node": ipus},
        "backend": {"kind": "local"},
        "launcher": {"kind": "poprun", "options": options},
        "environment": {"python": "/sdk/venv/bin/python"},
    }
    return parse_catalogue({"version": 1, "platforms": [entry]}, "platforms.yaml").platforms[0]


def _argv(platform: Platform, nodes: int = 1) -> list[str]:
    context = LaunchContext(nodes=nodes, ranks_per_node=platform.accelerators_per_node)
    return get_launcher(platform).command(WORKLOAD, context)


def test_one_instance_replicates_over_every_allocated_ipu_by_default() -> None:
    argv = _argv(_platform(ipus=4))
    assert argv[:4] == ["poprun", "--num-instances=1", "--num-replicas=4", "--ipus-per-replica=1"]
    assert argv[4:7] == ["/sdk/venv/bin/python", "-m", "pytest_hetero.workloads.resnet50"]


def test_instances_partition_and_pipelined_replicas() -> None:
    options: dict[str, Any] = {"num_instances": 2, "ipus_per_replica": 4, "vipu_partition": "p16", "numa_aware": True}
    argv = _argv(_platform(**options))
    assert argv[:4] == ["poprun", "--num-instances=2", "--num-replicas=4", "--ipus-per-replica=4"]
    assert "--vipu-partition=p16" in argv and "--numa-aware=yes" in argv
    assert "--only-output-from-instance=0" in argv  # one metrics record in the job's log


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_instances": 3, "num_replicas": 4}, "num_replicas 4 is not a multiple of num_instances 3"),
        ({"num_replicas": 3}, "the partition would hold 3 IPUs, not a power of two"),
        ({"num_replicas": 8, "ipus_per_replica": 4}, "8 replicas x 4 IPUs = 32 IPUs, more than the 16 allocated"),
    ],
)
def test_graphcores_rules_are_catalogue_errors(options: dict[str, Any], message: str) -> None:
    """Found when platforms.yaml loads, with the JSON path: before any job of any platform is submitted."""
    with pytest.raises(
        ConfigError, match=rf"platforms\.yaml: .*\n  \$\.platforms\[0\]\.launcher\.options: poprun: .*{message}"
    ):
        _platform(**options)


def test_graphcores_rules_are_checked_against_the_allocation_given() -> None:
    """A sweep reshapes the platform after loading: the launcher checks again when it renders."""
    with pytest.raises(ConfigError, match=r"platform 'pod16': poprun: .*8 replicas x 1 IPUs = 8 IPUs, more than the 4"):
        get_launcher(_platform(num_replicas=8)).command(WORKLOAD, LaunchContext(nodes=1, ranks_per_node=4))


def test_several_hosts_must_be_named() -> None:
    with pytest.raises(ConfigError, match=r"2 nodes need launcher\.options\.hosts"):
        _argv(_platform(), nodes=2)
    argv = _argv(_platform(hosts=["pod-a", "pod-b"]), nodes=2)
    assert "--host=pod-a,pod-b" in argv and "--num-replicas=32" in argv


def test_unknown_poprun_options_are_refused_with_their_path() -> None:
    with pytest.raises(ConfigError, match=r"launcher\.options.*replicas"):
        _platform(replicas=4)


def test_the_poptorch_adapter_takes_this_instances_replicas_from_popdist(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []

    class Options:
        def __getattr__(self, name: str) -> Any:
            return lambda *args: log.append(f"{name}{args}")

    poptorch = types.ModuleType("poptorch")
    poptorch.Options = Options  # type: ignore[attr-defined]
    popdist = types.ModuleType("popdist")
    popdist.isPopdistEnvSet = lambda: True  # type: ignore[attr-defined]
    popdist.getNumLocalReplicas = lambda: 4  # type: ignore[attr-defined]

    def popdist_options() -> Options:
        log.append("popdist.Options")
        return Options()

    popdist_poptorch = types.ModuleType("popdist.poptorch")
    popdist_poptorch.Options = popdist_options  # type: ignore[attr-defined]
    popdist.poptorch = popdist_poptorch  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "poptorch", poptorch)
    monkeypatch.setitem(sys.modules, "popdist", popdist)
    monkeypatch.setitem(sys.modules, "popdist.poptorch", popdist_poptorch)

    adapter = make_adapter(AdapterSettings(kind="graphcore-ipu", replicas=1), DistEnv(rank=0, world_size=4))

    assert log == ["popdist.Options", "deviceIterations(1,)", "randomSeed(0,)"]  # no replicationFactor of its own
    assert adapter.devices == 16  # 4 replicas in each of 4 instances
    assert adapter.samples_per_step(2) == 2 * 16
