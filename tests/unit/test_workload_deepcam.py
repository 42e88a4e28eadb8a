"""DeepCAM: trained for real (tiny, 64x96) on sample datasets written to disk, plus unit checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from workload_runs import CPU_METRICS, compliance, finding_keys, run_ok

from pytest_hetero.workloads import deepcam
from pytest_hetero.workloads.deeplab import DeepLabV3Plus
from pytest_hetero.workloads.distributed import DistEnv
from pytest_hetero.workloads.harness import RunShape
from pytest_hetero.workloads.samples import write_sample_dataset

MODULE = "pytest_hetero.workloads.deepcam"
# a short run cannot reach the quality target, and the HPC rules pin the dataset sizes
EXPECTED_FINDINGS = ["train_samples", "eval_samples", "eval_accuracy"]


def test_real_numpy_data_run_metrics_and_compliance(tmp_path: Path) -> None:
    # one test, not a module fixture: pytest-xdist would train once per worker
    root = write_sample_dataset("deepcam", tmp_path / "ceph" / "deepcam", 4, 2, size=64)
    config = {"data": "real", "data_layout": "numpy", "threads": 1}
    numpy_run = run_ok(MODULE, tmp_path / "cwd", config, env={"HETERO_DATA_DEEPCAM": str(root)})
    expected = {**CPU_METRICS, "eval_accuracy": ("ratio", True)}

    assert {k: numpy_run.units[k] for k in expected} == expected
    assert numpy_run.metrics["epochs"] == 2
    assert numpy_run.metrics["steady_steps"] == 3  # 2 epochs x 2 steps, 1 warm-up
    assert 0 <= numpy_run.metrics["eval_accuracy"] <= 1
    assert numpy_run.events("train_samples")[0]["value"] == 4
    assert numpy_run.events("opt_name")[0]["value"] == "AdamW"

    report = compliance(numpy_run, "hpc", deepcam.MLPERF_RULESET, tmp_path / "checker")

    assert "hpc_3.0.0/closed_deepcam_multistep.yaml" in report.output, report.output
    assert finding_keys(report) == EXPECTED_FINDINGS, report.output


def test_hdf5_layout_reads_the_reference_keys(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    from pytest_hetero.workloads.datasets import DeepCamDataset

    root = write_sample_dataset("deepcam", tmp_path / "deepcam-h5", 2, 1, size=32, layout="hdf5")
    dataset = DeepCamDataset(root, "train", "auto", DistEnv())

    data, label = dataset[0]
    assert dataset.layout == "hdf5"
    assert data.shape == (16, 32, 48) and label.shape == (32, 48)
    assert float(data.min()) >= 0 and float(data.max()) <= 1  # min-max scaled by stats.h5


def test_model_output_has_the_input_resolution() -> None:
    with torch.device("meta"):
        model = DeepLabV3Plus(16, 3)
        logits = model(torch.empty(1, 16, 768, 1152))

    assert logits.shape == (1, 3, 768, 1152)
    assert sum(p.numel() for p in model.parameters()) == 56_454_720  # pins the architecture against accidental change


def test_iou_score_counts_absent_classes_as_perfect() -> None:
    labels = torch.tensor([[[0, 0], [1, 1]]])
    perfect = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    half = torch.nn.functional.one_hot(torch.tensor([[[0, 0], [1, 0]]]), 3).permute(0, 3, 1, 2).float()

    iou_sum, samples = deepcam.score(perfect, labels)
    assert iou_sum == pytest.approx(1.0) and samples == 1.0
    # class 0: 2/3, class 1: 1/2, class 2 absent in both: 1
    assert deepcam.score(half, labels)[0] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_warmup_then_milestone_decay() -> None:
    config = {**deepcam.DEFAULTS, "lr_warmup_steps": 400, "lr_warmup_factor": 1.0, "lr_milestone_step": 800}
    factor = deepcam.lr_factor(config, RunShape(1, 2048, 10, 1, 20, 2, DistEnv()))  # the reference's global batch

    assert float(factor(torch.tensor(200.0))) == pytest.approx(0.5)
    assert float(factor(torch.tensor(1000.0))) == pytest.approx(1.0)
    assert float(factor(torch.tensor(1300.0))) == pytest.approx(0.1)


def test_warmup_and_milestone_scale_with_the_global_batch() -> None:
    """The reference's 400 + 800 steps are sized for global batch 2048: at 512, four times as many steps."""
    config = {**deepcam.DEFAULTS, "lr_warmup_steps": 400, "lr_milestone_step": 800}
    factor = deepcam.lr_factor(config, RunShape(2, 512, 10, 1, 20, 2, DistEnv()))

    assert float(factor(torch.tensor(800.0))) == pytest.approx(0.5)
    assert float(factor(torch.tensor(1600.0 + 3199.0))) == pytest.approx(1.0)
    assert float(factor(torch.tensor(1600.0 + 3200.0))) == pytest.approx(0.1)
    assert deepcam.hyperparameters(config, RunShape(2, 512, 10, 1, 20, 2, DistEnv()))["scheduler_milestones"] == [3200]
