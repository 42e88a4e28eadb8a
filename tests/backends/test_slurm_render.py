"""The Slurm backend without a cluster: golden batch scripts, option checks, sacct parsing,
the launchers that run inside an allocation, and fake Slurm commands for timeouts.

Regenerate the golden files after an intended change with::

    HETERO_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/backends/test_slurm_render.py
"""

from __future__ import annotations

import _thread
import dataclasses
import difflib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.backends.base import JobSpec, JobState
from pytest_hetero.backends.registry import get_backend_class
from pytest_hetero.backends.slurm import DEADLINE_MARGIN_S, SlurmBackend, SlurmJobHandle, parse_sacct
from pytest_hetero.backends.slurm_script import render_batch_script, sbatch_parameters, time_limit_min
from pytest_hetero.config.loader import parse_catalogue
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import ConfigError, SubmitError
from pytest_hetero.launchers import LaunchContext, get_launcher
from pytest_hetero.launchers.builtin import TorchrunLauncher
from pytest_hetero.workload import Workload

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "slurm"
REGEN = "HETERO_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/backends/test_slurm_render.py"
WORKLOAD = Workload.builtin("resnet50", {"batch_size": 32, "train_steps": 100})

SHAPES: dict[str, dict[str, Any]] = {
    "cpu": {
        "accelerator": {"kind": "cpu", "model": "EPYC 7742"},
        "backend": {"kind": "slurm", "options": {"partition": "standard", "account": "ml-bench"}},
        "resources": {"cpus_per_task": 16, "mem_gb": 64, "time_limit_min": 30},
        "environment": {"python": "/opt/venvs/bench/bin/python", "env": {"OMP_NUM_THREADS": "16"}},
    },
    "nvidia-4gpu-torchrun": {
        "accelerator": {"kind": "nvidia-gpu", "model": "A100-SXM4-80GB", "count_per_node": 4, "memory_gb": 80},
        "backend": {
            "kind": "slurm",
            "options": {"partition": "gpu", "qos": "short", "constraint": "a100", "exclusive": True},
        },
        "launcher": {"kind": "torchrun"},
        "resources": {"cpus_per_task": 32, "mem_gb": 480, "time_limit_min": 60},
        "environment": {
            "venv": "/work/venvs/torch-cu121",
            "setup": ["module load cuda/12.1 nccl/2.18"],
            "env": {"NCCL_DEBUG": "WARN", "HF_TOKEN": "never-written-to-the-script"},
        },
    },
    "amd-2node-srun": {
        "accelerator": {"kind": "amd-gpu", "model": "MI250X", "count_per_node": 8, "memory_gb": 64},
        "backend": {
            "kind": "slurm",
            "options": {
                "partition": "mi250",
                "gres": "gpu:8",
                "reservation": "bench-night",
                "sbatch_extra": ["--hint=nomultithread", "--licenses=lustre:1"],
            },
        },
        "launcher": {"kind": "srun", "options": {"extra_args": ["--cpu-bind=closest"]}},
        "resources": {"nodes": 2, "cpus_per_task": 8, "time_limit_min": 45},
        "environment": {
            "python": "python3",
            "setup": [
                "module load rocm/5.7.1",
                "source /work/venvs/torch-rocm/bin/activate",
                "export MIOPEN_USER_DB_PATH=/tmp/miopen-$SLURM_JOB_ID",  # expanded: a shell line
            ],
            "env": {"MIOPEN_DEBUG_DISABLE_FIND_DB": "1", "LITERAL": "$NOT_EXPANDED"},  # taken literally
        },
    },
    "cerebras-cs2": {
        "accelerator": {"kind": "cerebras", "model": "CS-2"},
        "backend": {"kind": "slurm", "options": {"partition": "cs2", "gres": "cs:1", "signal": "USR1@120"}},
        "resources": {"cpus_per_task": 64, "mem_gb": 200.5, "time_limit_min": 120},
        "environment": {"venv": "/opt/cerebras/venv-2.1"},
    },
    "ipu-poprun": {  # a Bow Pod16 host under Slurm: 4 poprun instances, 16 one-IPU replicas
        "accelerator": {"kind": "graphcore-ipu", "model": "Bow IPU", "count_per_node": 16},
        "backend": {"kind": "slurm", "options": {"partition": "ipu"}},
        "launcher": {
            "kind": "poprun",
            "options": {
                "num_instances": 4,
                "vipu_server_host": "vipu-ctrl",
                "vipu_partition": "bench16",
                "update_partition": True,
                "executable_cache_path": "/scratch/popef-cache",
            },
        },
        "resources": {"cpus_per_task": 48, "time_limit_min": 90},
        "environment": {"venv": "/opt/poplar-sdk-3.3/venv-poptorch", "setup": ["source /opt/poplar-sdk-3.3/enable"]},
    },
    "nvidia-2node-torchrun": {
        "accelerator": {"kind": "nvidia-gpu", "model": "H100", "count_per_node": 4},
        "backend": {"kind": "slurm", "options": {"partition": "gpu"}},
        "launcher": {"kind": "torchrun", "options": {"rdzv_port": 29400}},
        "resources": {"nodes": 2, "time_limit_min": 20},
        "environment": {"python": "python3"},
    },
}


