"""Accelerator adapters and distributed set-up.

What runs for real here: the eager adapter on the CPU (fp32, bf16 autocast,
channels-last), gloo collectives (in test_workload_cosmoflow), and the
Cerebras adapter on cerebras.pytorch's CPU backend when $HETERO_CEREBRAS_PYTHON
names an interpreter that has it (it pins its own torch, so it lives in its own
venv). PopTorch is not on PyPI: its adapter runs against a stand-in module
that records the calls, which checks the wiring, not the IPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from workload_runs import job_env, run_ok

from pytest_hetero.workloads import distributed
from pytest_hetero.workloads.accelerators import (
    ADAPTERS,
    KINDS,
    AdapterSettings,
    MissingSDKError,
    OptimizerSpec,
    adapter_class,
    make_adapter,
    require_sdk,
)
from pytest_hetero.workloads.accelerators.eager import EagerAdapter
from pytest_hetero.workloads.distributed import Collectives, DistEnv, dist_env, first_slurm_host, rendezvous_env
from pytest_hetero.workloads.protocol import ACCELERATOR_KINDS
from pytest_hetero.workloads.samples import write_sample_dataset


def _constant(step: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(step)


def _tiny_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 4, 4, generator=generator), torch.randint(0, 2, (8,), generator=generator)


# --------------------------------------------------------------------------
# eager (cpu here; the same code drives CUDA and ROCm)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cpu_adapter_trains(precision: str) -> None:
    adapter = make_adapter(AdapterSettings(kind="cpu", precision=precision, channels_last=True), DistEnv())
    trainer = adapter.trainer(_tiny_model(), nn.CrossEntropyLoss(), OptimizerSpec("sgd", 0.1), _constant)
    inputs, targets = adapter.to_device(_batch())

    losses = [float(trainer.step(inputs, targets)) for _ in range(15)]

    assert isinstance(adapter, EagerAdapter)
    assert inputs.is_contiguous(memory_format=torch.channels_last)
    assert losses[-1] < losses[0]
    assert adapter.peak_memory_mb() is None  # host memory is peak_rss_mb
    assert adapter.platform_name().startswith("1xcpu-")
    assert trainer.predict(inputs).dtype == torch.float32


def test_channels_last_3d_for_volumes() -> None:
    adapter = EagerAdapter(AdapterSettings(channels_last=True, spatial_dims=3), DistEnv())

    assert adapter.memory_format == torch.channels_last_3d


def test_learning_rate_follows_the_traceable_factor() -> None:
    adapter = make_adapter(AdapterSettings(), DistEnv())
    trainer = adapter.trainer(_tiny_model(), nn.CrossEntropyLoss(), OptimizerSpec("adamw", 0.5), lambda s: 1 / (s + 1))

    trainer.step(*_batch())
    trainer.step(*_batch())

    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.5 / 3)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (AdapterSettings(precision="fp16"), "'fp16' needs a GPU"),
        (AdapterSettings(kind="amd-gpu"), "needs a ROCm build of torch"),
    ],
)
def test_eager_adapter_refuses_what_the_host_cannot_do(settings: AdapterSettings, message: str) -> None:
    if torch.version.hip is not None:
        pytest.skip("this torch is a ROCm build")
    with pytest.raises(ValueError, match=message):
        make_adapter(settings, DistEnv())


def test_gpu_kind_without_a_visible_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match=r"'nvidia-gpu': torch.cuda.is_available\(\) is False"):
        make_adapter(AdapterSettings(kind="nvidia-gpu"), DistEnv())


@pytest.mark.parametrize(("kind", "module"), [("graphcore-ipu", "poptorch"), ("cerebras", "cerebras")])
def test_missing_sdk_names_the_package(kind: str, module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)

    with pytest.raises(MissingSDKError, match=f"accelerator kind '{kind}' needs the Python package") as info:
        make_adapter(AdapterSettings(kind=kind), DistEnv())
    assert ("Poplar SDK" if kind == "graphcore-ipu" else "pip install cerebras-pytorch") in str(info.value)


def test_require_sdk_returns_the_module() -> None:
    assert require_sdk("json", "cpu").__name__ == "json"


def test_registry_names_every_built_in_kind() -> None:
    assert tuple(ADAPTERS) == ACCELERATOR_KINDS == KINDS
    assert {adapter_class(kind).__name__ for kind in ACCELERATOR_KINDS} == {
        "EagerAdapter",
        "PopTorchAdapter",
        "CerebrasAdapter",
    }
    with pytest.raises(ValueError, match="unknown accelerator kind 'tpu'; known: cpu, nvidia-gpu, amd-gpu, "):
        make_adapter(AdapterSettings(kind="tpu"), DistEnv())


def test_vendor_adapter_modules_load_only_when_chosen() -> None:
    code = (
        "import sys; from pytest_hetero.workloads import accelerators as a, training; "
        "from pytest_hetero.workloads.distributed import DistEnv; "
        "a.make_adapter(a.AdapterSettings(), DistEnv()); "
        "print(sorted(m for m in sys.modules if m.startswith('pytest_hetero.workloads.accelerators.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=job_env(), capture_output=True, text=True, timeout=120, check=True
    )

    loaded = ["pytest_hetero.workloads.accelerators.base", "pytest_hetero.workloads.accelerators.eager"]
    assert result.stdout.strip() == repr(loaded)


# --------------------------------------------------------------------------
# PopTorch, against a stand-in that records calls
# --------------------------------------------------------------------------


class _Executable:
    def __init__(self, log: list[str], module: nn.Module, optimizer: Any = None) -> None:
        self.log, self.module, self.optimizer = log, module, optimizer
        self.attached = False

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        self.attached = True
        if self.optimizer is None:
            with torch.no_grad():
                result: torch.Tensor = self.module(*args)
            return result
        self.optimizer.zero_grad()
        loss: torch.Tensor = self.module(*args)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        self.optimizer.step()
        return loss.detach()

    def setOptimizer(self, optimizer: Any) -> None:
        self.log.append(f"setOptimizer lr={optimizer.param_groups[0]['lr']:.3f}")

    def copyWeightsToHost(self) -> None:
        self.log.append("copyWeightsToHost")

    def isCompiled(self) -> bool:
        return True

    def isAttachedToDevice(self) -> bool:
        return self.attached

    def attachToDevice(self) -> None:
        self.attached = True
        self.log.append(f"attach {type(self.module).__name__}")

    def detachFromDevice(self) -> None:
        self.attached = False
        self.log.append(f"detach {type(self.module).__name__}")


def _fake_poptorch(log: list[str]) -> types.ModuleType:
    fake = types.ModuleType("poptorch")

    class Options:
        def __getattr__(self, name: str) -> Any:
            return lambda *args: log.append(f"{name}{args}")

    fake.Options = Options  # type: ignore[attr-defined]
    fake.optim = torch.optim  # type: ignore[attr-defined]
    fake.identity_loss = lambda loss, reduction: loss  # type: ignore[attr-defined]
    fake.trainingModel = lambda model, options, optimizer: _Executable(log, model, optimizer)  # type: ignore[attr-defined]
    fake.inferenceModel = lambda model, options: _Executable(log, model)  # type: ignore[attr-defined]
    fake.DataLoader = lambda options, dataset, **kwargs: log.append(f"DataLoader{sorted(kwargs.items())}")  # type: ignore[attr-defined]
    return fake


def test_poptorch_adapter_wiring(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    monkeypatch.setitem(sys.modules, "poptorch", _fake_poptorch(log))
    settings = AdapterSettings(kind="graphcore-ipu", device_iterations=4, replicas=2, seed=7)
    adapter = make_adapter(settings, DistEnv())
    trainer = adapter.trainer(_tiny_model(), nn.CrossEntropyLoss(), OptimizerSpec("sgd", 0.1), lambda s: 1 / (s + 1))

    loss = trainer.step(*_batch())
    trainer.predict(_batch()[0])
    trainer.step(*_batch())
    adapter.loader(torch.utils.data.TensorDataset(*_batch()), 2, train=True)

    assert torch.isfinite(loss)
    assert log[:3] == ["deviceIterations(4,)", "replicationFactor(2,)", "randomSeed(7,)"]
    assert log[3:5] == ["attach WithLoss", "setOptimizer lr=0.050"]  # the factor after step 1, sent to the IPU
    # evaluation swaps the executables on the device, then training takes it back
    assert log[5:14] == [
        "copyWeightsToHost",
        "deviceIterations(1,)",  # inference runs one batch per call
        "replicationFactor(2,)",
        "randomSeed(7,)",
        "detach WithLoss",
        "attach Sequential",
        "detach Sequential",
        "attach WithLoss",
        "setOptimizer lr=0.033",
    ]
    assert (adapter.samples_per_step(2), adapter.devices, adapter.platform_name()) == (16, 2, "2xIPU")
    assert log[-1] == "DataLoader[('batch_size', 2), ('drop_last', True), ('num_workers', 0), ('shuffle', True)]"


def test_poptorch_refuses_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "poptorch", _fake_poptorch([]))

    with pytest.raises(ValueError, match="'bf16' is not supported on graphcore-ipu"):
        make_adapter(AdapterSettings(kind="graphcore-ipu", precision="bf16"), DistEnv())


# --------------------------------------------------------------------------
# Cerebras, for real on cerebras.pytorch's CPU backend (own venv)
# --------------------------------------------------------------------------

_CEREBRAS_VENV = Path(__file__).parents[2] / ".venv-cerebras" / "bin" / "python"  # scripts/cerebras-venv.sh
CEREBRAS_PYTHON = os.environ.get("HETERO_CEREBRAS_PYTHON", "") or (
    str(_CEREBRAS_VENV) if _CEREBRAS_VENV.exists() else ""
)


@pytest.mark.slow
@pytest.mark.skipif(
    not CEREBRAS_PYTHON, reason="no .venv-cerebras (scripts/cerebras-venv.sh), no HETERO_CEREBRAS_PYTHON"
)
@pytest.mark.parametrize("data", ["synthetic", "real"])
def test_cerebras_adapter_on_the_cpu_backend(data: str, tmp_path: Path) -> None:
    root = write_sample_dataset("cosmoflow", tmp_path / "cosmo", 4, 2, size=32)
    config = {"device": "cerebras", "cerebras_backend": "CPU", "threads": 1, "data": data, "data_dir": str(root)}
    config["precision"] = "bf16" if data == "real" else "fp32"

    run = run_ok("pytest_hetero.workloads.cosmoflow", tmp_path / "cwd", config, python=CEREBRAS_PYTHON)

    assert run.record["config"]["device"] == "cerebras"
    assert run.record["config"]["submission_platform"] == "1xCerebras-CPU"
    assert run.metrics["steady_steps"] >= 3 and run.metrics["throughput_sps"] > 0
    assert 0 < run.metrics["eval_error"] < 5


# --------------------------------------------------------------------------
# distributed environment
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, DistEnv()),
        ({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}, DistEnv(3, 8, 1, 4, "torchrun")),
        (
            {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_NTASKS_PER_NODE": "4"},
            DistEnv(5, 8, 1, 4, "slurm"),
        ),
        ({"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_NTASKS_PER_NODE": "4(x2)"}, DistEnv(0, 8, 0, 8, "slurm")),
        (
            {"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "0"},
            DistEnv(2, 4, 0, 4, "openmpi"),
        ),
        ({"PMI_RANK": "1", "PMI_SIZE": "2"}, DistEnv(1, 2, 0, 2, "mpich")),
    ],
    ids=["single", "torchrun", "slurm", "slurm-uneven", "openmpi", "mpich"],
)
def test_rank_layout_from_the_launcher(environ: dict[str, str], expected: DistEnv) -> None:
    assert dist_env(environ) == expected


def test_torchrun_wins_over_the_slurm_allocation_it_runs_in() -> None:
    environ = {"RANK": "1", "WORLD_SIZE": "2", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}

    assert dist_env(environ).source == "torchrun"


def test_nodes_and_main_rank() -> None:
    env = DistEnv(0, 8, 0, 4, "slurm")

    assert (env.nodes, env.is_main, env.distributed) == (2, True, True)


@pytest.mark.parametrize(
    ("nodelist", "host"),
    [("gpu[003-004,007],x", "gpu003"), ("node17", "node17"), ("a[1,3]", "a1"), ("n1,n2", "n1")],
)
def test_first_slurm_host(nodelist: str, host: str) -> None:
    assert first_slurm_host(nodelist) == host


def test_rendezvous_from_slurm() -> None:
    environ = {"SLURM_JOB_NODELIST": "cn[12-13]", "SLURM_JOB_ID": "123456"}

    assert rendezvous_env(environ, "slurm") == {"MASTER_ADDR": "cn12", "MASTER_PORT": "29956"}
    assert rendezvous_env({"MASTER_ADDR": "h", "MASTER_PORT": "1"}, "torchrun") == {}


def test_backend_choice() -> None:
    assert distributed.resolve_backend("auto", torch.device("cpu")) == "gloo"
    assert distributed.resolve_backend("auto", torch.device("cuda", 0)) == "nccl"
    assert distributed.backend_label("gloo") == "gloo"
    if torch.version.hip is None:
        with pytest.raises(ValueError, match="'rccl' needs a ROCm build"):
            distributed.resolve_backend("rccl", torch.device("cuda", 0))
    if not torch.distributed.is_mpi_available():
        with pytest.raises(ValueError, match="built without MPI"):
            distributed.resolve_backend("mpi", torch.device("cpu"))


def test_single_process_collectives_are_free() -> None:
    collectives = Collectives(torch.device("cpu"), None)
    model = _tiny_model()
    model(_batch()[0]).sum().backward()

    collectives.all_reduce_gradients(model.parameters())

    assert collectives.sum_floats([1.0, 2.0]) == [1.0, 2.0]
    assert collectives.comm_time_s == 0.0


# --------------------------------------------------------------------------
# the example centre catalogue: validates, and renders a job for every platform
# --------------------------------------------------------------------------

CENTRE = Path(__file__).resolve().parents[2] / "platforms.example-centre.yaml"


def _centre_jobs(tmp_path: Path) -> dict[str, Any]:
    from pytest_hetero.backends.base import JobSpec
    from pytest_hetero.backends.registry import get_backend_class
    from pytest_hetero.config.loader import load_catalogue
    from pytest_hetero.launchers import get_launcher
    from pytest_hetero.workload import Workload

    workload = Workload("cosmoflow", module="pytest_hetero.workloads.cosmoflow", config={"preset": "subset"})
    jobs = {}
    for platform in load_catalogue(CENTRE).platforms:
        context = get_backend_class(platform.backend.kind)(platform).launch_context()
        argv = tuple(get_launcher(platform).command(workload, context))
        jobs[platform.name] = JobSpec(f"cosmoflow[{platform.name}]", argv, tmp_path / platform.name, platform)
    return jobs


def test_example_centre_catalogue_renders_every_job(tmp_path: Path) -> None:
    from pytest_hetero.backends.k8s_manifest import Identity, build_manifest
    from pytest_hetero.backends.slurm_script import render_batch_script

    jobs = _centre_jobs(tmp_path)
    ident = Identity("hetero-cosmoflow-x", "ns", "run1", "s1")

    a100 = build_manifest(jobs["a100-k8s-8gpu"].platform, jobs["a100-k8s-8gpu"], ident)
    template = dict(jobs["bow-pod16-ipujob"].platform.backend.options["template"])
    ipu = build_manifest(jobs["bow-pod16-ipujob"].platform, jobs["bow-pod16-ipujob"], ident, template)
    cs2 = render_batch_script(jobs["cerebras-cs2"])
    mi250x = render_batch_script(jobs["mi250x-slurm-2node"])

    assert sorted(jobs) == sorted(["a100-k8s-1gpu", "a100-k8s-8gpu", "mi250x-slurm-2node", "bow-pod16-ipujob",
                                   "cerebras-cs2", "cpu-rome-slurm"])  # fmt: skip
    assert a100["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "a100-benchmarks"
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in a100["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert "cosmoflow-cephfs" in claims
    assert "--nproc-per-node=8" in jobs["a100-k8s-8gpu"].argv
    assert (ipu["kind"], ipu["spec"]["ipusPerJobInstance"]) == ("IPUJob", "16")
    assert "#SBATCH --gres=cs:1" in cs2
    assert "#SBATCH --nodes=2" in mi250x and "srun" in mi250x
