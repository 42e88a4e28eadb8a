"""Write small sample datasets in each real on-disk layout the workloads read.

A centre uses them to check a data root and its filesystem before the real
dataset is there (staging time and read throughput are measured the same
way), and the test suite trains on them::

    python -m pytest_hetero.workloads.samples cosmoflow /lustre/bench/cosmo-sample --train 8 --size 32
    python -m pytest_hetero.workloads.samples deepcam DIR --layout numpy
    python -m pytest_hetero.workloads.samples kits19 DIR --size 64
    python -m pytest_hetero.workloads.samples imagenet DIR --layout npy

The values are random but have the right shapes, dtypes and ranges
(layouts: :mod:`.datasets`). ``hdf5`` layouts need h5py, ``image`` needs Pillow.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from pytest_hetero.workloads.data import npy_bytes, optional_h5py, write_npy

__all__ = ["WRITERS", "write_sample_dataset"]

SPLITS = ("train", "validation")


def _h5py() -> Any:
    module = optional_h5py()
    if module is None:
        raise SystemExit("the hdf5 layout needs h5py (pip install h5py)")
    return module


def _cosmoflow(root: Path, split: str, index: int, size: int, layout: str, generator: torch.Generator) -> None:
    counts = torch.randint(0, 50, (size, size, size, 4), generator=generator, dtype=torch.int16)
    params = torch.rand(4, generator=generator) * 2 - 1
    name = f"univ_{split}_{index:05d}"
    if layout == "hdf5":
        with _h5py().File(root / split / f"{name}.hdf5", "w") as handle:
            handle["full"], handle["unitPar"] = counts.numpy(), params.numpy()
        return
    write_npy(root / split / f"{name}_data.npy", counts)
    write_npy(root / split / f"{name}_label.npy", params)


def _deepcam(root: Path, split: str, index: int, size: int, layout: str, generator: torch.Generator) -> None:
    height, width = size, size * 3 // 2
    data = torch.rand((height, width, 16), generator=generator) * 100
    label = torch.randint(0, 3, (height, width), generator=generator, dtype=torch.int32)
    name = f"{index:06d}"
    if layout == "hdf5":
        with _h5py().File(root / split / f"data-{name}.h5", "w") as handle:
            handle["climate/data"], handle["climate/labels_0"] = data.numpy(), label.numpy()
        return
    write_npy(root / split / f"data-{name}.npy", data)
    write_npy(root / split / f"label-{name}.npy", label)


def _deepcam_stats(root: Path, layout: str) -> None:
    minval, maxval = torch.zeros(16), torch.full((16,), 100.0)
    if layout == "hdf5":
        with _h5py().File(root / "stats.h5", "w") as handle:
            handle["climate/minval"], handle["climate/maxval"] = minval.numpy(), maxval.numpy()
        return
    with zipfile.ZipFile(root / "stats.npz", "w") as archive:
        for name, values in (("minval", minval), ("maxval", maxval)):
            archive.writestr(f"{name}.npy", npy_bytes(values))


def _kits19(root: Path, split: str, index: int, size: int, layout: str, generator: torch.Generator) -> None:
    image = torch.randn((1, size, size, size), generator=generator)
    label = torch.zeros((1, size, size, size), dtype=torch.uint8)
    quarter = size // 4
    label[:, quarter : 3 * quarter, quarter : 3 * quarter, quarter : 3 * quarter] = 1  # a kidney
    label[:, quarter : quarter + 4, quarter : quarter + 4, quarter : quarter + 4] = 2  # and a tumour
    case = f"case_{index + (0 if split == 'train' else 1000):05d}"
    write_npy(root / split / f"{case}_x.npy", image)
    write_npy(root / split / f"{case}_y.npy", label)


def _imagenet(root: Path, split: str, index: int, size: int, layout: str, generator: torch.Generator) -> None:
    directory = root / split / f"n{index % 2:08d}"  # two classes
    directory.mkdir(parents=True, exist_ok=True)
    pixels = torch.randint(0, 256, (size, size * 5 // 4, 3), generator=generator, dtype=torch.uint8)
    if layout == "npy":
        write_npy(directory / f"img_{index:05d}.npy", pixels)
        return
    from PIL import Image

    Image.frombytes("RGB", (pixels.shape[1], pixels.shape[0]), pixels.numpy().tobytes()).save(
        directory / f"img_{index:05d}.jpeg"
    )


Writer = Callable[[Path, str, int, int, str, torch.Generator], None]
WRITERS: dict[str, tuple[Writer, tuple[str, ...]]] = {
    "cosmoflow": (_cosmoflow, ("numpy", "hdf5")),
    "deepcam": (_deepcam, ("numpy", "hdf5")),
    "kits19": (_kits19, ("numpy",)),
    "imagenet": (_imagenet, ("npy", "image")),
}


def write_sample_dataset(
    kind: str, root: Path, train: int, validation: int, size: int, layout: str = "", seed: int = 0
) -> Path:
    """Write ``train`` + ``validation`` samples of ``kind`` under ``root``; return ``root``."""
    writer, layouts = WRITERS[kind]
    layout = layout or layouts[0]
    if layout not in layouts:
        raise ValueError(f"{kind} has layouts {', '.join(layouts)}; got {layout!r}")
    generator = torch.Generator().manual_seed(seed)
    for split, count in zip(SPLITS, (train, validation), strict=True):
        (root / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            writer(root, split, index, size, layout, generator)
    if kind == "deepcam":
        _deepcam_stats(root, layout)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_hetero.workloads.samples", description=__doc__)
    parser.add_argument("kind", choices=sorted(WRITERS))
    parser.add_argument("root", type=Path)
    parser.add_argument("--train", type=int, default=8, help="training samples (default 8)")
    parser.add_argument("--validation", type=int, default=2, help="validation samples (default 2)")
    parser.add_argument("--size", type=int, default=32, help="edge length in voxels/pixels (default 32)")
    parser.add_argument("--layout", default="", help="default: the first layout of the kind")
    args = parser.parse_args(argv)
    write_sample_dataset(args.kind, args.root, args.train, args.validation, args.size, args.layout)
    print(f"wrote a {args.kind} sample dataset to {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
