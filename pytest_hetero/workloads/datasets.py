"""Readers for the real datasets, in the on-disk layouts the workloads accept.

Every layout has ``train/`` and ``validation/`` under the dataset root
(``val/`` is accepted for ImageNet). Each rank reads its own shard: file
``i`` of a split goes to rank ``i % world_size``.

============  =========  ======================================================
workload      layout     files per sample
============  =========  ======================================================
cosmoflow     ``hdf5``   ``*.h5``/``*.hdf5``: ``full`` (D, H, W, 4) counts, ``unitPar`` (4,)
cosmoflow     ``numpy``  ``<name>_data.npy`` (D, H, W, 4) + ``<name>_label.npy`` (4,)
deepcam       ``hdf5``   ``data-*.h5``: ``climate/data`` (H, W, 16), ``climate/labels_0`` (H, W);
                         ``stats.h5`` at the root: ``climate/minval``, ``climate/maxval`` (16,)
deepcam       ``numpy``  ``data-<id>.npy`` (H, W, 16) + ``label-<id>.npy`` (H, W); ``stats.npz``
                         at the root with ``minval.npy`` and ``maxval.npy`` (16,)
unet3d        ``numpy``  KiTS19 as MLPerf preprocesses it: ``case_<id>_x.npy`` (1, D, H, W)
                         float32 image, ``case_<id>_y.npy`` (1, D, H, W) uint8 labels
resnet50      ``image``  ``<class>/<image>.{jpeg,jpg,png}`` (needs Pillow)
resnet50      ``npy``    ``<class>/<image>.npy``: (H, W, 3) uint8 (no Pillow needed)
============  =========  ======================================================

``auto`` picks hdf5 when h5py is installed and ``.h5`` files are there, else
numpy (and ``image`` when Pillow is installed and images are there).
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from pytest_hetero.workloads.common import WorkloadConfigError
from pytest_hetero.workloads.data import optional_h5py, parse_npy, read_npy
from pytest_hetero.workloads.distributed import DistEnv

__all__ = ["CosmoFlowDataset", "DeepCamDataset", "ImageFolderDataset", "Kits19Dataset", "split_dir"]

Sample = tuple[torch.Tensor, torch.Tensor]
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def split_dir(root: Path, split: str) -> Path:
    """``root/train`` or ``root/validation`` (``val`` also accepted); WorkloadConfigError if absent."""
    names = ("train",) if split == "train" else ("validation", "val")
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise WorkloadConfigError(f"dataset {root} has no {' or '.join(names)} directory")


def _shard(files: list[Path], env: DistEnv, limit: int, what: str) -> list[Path]:
    if not files:
        raise WorkloadConfigError(f"no {what} found")
    chosen = files[:limit] if limit > 0 else files
    return chosen[env.rank :: env.world_size]


def choose_layout(requested: str, directory: Path, hdf5_glob: str = "*.h5") -> str:
    """Resolve ``auto``; WorkloadConfigError when hdf5 is asked for without h5py."""
    if requested == "hdf5" and optional_h5py() is None:
        raise WorkloadConfigError("config key 'data_layout' is 'hdf5' but h5py is not installed (pip install h5py)")
    if requested != "auto":
        return requested
    has_h5 = any(directory.glob(hdf5_glob)) or any(directory.glob("*.hdf5"))
    return "hdf5" if has_h5 and optional_h5py() is not None else "numpy"


# --------------------------------------------------------------------------
# CosmoFlow
# --------------------------------------------------------------------------


class CosmoFlowDataset(Dataset[Sample]):
    """Dark-matter density volumes and their 4 cosmological parameters.

    Input transform of the reference: ``log(1 + counts)``, channels first.
    """

    def __init__(self, directory: Path, layout: str, env: DistEnv, limit: int = 0) -> None:
        self.layout = choose_layout(layout, directory)
        if self.layout == "hdf5":
            files = sorted([*directory.glob("*.h5"), *directory.glob("*.hdf5")])
        else:
            files = sorted(directory.glob("*_data.npy"))
        self.files = _shard(files, env, limit, f"CosmoFlow {self.layout} samples in {directory}")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        path = self.files[index]
        if self.layout == "hdf5":
            with _h5_file(path) as handle:
                volume, label = torch.from_numpy(handle["full"][...]), torch.from_numpy(handle["unitPar"][...])
        else:
            volume, label = read_npy(path), read_npy(path.with_name(path.name.replace("_data.npy", "_label.npy")))
        return torch.log1p(volume.float()).permute(3, 0, 1, 2).contiguous(), label.float()


def _h5_file(path: Path) -> Any:
    h5py = optional_h5py()
    if h5py is None:
        raise WorkloadConfigError(f"{path} is HDF5 but h5py is not installed (pip install h5py)")
    return h5py.File(path, "r")


# --------------------------------------------------------------------------
# DeepCAM
# --------------------------------------------------------------------------


class DeepCamDataset(Dataset[Sample]):
    """Climate snapshots (16 channels) with per-pixel labels 0/1/2, min-max scaled."""

    def __init__(self, root: Path, split: str, layout: str, env: DistEnv, limit: int = 0) -> None:
        directory = split_dir(root, split)
        self.layout = choose_layout(layout, directory, "data-*.h5")
        suffix = ".h5" if self.layout == "hdf5" else ".npy"
        files = sorted(directory.glob(f"data-*{suffix}"))
        self.files = _shard(files, env, limit, f"DeepCAM {self.layout} samples in {directory}")
        minval, maxval = _deepcam_stats(root, self.layout)
        self.shift = minval.view(-1, 1, 1)
        self.scale = (1.0 / (maxval - minval).clamp_min(1e-12)).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        path = self.files[index]
        if self.layout == "hdf5":
            with _h5_file(path) as handle:
                data = torch.from_numpy(handle["climate/data"][...])
                label = torch.from_numpy(handle["climate/labels_0"][...])
        else:
            data, label = read_npy(path), read_npy(path.with_name(path.name.replace("data-", "label-", 1)))
        data = data.float().permute(2, 0, 1)
        return (data - self.shift) * self.scale, label.long()


def _deepcam_stats(root: Path, layout: str) -> tuple[torch.Tensor, torch.Tensor]:
    if layout == "hdf5":
        with _h5_file(root / "stats.h5") as handle:
            return torch.from_numpy(handle["climate/minval"][...]).float(), torch.from_numpy(
                handle["climate/maxval"][...]
            ).float()
    path = root / "stats.npz"
    if not path.is_file():
        raise WorkloadConfigError(f"DeepCAM numpy layout needs {path} (minval.npy, maxval.npy)")
    with zipfile.ZipFile(path) as archive:
        return (
            parse_npy(archive.read("minval.npy"), f"{path}:minval").float(),
            parse_npy(archive.read("maxval.npy"), f"{path}:maxval").float(),
        )


# --------------------------------------------------------------------------
# KiTS19 (3D U-Net)
# --------------------------------------------------------------------------


class Kits19Dataset(Dataset[Sample]):
    """Preprocessed KiTS19 cases; training samples are random patches.

    Training: a ``patch_size``-cube crop, around a foreground voxel with
    probability ``oversampling`` (MLPerf: 0.4), else anywhere, then random
    flips. Evaluation (``patch_size`` 0): the whole case, for sliding-window
    inference. Volumes smaller than a patch are zero-padded.
    """

    def __init__(
        self, directory: Path, env: DistEnv, patch_size: int, oversampling: float, seed: int, limit: int = 0
    ) -> None:
        files = sorted(directory.glob("case_*_x.npy"))
        self.files = _shard(files, env, limit, f"KiTS19 cases (case_*_x.npy) in {directory}")
        self.patch_size = patch_size
        self.oversampling = oversampling
        self.generator = torch.Generator().manual_seed(seed + env.rank)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        path = self.files[index]
        image = read_npy(path).float()
        label = read_npy(path.with_name(path.name.replace("_x.npy", "_y.npy"))).long()
        if not self.patch_size:
            return image, label
        image, label = _pad_to(image, self.patch_size), _pad_to(label, self.patch_size)
        corner = self._corner(label)
        window = (slice(None), *(slice(c, c + self.patch_size) for c in corner))
        image, label = image[window], label[window]
        return _random_flip(image, label, self.generator)

    def _corner(self, label: torch.Tensor) -> list[int]:
        shape = label.shape[1:]
        foreground = (label[0] > 0).nonzero()
        if len(foreground) and float(torch.rand((), generator=self.generator)) < self.oversampling:
            center = foreground[int(torch.randint(len(foreground), (), generator=self.generator))]
            return [
                int(min(max(0, int(c) - self.patch_size // 2), n - self.patch_size))
                for c, n in zip(center, shape, strict=True)
            ]
        return [int(torch.randint(n - self.patch_size + 1, (), generator=self.generator)) for n in shape]


def _pad_to(volume: torch.Tensor, size: int) -> torch.Tensor:
    pads: list[int] = []
    for n in reversed(volume.shape[1:]):
        pads += [0, max(0, size - n)]
    return F.pad(volume, pads) if any(pads) else volume


def _random_flip(image: torch.Tensor, label: torch.Tensor, generator: torch.Generator) -> Sample:
    for axis in (1, 2, 3):
        if float(torch.rand((), generator=generator)) < 0.5:
            image, label = image.flip(axis), label.flip(axis)
    return image.contiguous(), label.contiguous()


# --------------------------------------------------------------------------
# ImageNet (image folder)
# --------------------------------------------------------------------------


class ImageFolderDataset(Dataset[Sample]):
    """``<class>/<file>`` images; classes are the sorted sub-directory names.

    ``image`` layout decodes with Pillow; ``npy`` reads (H, W, 3) uint8 arrays.
    Training: random square crop of the shorter side, resize, random flip;
    evaluation: centre crop. Both normalise with the ImageNet mean and std.
    """

    def __init__(self, directory: Path, layout: str, image_size: int, train: bool, env: DistEnv, seed: int) -> None:
        classes = sorted(p.name for p in directory.iterdir() if p.is_dir())
        self.layout = _image_layout(layout, directory)
        suffixes = IMAGE_SUFFIXES if self.layout == "image" else (".npy",)
        files = sorted(p for c in classes for p in (directory / c).iterdir() if p.suffix.lower() in suffixes)
        self.files = _shard(files, env, 0, f"{self.layout} files in {directory}/<class>/")
        self.class_index = {name: index for index, name in enumerate(classes)}
        self.image_size, self.train = image_size, train
        self.generator = torch.Generator().manual_seed(seed + env.rank)
        self._decode: Callable[[Path], torch.Tensor] = _decode_image if self.layout == "image" else read_npy

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        path = self.files[index]
        pixels = self._decode(path).permute(2, 0, 1).float() / 255.0
        pixels = _square_crop(pixels, self.generator if self.train else None)
        pixels = F.interpolate(pixels[None], size=(self.image_size,) * 2, mode="bilinear", antialias=True)[0]
        if self.train and float(torch.rand((), generator=self.generator)) < 0.5:
            pixels = pixels.flip(2)
        mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
        return (pixels - mean) / std, torch.tensor(self.class_index[path.parent.name])


def _image_layout(requested: str, directory: Path) -> str:
    if requested == "image" and _pillow() is None:
        raise WorkloadConfigError(
            "config key 'data_layout' is 'image' but Pillow is not installed; use the 'npy' layout"
        )
    if requested != "auto":
        return requested
    has_images = any(p.suffix.lower() in IMAGE_SUFFIXES for p in directory.glob("*/*"))
    return "image" if has_images and _pillow() is not None else "npy"


def _pillow() -> Any | None:
    try:
        return importlib.import_module("PIL.Image")
    except ImportError:
        return None


def _decode_image(path: Path) -> torch.Tensor:
    image_module: Any = _pillow()
    with image_module.open(path) as image:
        rgb = image.convert("RGB")
        data = bytearray(rgb.tobytes())
        return torch.frombuffer(data, dtype=torch.uint8).view(rgb.height, rgb.width, 3)


def _square_crop(pixels: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    height, width = pixels.shape[1:]
    side = min(height, width)
    if generator is None:
        top, left = (height - side) // 2, (width - side) // 2
    else:
        top = int(torch.randint(height - side + 1, (), generator=generator))
        left = int(torch.randint(width - side + 1, (), generator=generator))
    return pixels[:, top : top + side, left : left + side]
