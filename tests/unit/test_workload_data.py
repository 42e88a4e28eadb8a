"""Data plumbing of the workloads: .npy without numpy, staging, sample datasets and readers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pytest_hetero.workloads import data as datalib
from pytest_hetero.workloads.common import WorkloadConfigError
from pytest_hetero.workloads.datasets import CosmoFlowDataset, DeepCamDataset, ImageFolderDataset, split_dir
from pytest_hetero.workloads.distributed import DistEnv
from pytest_hetero.workloads.samples import main as samples_main
from pytest_hetero.workloads.samples import write_sample_dataset

DTYPES = [torch.float32, torch.float64, torch.float16, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_npy_round_trip_agrees_with_numpy(dtype: torch.dtype, tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    tensor = (torch.arange(24).reshape(2, 3, 4) % 3).to(dtype)
    ours, theirs = tmp_path / "ours.npy", tmp_path / "theirs.npy"

    datalib.write_npy(ours, tensor)
    np.save(theirs, tensor.numpy())

    assert np.array_equal(np.load(ours), tensor.numpy())
    assert torch.equal(datalib.read_npy(theirs), tensor)
    assert torch.equal(datalib.read_npy(ours), tensor)


def test_npy_of_a_vector_and_a_scalar_shape(tmp_path: Path) -> None:
    datalib.write_npy(tmp_path / "v.npy", torch.tensor([1.5, 2.5]))

    assert datalib.read_npy(tmp_path / "v.npy").tolist() == [1.5, 2.5]


def test_npy_refuses_fortran_order_and_non_npy(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    np.save(tmp_path / "f.npy", np.asfortranarray(np.ones((2, 3), dtype=np.float32)))
    (tmp_path / "x.npy").write_bytes(b"not numpy")

    with pytest.raises(WorkloadConfigError, match=r"unsupported \.npy dtype/order"):
        datalib.read_npy(tmp_path / "f.npy")
    with pytest.raises(WorkloadConfigError, match=r"is not a \.npy file"):
        datalib.read_npy(tmp_path / "x.npy")


# --------------------------------------------------------------------------
# where the data is, staging
# --------------------------------------------------------------------------


def test_data_dir_from_config_then_platform_data_root(tmp_path: Path) -> None:
    env = {"HETERO_DATA_COSMOFLOW": str(tmp_path)}

    assert datalib.resolve_data_dir("", "cosmoflow", env) == tmp_path
    assert datalib.resolve_data_dir(str(tmp_path), "cosmoflow", {}) == tmp_path
    with pytest.raises(WorkloadConfigError, match=r"\$HETERO_DATA_COSMOFLOW"):
        datalib.resolve_data_dir("", "cosmoflow", {})
    with pytest.raises(WorkloadConfigError, match="does not exist"):
        datalib.resolve_data_dir("", "cosmoflow", {"HETERO_DATA_COSMOFLOW": str(tmp_path / "gone")})


def test_stage_dir_precedence(tmp_path: Path) -> None:
    env = {"HETERO_DATA_NODE_LOCAL": "/local/nvme"}

    assert datalib.resolve_stage_dir("/explicit", env) == Path("/explicit")
    assert datalib.resolve_stage_dir("", env) == Path("/local/nvme")
    assert datalib.resolve_stage_dir("", {}).is_absolute()


def test_staging_copies_every_byte_and_times_it(tmp_path: Path) -> None:
    source = write_sample_dataset("cosmoflow", tmp_path / "shared" / "cosmo", 2, 1, size=32)
    total_bytes = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    waited: list[bool] = []

    result = datalib.stage(source, tmp_path / "local", "run1", copy=True, wait=lambda: waited.append(True))

    assert result.target == tmp_path / "local" / "hetero-stage-run1" / "cosmo"
    assert (result.bytes_copied, result.files) == (total_bytes, 6)
    assert sorted(p.name for p in result.target.rglob("*.npy")) == sorted(p.name for p in source.rglob("*.npy"))
    assert result.read_throughput_mbps == pytest.approx(total_bytes / 1e6 / result.staging_time_s)
    assert waited == [True]
    datalib.remove_staged(result)
    assert not (tmp_path / "local" / "hetero-stage-run1").exists()


def test_ranks_that_do_not_copy_only_wait(tmp_path: Path) -> None:
    result = datalib.stage(tmp_path, tmp_path / "local", "r", copy=False)

    assert (result.bytes_copied, result.files) == (0, 0)
    assert not result.target.exists()


# --------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------


def test_cosmoflow_numpy_reader_and_sharding(tmp_path: Path) -> None:
    root = write_sample_dataset("cosmoflow", tmp_path / "c", 5, 1, size=32)

    rank0 = CosmoFlowDataset(root / "train", "auto", DistEnv(0, 2, 0, 2, "test"))
    rank1 = CosmoFlowDataset(root / "train", "numpy", DistEnv(1, 2, 1, 2, "test"))

    assert (len(rank0), len(rank1), rank0.layout) == (3, 2, "numpy")
    volume, label = rank0[0]
    assert volume.shape == (4, 32, 32, 32) and label.shape == (4,)
    assert float(volume.min()) >= 0  # log(1 + counts)


def test_cosmoflow_hdf5_reader(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    root = write_sample_dataset("cosmoflow", tmp_path / "c", 1, 1, size=32, layout="hdf5")

    dataset = CosmoFlowDataset(root / "train", "auto", DistEnv())

    assert dataset.layout == "hdf5"
    assert dataset[0][0].shape == (4, 32, 32, 32)


def test_hdf5_layout_without_h5py_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)

    with pytest.raises(WorkloadConfigError, match="h5py is not installed"):
        CosmoFlowDataset(tmp_path, "hdf5", DistEnv())


def test_deepcam_numpy_reader_scales_with_stats(tmp_path: Path) -> None:
    root = write_sample_dataset("deepcam", tmp_path / "d", 2, 1, size=32)

    data, label = DeepCamDataset(root, "validation", "numpy", DistEnv())[0]

    assert data.shape == (16, 32, 48) and label.dtype == torch.int64
    assert float(data.min()) >= 0 and float(data.max()) <= 1


@pytest.mark.parametrize("layout", ["image", "npy"])
def test_image_folder_reader(layout: str, tmp_path: Path) -> None:
    if layout == "image":
        pytest.importorskip("PIL")
    root = write_sample_dataset("imagenet", tmp_path / "i", 4, 2, size=40, layout=layout)

    train = ImageFolderDataset(
        split_dir(root, "train"), "auto" if layout == "image" else layout, 32, True, DistEnv(), 0
    )

    assert train.layout == layout
    image, label = train[1]
    assert image.shape == (3, 32, 32) and int(label) in (0, 1)


def test_missing_split_and_empty_dir_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkloadConfigError, match="no validation or val directory"):
        split_dir(tmp_path, "validation")
    with pytest.raises(WorkloadConfigError, match="no CosmoFlow numpy samples"):
        CosmoFlowDataset(tmp_path, "numpy", DistEnv())


def test_samples_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert samples_main(["kits19", str(tmp_path / "k"), "--train", "1", "--validation", "1", "--size", "8"]) == 0

    assert "wrote a kits19 sample dataset" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "k").rglob("*.npy")) == [
        "case_00000_x.npy",
        "case_00000_y.npy",
        "case_01000_x.npy",
        "case_01000_y.npy",
    ]


def test_synthetic_batches_cycle_a_small_pool() -> None:
    made: list[int] = []

    def make(generator: torch.Generator, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        made.append(1)
        return datalib.randn((2, 3), generator, device), datalib.randint(5, (2,), generator, device)

    batches = datalib.SyntheticBatches(make, torch.device("cpu"), steps=5, seed=0)

    assert len(list(batches)) == len(batches) == 5
    assert len(made) == 2
    assert datalib.randn((2,), torch.Generator(), torch.device("meta")).device.type == "meta"
