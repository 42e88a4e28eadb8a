"""CosmoFlow: trained for real (tiny) on sample datasets written to disk, plus unit checks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from workload_runs import CPU_METRICS, STAGING_METRICS, Run, compliance, finding_keys, run_ok

from pytest_hetero.workloads import cosmoflow
from pytest_hetero.workloads.distributed import DistEnv
from pytest_hetero.workloads.harness import RunShape
from pytest_hetero.workloads.samples import write_sample_dataset

MODULE = "pytest_hetero.workloads.cosmoflow"
OPTIONAL_METRICS = {"energy_j", "avg_power_w", "mfu"}  # where the host exposes RAPL / a peak is given


def test_real_numpy_data_staged_run(tmp_path: Path) -> None:
    # one test, not a module fixture: pytest-xdist would train once per worker
    shared_dir = write_sample_dataset("cosmoflow", tmp_path / "lustre" / "cosmo", 4, 2, size=32)
    node_local = tmp_path / "node-local"
    node_local.mkdir()
    env = {"HETERO_DATA_COSMOFLOW": str(shared_dir), "HETERO_DATA_NODE_LOCAL": str(node_local)}

    staged = run_ok(MODULE, tmp_path / "cwd", {"data": "real", "stage": True, "threads": 1}, env=env)

    assert list(node_local.iterdir()) == []  # the staged copy is removed after the run
    _check_metrics(staged)
    _check_mllog(staged)
    _check_compliance(staged, tmp_path / "checker")


def _check_metrics(staged: Run) -> None:
    units = staged.units
    expected = {**CPU_METRICS, **STAGING_METRICS, "eval_error": ("ratio", False)}

    assert {k: units[k] for k in expected} == expected
    assert set(units) - set(expected) <= OPTIONAL_METRICS
    metrics = staged.metrics
    assert metrics["epochs"] == 2  # tiny: 2 epochs of 4 samples, batch 2
    assert metrics["steady_steps"] == 3  # 4 steps, 1 warm-up
    assert metrics["comm_time_s"] == 0  # one process: no collectives
    assert metrics["read_throughput_mbps"] > 0 and metrics["staging_time_s"] > 0
    assert 0 < metrics["eval_error"] < 5
    assert staged.record["config"]["device"] == "cpu"


def _check_mllog(staged: Run) -> None:
    assert [e["key"] for e in staged.events("staging_stop")] == ["staging_stop"]
    assert staged.events("train_samples")[0]["value"] == 4
    assert staged.events("global_batch_size")[0]["value"] == 2
    assert staged.events("run_stop")[0]["metadata"]["status"] == "aborted"


def _check_compliance(staged: Run, workdir: Path) -> None:
    report = compliance(staged, "hpc", cosmoflow.MLPERF_RULESET, workdir)

    assert "hpc_3.0.0/closed_cosmoflow.yaml" in report.output, report.output
    assert finding_keys(report) == ["eval_error"], report.output
    assert report.returncode == 1


def test_hdf5_layout_trains(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    root = write_sample_dataset("cosmoflow", tmp_path / "cosmo-h5", 4, 1, size=32, layout="hdf5")
    config = {"data": "real", "data_dir": str(root), "data_layout": "hdf5", "epochs": 1, "threads": 1}

    run = run_ok(MODULE, tmp_path / "cwd", config)

    assert run.metrics["steady_steps"] == 1
    assert run.events("train_samples")[0]["value"] == 4
    assert run.events("eval_samples")[0]["value"] == 1


@pytest.mark.slow
def test_two_process_gloo_run_measures_communication(tmp_path: Path) -> None:
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc-per-node=2"]
    config = {"train_samples": 8, "epochs": 1, "threads": 1}

    run = run_ok(MODULE, tmp_path, config, prefix=torchrun)

    assert run.stdout.count(":::HETERO_METRICS") == 1  # rank 0 only
    assert run.metrics["comm_time_s"] > 0
    assert run.events("global_batch_size")[0]["value"] == 4  # 2 ranks x batch 2
    assert run.events("number_of_nodes")[0]["value"] == 1
    assert run.events("accelerators_per_node")[0]["value"] == 2
    assert run.metrics["steady_steps"] == 1  # 8 samples / global batch 4 = 2 steps, 1 warm-up


# --------------------------------------------------------------------------
# in-process checks: model, schedule, config errors
# --------------------------------------------------------------------------


def test_model_matches_the_reference_shapes() -> None:
    with torch.device("meta"):
        model = cosmoflow.CosmoFlow(volume_size=128)
        outputs = model(torch.empty(2, 4, 128, 128, 128))

    assert outputs.shape == (2, 4)
    assert model.head[1].in_features == 512 * 4**3  # five pools: 128 -> 4, 512 filters
    assert sum(p.numel() for p in model.parameters()) == 8_907_556  # the reference Keras model, kernel 3


def test_learning_rate_warms_up_then_decays() -> None:
    config = {**cosmoflow.DEFAULTS, "lr_warmup_epochs": 4}
    shape = RunShape(4, 256, 10, 100, 2560, 64, DistEnv())
    factor = cosmoflow.lr_factor(config, shape)

    def at_epoch(epoch: float) -> float:
        return float(factor(torch.tensor(epoch * 10.0)))

    assert at_epoch(0) == pytest.approx(64 / 256)  # the unscaled base rate
    assert at_epoch(2) == pytest.approx(0.25 + 0.75 / 2)
    assert at_epoch(10) == pytest.approx(1.0)
    assert at_epoch(40) == pytest.approx(0.25)
    assert at_epoch(70) == pytest.approx(0.125)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"preset": "huge"}, "'preset' must be one of tiny, standard, subset"),
        ({"volume_size": 48}, "'volume_size' must be a power of 2 >= 32"),
        ({"precision": "fp16", "device": "cpu"}, "fp16' needs a GPU"),
        ({"device": "nvidia-gpu"}, "torch.cuda.is_available() is False"),
        ({"device": "graphcore-ipu"}, "needs the Python package 'poptorch'"),
        ({"device": "cerebras"}, "needs the Python package 'cerebras.pytorch'"),
        ({"data": "real"}, "$HETERO_DATA_COSMOFLOW"),
        ({"data": "real", "data_dir": "/nonexistent"}, "does not exist"),
        ({"epochs": 1, "train_samples": 2}, "leaves no steady step"),
    ],
    ids=["preset", "volume", "fp16-cpu", "no-cuda", "no-poptorch", "no-cerebras", "no-data", "bad-dir", "no-steady"],
)
def test_config_errors_exit_2_naming_the_problem(
    config: dict[str, object], fragment: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if torch.cuda.is_available() and config.get("device") == "nvidia-gpu":
        pytest.skip("this machine has CUDA")
    for name in ("HETERO_DATA_COSMOFLOW", "HETERO_ACCELERATOR_KIND", "HETERO_WORKLOAD_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "poptorch", None)
    monkeypatch.setitem(sys.modules, "cerebras", None)
    # mlperf_logging keeps one handler on the sys.stdout of its first use: capsys swaps stdout per test
    monkeypatch.setitem(sys.modules, "mlperf_logging", None)

    with pytest.raises(SystemExit) as exit_info:
        cosmoflow.main(["--config-json", json.dumps(config)])

    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m pytest_hetero.workloads.cosmoflow: config error:"), err
    assert fragment in err
