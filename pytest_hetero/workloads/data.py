"""Data plumbing shared by the workloads: ``.npy`` files, staging, synthetic batches.

``.npy`` files are read and written with the standard library and torch
alone (no numpy needed), so the numpy-layout readers work in any image.

Where the data is: the config's ``data_dir``, else the platform's data root
``HETERO_DATA_<DATASET>`` (the plugin exports one per ``data_roots`` entry).
Staging copies it to node-local storage first: the config's ``stage_dir``,
else ``HETERO_DATA_NODE_LOCAL``, else ``$TMPDIR``; on each node only local
rank 0 copies, and the run reports ``staging_time_s`` and
``read_throughput_mbps`` (megabytes, 10^6 bytes, read from the shared
filesystem per second).
"""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pytest_hetero.workloads.common import WorkloadConfigError
from pytest_hetero.workloads.protocol import DATA_NODE_LOCAL_ENV, data_env_name

__all__ = [
    "StagingResult",
    "SyntheticBatches",
    "npy_bytes",
    "optional_h5py",
    "parse_npy",
    "rand",
    "randint",
    "randn",
    "read_npy",
    "remove_staged",
    "resolve_data_dir",
    "resolve_stage_dir",
    "stage",
    "write_npy",
]

_MAGIC = b"\x93NUMPY"
_DTYPES = {
    "<f4": torch.float32,
    "<f8": torch.float64,
    "<f2": torch.float16,
    "<i2": torch.int16,
    "<i4": torch.int32,
    "<i8": torch.int64,
    "|u1": torch.uint8,
    "|i1": torch.int8,
    "|b1": torch.bool,
}
_DESCRS = {dtype: descr for descr, dtype in _DTYPES.items()}


# --------------------------------------------------------------------------
# .npy without numpy
# --------------------------------------------------------------------------


def read_npy(path: Path) -> torch.Tensor:
    """Load a little-endian, C-order ``.npy`` file (format 1.0-3.0) as a tensor."""
    return parse_npy(path.read_bytes(), str(path))


def parse_npy(data: bytes, name: str = "<bytes>") -> torch.Tensor:
    """Parse the bytes of a ``.npy`` file (also a member of an ``.npz`` archive)."""
    if not data.startswith(_MAGIC):
        raise WorkloadConfigError(f"{name} is not a .npy file")
    major = data[6]
    size_bytes, fmt = (2, "<H") if major == 1 else (4, "<I")
    (header_len,) = struct.unpack(fmt, data[8 : 8 + size_bytes])
    start = 8 + size_bytes + header_len
    header = ast.literal_eval(data[8 + size_bytes : start].decode("latin1"))
    if header["descr"] not in _DTYPES or header["fortran_order"]:
        raise WorkloadConfigError(f"{name}: unsupported .npy dtype/order {header['descr']!r}/{header['fortran_order']}")
    flat = torch.frombuffer(bytearray(data[start:]), dtype=_DTYPES[header["descr"]])
    return flat.reshape(header["shape"])


def write_npy(path: Path, tensor: torch.Tensor) -> None:
    """Write ``tensor`` as a version 1.0 ``.npy`` file numpy can read."""
    path.write_bytes(npy_bytes(tensor))


def npy_bytes(tensor: torch.Tensor) -> bytes:
    """The bytes of a version 1.0 ``.npy`` file holding ``tensor``."""
    tensor = tensor.detach().cpu().contiguous()
    shape = ",".join(str(n) for n in tensor.shape) + ("," if tensor.dim() == 1 else "")
    header = f"{{'descr': '{_DESCRS[tensor.dtype]}', 'fortran_order': False, 'shape': ({shape}), }}"
    padding = 64 - (10 + len(header) + 1) % 64
    header_bytes = (header + " " * padding + "\n").encode("latin1")
    payload = tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
    return _MAGIC + b"\x01\x00" + struct.pack("<H", len(header_bytes)) + header_bytes + payload


# --------------------------------------------------------------------------
# Where the data lives, and staging
# --------------------------------------------------------------------------