def platform_of(name: str, **entry: Any) -> Platform:
    data = {"version": 1, "platforms": [{"name": name, **entry}]}
    return parse_catalogue(data, source="platforms.yaml").platforms[0]


def slurm_argv(platform: Platform, workload: Workload) -> list[str]:
    """The launcher's argv in the context the Slurm backend supplies."""
    return get_launcher(platform).command(workload, SlurmBackend(platform).launch_context())


def spec_for(platform: Platform, workdir: str = "/scratch/hetero/runs/golden") -> JobSpec:
    env = {
        "HETERO_WORKLOAD_CONFIG": WORKLOAD.config_json,
        "HETERO_PLATFORM": platform.name,
        "HETERO_ACCELERATOR_KIND": platform.accelerator.kind,
        "HETERO_ACCELERATORS_PER_NODE": str(platform.accelerators_per_node),
        "HETERO_RUN_ID": "golden",
    }
    return JobSpec(
        name=f"test_resnet50[{platform.name}]",
        argv=tuple(slurm_argv(platform, WORKLOAD)),
        workdir=Path(workdir) / f"test_resnet50_{platform.name}",
        platform=platform,
        env=env,
        timeout_s=platform.time_limit_s,
    )


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_golden_batch_script(shape: str) -> None:
    rendered = render_batch_script(spec_for(platform_of(shape, **SHAPES[shape])))
    golden = GOLDEN_DIR / f"{shape}.sh"
    if os.environ.get("HETERO_REGEN_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered)
    assert golden.exists(), f"no golden file {golden}; create it with: {REGEN}"
    expected = golden.read_text()
    if rendered != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), rendered.splitlines(True), "golden", "now"))
        pytest.fail(f"the batch script for {shape!r} differs from {golden}; if intended, run: {REGEN}\n{diff}")


def test_backend_render_is_the_batch_script() -> None:
    platform = platform_of("cpu", **SHAPES["cpu"])
    spec = spec_for(platform)
    assert SlurmBackend(platform).render(spec) == render_batch_script(spec)
    assert get_backend_class("slurm") is SlurmBackend


# -- mapping of resources and options ----------------------------------------------


def _params(**entry: Any) -> dict[str, Any]:
    base = {"accelerator": {"kind": "cpu"}, "backend": {"kind": "slurm"}}
    return sbatch_parameters(spec_for(platform_of("p", **{**base, **entry})))


def test_generic_resources_map_to_sbatch_parameters() -> None:
    params = _params(resources={"nodes": 3, "cpus_per_task": 4, "mem_gb": 1.5, "time_limit_min": 0.5})
    assert {k: params[k] for k in ("nodes", "cpus_per_task", "mem", "time", "ntasks_per_node")} == {
        "nodes": 3,
        "cpus_per_task": 4,
        "mem": "1536MB",
        "time": 1,
        "ntasks_per_node": 1,
    }
    assert _params(resources={"mem_gb": 8})["mem"] == "8GB"


@pytest.mark.parametrize(("timeout_s", "minutes"), [(1, 1), (60, 1), (61, 2), (3600, 60)])
def test_time_limit_rounds_up_to_whole_minutes(timeout_s: float, minutes: int) -> None:
    assert time_limit_min(timeout_s) == minutes


@pytest.mark.parametrize(
    ("accelerator", "options", "expected"),
    [
        ({"kind": "nvidia-gpu", "count_per_node": 4}, {}, {"gpus_per_node": 4}),
        ({"kind": "amd-gpu", "count_per_node": 8}, {"gres": "gpu:8"}, {"gres": "gpu:8"}),
        ({"kind": "nvidia-gpu", "count_per_node": 4}, {"gpus_per_node": 0}, {}),
        ({"kind": "cerebras"}, {"gres": "cs:1"}, {"gres": "cs:1"}),
        ({"kind": "graphcore-ipu", "count_per_node": 16}, {}, {}),
    ],
)
def test_accelerators_map_to_gpus_or_gres(accelerator: dict[str, Any], options: dict[str, Any], expected: Any) -> None:
    params = _params(accelerator=accelerator, backend={"kind": "slurm", "options": options})
    assert {k: params[k] for k in ("gpus_per_node", "gres") if k in params} == expected


