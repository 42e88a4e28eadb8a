"""3D U-Net: trained for real (tiny, 64^3 patches) on a KiTS19-layout sample, plus unit checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from workload_runs import CPU_METRICS, compliance, finding_keys, run_ok

from pytest_hetero.workloads import unet3d
from pytest_hetero.workloads.datasets import Kits19Dataset
from pytest_hetero.workloads.distributed import DistEnv
from pytest_hetero.workloads.samples import write_sample_dataset

MODULE = "pytest_hetero.workloads.unet3d"
EXPECTED_FINDINGS = ["train_samples", "eval_samples", "eval_accuracy"]  # 168/42 cases are pinned


@pytest.fixture(scope="module")
def kits19(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_dataset("kits19", tmp_path_factory.mktemp("data") / "kits19", 2, 1, size=64)


def test_real_kits19_run_metrics_and_compliance(kits19: Path, tmp_path: Path) -> None:
    # one test, not a module fixture: pytest-xdist would run the 64^3 training once per worker
    real_run = run_ok(MODULE, tmp_path / "cwd", {"data": "real", "data_dir": str(kits19), "threads": 1})
    expected = {**CPU_METRICS, "eval_accuracy": ("ratio", True)}

    assert {k: real_run.units[k] for k in expected} == expected
    assert real_run.metrics["steady_steps"] == 1  # 2 cases, batch 1, 1 warm-up step
    assert 0 <= real_run.metrics["eval_accuracy"] <= 1
    assert real_run.events("training_input_shape")[0]["value"] == [64, 64, 64]

    report = compliance(real_run, "training", unet3d.MLPERF_RULESET, tmp_path / "checker")

    assert "training_4.0.0/closed_unet3d.yaml" in report.output, report.output
    assert finding_keys(report) == EXPECTED_FINDINGS, report.output


def test_training_patches_are_cropped_padded_and_oversampled(kits19: Path) -> None:
    dataset = Kits19Dataset(kits19 / "train", DistEnv(), patch_size=96, oversampling=1.0, seed=0)

    image, label = dataset[0]
    assert image.shape == label.shape == (1, 96, 96, 96)  # 64^3 cases zero-padded to the patch
    assert int((label > 0).sum()) > 0  # oversampling 1.0: always around foreground


def test_sliding_window_covers_every_voxel_once_weighted() -> None:
    config = {**unet3d.DEFAULTS, "patch_size": 64, "overlap": 0.5}
    calls: list[tuple[int, ...]] = []

    def predict(patch: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(patch.shape))
        return torch.ones((patch.shape[0], 3, *patch.shape[2:]))

    logits = unet3d.sliding_window(config, predict, torch.zeros(1, 1, 96, 64, 64))

    assert logits.shape == (1, 3, 96, 64, 64)
    assert torch.allclose(logits, torch.ones_like(logits))  # a weighted mean of ones
    assert len(calls) == 2  # starts 0 and 32 along the first axis


def test_dice_score_is_one_for_a_perfect_prediction() -> None:
    labels = torch.zeros((1, 1, 4, 4, 4), dtype=torch.long)
    labels[..., :2] = 1
    labels[..., 3] = 2
    logits = torch.nn.functional.one_hot(labels[:, 0], 3).permute(0, 4, 1, 2, 3).float()

    dice_sum, cases = unet3d.score(logits, labels)
    assert dice_sum == pytest.approx(1.0) and cases == 1.0


def test_model_matches_the_reference_parameter_count() -> None:
    with torch.device("meta"):
        model = unet3d.UNet3D()
        logits = model(torch.empty(1, 1, 128, 128, 128))

    assert logits.shape == (1, 3, 128, 128, 128)
    assert sum(p.numel() for p in model.parameters()) == 31_190_243  # as the reference layer definitions count