def resolve_data_dir(config_dir: str, dataset: str, environ: Mapping[str, str] | None = None) -> Path:
    """``data_dir`` from the config, else ``$HETERO_DATA_<DATASET>``; WorkloadConfigError if neither."""
    env = os.environ if environ is None else environ
    variable = data_env_name(dataset)
    chosen = config_dir or env.get(variable, "")
    if not chosen:
        raise WorkloadConfigError(
            f"config key 'data' is 'real' but neither config key 'data_dir' nor ${variable} "
            f"(the platform's data_roots entry {dataset!r}) says where the dataset is"
        )
    path = Path(chosen)
    if not path.is_dir():
        raise WorkloadConfigError(
            f"dataset directory {path} does not exist (from {'data_dir' if config_dir else variable})"
        )
    return path


def resolve_stage_dir(config_dir: str, environ: Mapping[str, str] | None = None) -> Path:
    """Node-local staging root: ``stage_dir``, ``$HETERO_DATA_NODE_LOCAL``, then ``$TMPDIR``."""
    env = os.environ if environ is None else environ
    return Path(config_dir or env.get(DATA_NODE_LOCAL_ENV, "") or tempfile.gettempdir())


@dataclass(frozen=True)
class StagingResult:
    """A copy from shared to node-local storage."""

    source: Path
    target: Path
    bytes_copied: int
    files: int
    staging_time_s: float

    @property
    def read_throughput_mbps(self) -> float:
        """Megabytes (10^6 bytes) per second read from the shared filesystem."""
        return self.bytes_copied / 1e6 / self.staging_time_s if self.staging_time_s > 0 else 0.0


def stage(
    source: Path, stage_root: Path, run_id: str, copy: bool, wait: Callable[[], None] = lambda: None
) -> StagingResult:
    """Copy ``source`` under ``stage_root/<run_id>`` (only where ``copy``), then ``wait``.

    ``wait`` is a barrier: ranks that do not copy wait for the one that does.
    """
    target = stage_root / f"hetero-stage-{run_id}" / source.name
    started_s = time.perf_counter()
    bytes_copied, files = _copy_tree(source, target) if copy else (0, 0)
    wait()
    return StagingResult(source, target, bytes_copied, files, time.perf_counter() - started_s)


def _copy_tree(source: Path, target: Path) -> tuple[int, int]:
    bytes_copied, files = 0, 0
    for path in sorted(source.rglob("*")):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)  # reads every byte: the shared-filesystem read is measured
        bytes_copied += path.stat().st_size
        files += 1
    return bytes_copied, files


def remove_staged(result: StagingResult) -> None:
    """Delete the staged copy (the run's directory under the staging root)."""
    shutil.rmtree(result.target.parent, ignore_errors=True)


# --------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------


class SyntheticBatches:
    """A loader-like iterable over a few fixed batches made on the device.

    ``make_batch(generator, device)`` returns one batch; the pool holds
    ``pool_size`` of them and is cycled for ``steps`` steps, so data costs
    nothing and the run measures the model alone.
    """

    def __init__(
        self,
        make_batch: Callable[[torch.Generator, torch.device], tuple[torch.Tensor, torch.Tensor]],
        device: torch.device,
        steps: int,
        seed: int,
        pool_size: int = 2,
        sleep_s: float = 0.0,
    ) -> None:
        generator = torch.Generator(device=device).manual_seed(seed)
        self._pool = [make_batch(generator, device) for _ in range(max(1, min(steps, pool_size)))]
        self._steps = steps
        self._sleep_s = sleep_s

    def __len__(self) -> int:
        return self._steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step in range(self._steps):
            if self._sleep_s:  # simulates a slow input pipeline in tests
                time.sleep(self._sleep_s)
            yield self._pool[step % len(self._pool)]


def optional_h5py() -> Any | None:
    """The ``h5py`` module, or None when it is not installed."""
    try:
        return importlib.import_module("h5py")
    except ImportError:
        return None


# --------------------------------------------------------------------------
# Random tensors that also work on the meta device (for FLOP counting)
# --------------------------------------------------------------------------


def randn(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Normal noise; an empty tensor on ``meta`` (generators do not apply there)."""
    if device.type == "meta":
        return torch.empty(shape, device=device)
    return torch.randn(shape, generator=generator, device=device)


def rand(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Uniform noise in [0, 1); an empty tensor on ``meta``."""
    if device.type == "meta":
        return torch.empty(shape, device=device)
    return torch.rand(shape, generator=generator, device=device)


def randint(high: int, shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Integers in [0, high); zeros on ``meta``."""
    if device.type == "meta":
        return torch.zeros(shape, dtype=torch.long, device=device)
    return torch.randint(0, high, shape, generator=generator, device=device)