@pytest.mark.parametrize(
    ("launcher", "options", "tasks"),
    [("srun", {}, 8), ("mpirun", {}, 8), ("torchrun", {}, 1), ("python", {}, 1), ("srun", {"tasks_per_node": 2}, 2)],
)
def test_tasks_per_node_follow_the_launcher(launcher: str, options: dict[str, Any], tasks: int) -> None:
    params = _params(
        accelerator={"kind": "amd-gpu", "count_per_node": 8},
        backend={"kind": "slurm", "options": options},
        launcher={"kind": launcher},
    )
    assert params["ntasks_per_node"] == tasks


def test_submitit_defaults_that_would_hurt_a_benchmark_are_dropped() -> None:
    platform = platform_of("p", accelerator={"kind": "cpu"}, backend={"kind": "slurm"})
    script = render_batch_script(spec_for(platform))
    assert "--signal" not in script and "--wckey" not in script
    assert "#SBATCH --no-requeue" in script


def test_asked_for_signal_and_wckey_are_kept() -> None:
    options = {"signal": "B:USR1@60", "sbatch_extra": ["--wckey=bench", "--mail-type=END"]}
    platform = platform_of("p", accelerator={"kind": "cpu"}, backend={"kind": "slurm", "options": options})
    script = render_batch_script(spec_for(platform))
    assert "#SBATCH --signal=B:USR1@60\n" in script
    assert "#SBATCH --wckey=bench\n" in script and "#SBATCH --mail-type=END\n" in script


def test_secrets_go_through_sbatch_environment_not_the_script() -> None:
    env = {"API_TOKEN": "hunter2-secret", "PLAIN": "it's visible"}
    platform = platform_of("p", accelerator={"kind": "cpu"}, backend={"kind": "slurm"}, environment={"env": env})
    script = render_batch_script(spec_for(platform))
    assert "hunter2-secret" not in script
    assert "# passed through sbatch's environment, not written here: API_TOKEN" in script
    assert "export PLAIN='it'\"'\"'s visible'" in script


def test_bad_environment_variable_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\$\.platforms\[0\]\.environment\.env: 'A B' does not match"):
        platform_of("p", accelerator={"kind": "cpu"}, backend={"kind": "slurm"}, environment={"env": {"A B": "x"}})
    platform = platform_of("p", accelerator={"kind": "cpu"}, backend={"kind": "slurm"})
    spec = dataclasses.replace(spec_for(platform), env={"A B": "x"})
    with pytest.raises(ConfigError, match=r"platform 'p': invalid environment variable name\(s\): \['A B'\]"):
        render_batch_script(spec)


def test_container_image_is_refused_with_what_to_do() -> None:
    platform = platform_of(
        "p", accelerator={"kind": "cpu"}, backend={"kind": "slurm"}, environment={"container_image": "nvcr.io/x"}
    )
    with pytest.raises(ConfigError, match=r"does not start containers itself.*--container-image"):
        SlurmBackend(platform)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"partiton": "gpu"}, "$.platforms[0].backend.options: Additional properties are not allowed ('partiton'"),
        ({"exclusive": "yes"}, "$.platforms[0].backend.options.exclusive: 'yes' is not of type 'boolean'"),
        ({"sbatch_extra": ["#SBATCH -p x"]}, "$.platforms[0].backend.options.sbatch_extra[0]: '#SBATCH -p x' does not"),
        ({"tasks_per_node": 0}, "$.platforms[0].backend.options.tasks_per_node: 0 is less than the minimum of 1"),
    ],
)
def test_bad_options_are_reported_with_their_path(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        platform_of("p", accelerator={"kind": "cpu"}, backend={"kind": "slurm", "options": options})
    assert problem in str(info.value)


# -- sacct states, deadlines -----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "state", "exit_code"),
    [
        ("7|PENDING|0:0|0", JobState.PENDING, 0),
        ("7|RUNNING|0:0|12", JobState.RUNNING, 0),
        ("7|COMPLETING|0:0|12", JobState.RUNNING, 0),
        ("7|COMPLETED|0:0|30", JobState.COMPLETED, 0),
        ("7|FAILED|3:0|30", JobState.FAILED, 3),
        ("7|OUT_OF_MEMORY|0:125|30", JobState.FAILED, -125),
        ("7|TIMEOUT|0:0|75", JobState.TIMEOUT, 0),
        ("7|CANCELLED by 0|0:15|5", JobState.CANCELLED, -15),
        ("7|NODE_FAIL|0:0|5", JobState.NODE_FAIL, 0),
        ("7|SOMETHING_NEW|0:0|5", JobState.UNKNOWN, 0),
    ],
)
def test_sacct_states_map_to_job_states(line: str, state: JobState, exit_code: int) -> None:
    row = parse_sacct(f"{line}\n7.batch|COMPLETED|0:0|1\n")["7"]
    assert (row.state, row.exit_code) == (state, exit_code)


def test_deadline_counts_from_the_start_of_the_job() -> None:
    platform = platform_of("p", accelerator={"kind": "cpu"}, backend={"kind": "slurm"})
    handle = SlurmJobHandle(job_id="1", spec=spec_for(platform), submitted_at=100.0, queue_timeout_s=600.0)
    assert handle.deadline == 100.0 + 600.0  # queued: the queue allowance
    handle.started_at = 250.0
    assert handle.deadline == 250.0 + 60 * 60 + DEADLINE_MARGIN_S  # running: time limit plus margin


# -- launchers inside the allocation --------------------------------------------------


def test_srun_and_mpirun_launchers() -> None:
    amd = SHAPES["amd-2node-srun"]
    argv = slurm_argv(platform_of("a", **amd), WORKLOAD)
    assert argv[:4] == ["srun", "--kill-on-bad-exit=1", "--cpu-bind=closest", "python3"]
    mpi = platform_of("m", **{**amd, "launcher": {"kind": "mpirun", "options": {"np": 16, "extra_args": ["-x", "A"]}}})
    assert slurm_argv(mpi, WORKLOAD)[:6] == ["mpirun", "-np", "16", "-x", "A", "python3"]


def test_single_node_torchrun_is_unchanged() -> None:
    platform = platform_of("t", **SHAPES["nvidia-4gpu-torchrun"])
    assert slurm_argv(platform, WORKLOAD) == TorchrunLauncher(platform).command(
        WORKLOAD, LaunchContext(ranks_per_node=4)
    )


def test_multi_node_torchrun_takes_its_rendezvous_from_slurm() -> None:
    argv = slurm_argv(platform_of("t", **SHAPES["nvidia-2node-torchrun"]), WORKLOAD)
    assert argv[:5] == ["srun", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "bash", "-c"]
    assert '--rdzv-endpoint="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):29400"' in argv[5]
    assert argv[6:9] == ["python3", "--nproc-per-node=4", "-m"]


# -- fake Slurm commands: timeouts, missing commands, interrupted submission --------


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bin directory first on PATH; write fake sbatch/scancel/sacct scripts into it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _backend_and_spec(tmp_path: Path, **options: Any) -> tuple[SlurmBackend, JobSpec]:
    platform = platform_of("p", accelerator={"kind": "cpu"}, backend={"kind": "slurm", "options": options})
    return SlurmBackend(platform), spec_for(platform, workdir=str(tmp_path / "runs"))


def test_sbatch_that_hangs_is_cut_off(fake_slurm: Path, tmp_path: Path) -> None:
    _fake(fake_slurm, "sbatch", "sleep 30")
    backend, spec = _backend_and_spec(tmp_path, command_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(SubmitError, match=r"controller is unreachable: sbatch did not answer within 0.5 s"):
        backend.submit(spec)
    assert time.monotonic() - started < 5


def test_missing_sbatch_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    backend, spec = _backend_and_spec(tmp_path)
    with pytest.raises(SubmitError, match=r"launch: cannot run sbatch: .*is this a Slurm login node\?"):
        backend.submit(spec)


def test_interrupt_during_sbatch_cancels_what_it_submitted(fake_slurm: Path, tmp_path: Path) -> None:
    _fake(fake_slurm, "sbatch", "sleep 1; echo '4242;cluster'")
    _fake(fake_slurm, "scancel", f'echo "$@" > {tmp_path}/scancelled')
    backend, spec = _backend_and_spec(tmp_path)
    threading.Timer(0.3, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        backend.submit(spec)
    assert (tmp_path / "scancelled").read_text().strip() == "4242"


def test_accounting_disabled_fails_at_once(fake_slurm: Path, tmp_path: Path) -> None:
    _fake(fake_slurm, "sbatch", "echo 77")
    _fake(fake_slurm, "sacct", "echo 'sacct: error: Slurm accounting storage is disabled' >&2; exit 1")
    _fake(fake_slurm, "scancel", "true")
    backend, spec = _backend_and_spec(tmp_path)
    handle = backend.submit(spec)
    with pytest.raises(Exception, match=r"needs Slurm accounting \(slurmdbd\)"):
        backend.status(handle)
