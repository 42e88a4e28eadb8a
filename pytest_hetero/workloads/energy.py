"""Energy and average power over a run, from counters the hardware exposes.

Each source is optional and read only at the start and the end of the
measured interval (no sampling thread, so nothing competes with training):

=============  ================================================  ==============
source         counter                                           for kinds
=============  ================================================  ==============
``nvml``       ``nvmlDeviceGetTotalEnergyConsumption`` (mJ),      nvidia-gpu
               package ``nvidia-ml-py`` (Volta and newer)
``amdsmi``     ``amdsmi_get_energy_count`` (counter x            amd-gpu
               resolution, uJ), package ``amdsmi``
``rapl``       ``/sys/class/powercap/intel-rapl:N/energy_uj``    cpu
               (package domains, wrap-around corrected)
=============  ================================================  ==============

Average power is energy / elapsed time. When no source works the run
reports no energy metrics rather than a guess (``pytest-hetero rank`` then
estimates from the platform's nominal power and says so).

``HETERO_RAPL_ROOT`` moves the powercap tree (default ``/sys/class/powercap``):
for a node that mounts sysfs elsewhere, and for tests, which write a
sysfs-shaped tree on machines without RAPL.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pytest_hetero.workloads.protocol import RAPL_ROOT_ENV

__all__ = ["RAPL_ROOT_ENV", "EnergyCounter", "EnergyMeter", "EnergyReading", "RaplCounter", "open_counter", "rapl_root"]

RAPL_ROOT = Path("/sys/class/powercap")
#: An operator's override of the powercap root (not part of the plugin's job contract).


def rapl_root() -> Path:
    """Where the RAPL powercap domains are: ``$HETERO_RAPL_ROOT`` or ``/sys/class/powercap``."""
    return Path(os.environ.get(RAPL_ROOT_ENV) or RAPL_ROOT)


class EnergyCounter(Protocol):
    """A monotonically increasing energy counter in joules."""

    source: str

    def read_j(self) -> float:
        """The counter now, in joules (any origin)."""


@dataclass(frozen=True)
class EnergyReading:
    """Energy used over an interval and the average power it implies."""

    source: str
    energy_j: float
    elapsed_s: float

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.elapsed_s if self.elapsed_s > 0 else 0.0


class RaplCounter:
    """Sum of the RAPL package domains under ``root`` (Linux powercap)."""

    source = "rapl"

    def __init__(self, root: Path | None = None) -> None:
        root = rapl_root() if root is None else root
        self._domains = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not self._domains:
            raise OSError(f"no RAPL package domains under {root}")
        self._ranges_uj = [int((d / "max_energy_range_uj").read_text()) for d in self._domains]
        self._last_uj = self._raw_uj()
        self._total_uj = 0

    def _raw_uj(self) -> list[int]:
        return [int((d / "energy_uj").read_text()) for d in self._domains]

    def read_j(self) -> float:
        now_uj = self._raw_uj()
        for index, (now, last) in enumerate(zip(now_uj, self._last_uj, strict=True)):
            self._total_uj += now - last if now >= last else now + self._ranges_uj[index] - last
        self._last_uj = now_uj
        return self._total_uj / 1e6


class NvmlCounter:
    """NVML's total-energy counter of one GPU (millijoules since driver load)."""

    source = "nvml"

    def __init__(self, device_index: int) -> None:
        self._nvml: Any = importlib.import_module("pynvml")
        self._nvml.nvmlInit()
        self._handle = self._nvml.nvmlDeviceGetHandleByIndex(device_index)
        self.read_j()  # raises NVMLError_NotSupported on GPUs without the counter

    def read_j(self) -> float:
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)) / 1e3


class AmdSmiCounter:
    """AMD SMI's energy accumulator of one GPU (counter x resolution in microjoules)."""

    source = "amdsmi"

    def __init__(self, device_index: int) -> None:
        self._smi: Any = importlib.import_module("amdsmi")
        self._smi.amdsmi_init()
        self._handle = self._smi.amdsmi_get_processor_handles()[device_index]
        self.read_j()

    def read_j(self) -> float:
        info = self._smi.amdsmi_get_energy_count(self._handle)
        counter = info.get("energy_accumulator", info.get("power"))
        return float(counter) * float(info["counter_resolution"]) / 1e6


_FACTORIES: dict[str, tuple[Callable[[int], EnergyCounter], ...]] = {
    "nvidia-gpu": (NvmlCounter,),
    "amd-gpu": (AmdSmiCounter,),
    "cpu": (lambda _index: RaplCounter(),),
}


def open_counter(kind: str, device_index: int = 0) -> EnergyCounter | None:
    """The first energy counter that works for ``kind``, or None."""
    for factory in _FACTORIES.get(kind, ()):
        try:
            return factory(device_index)
        except Exception:  # noqa: S112 - any failure means "not exposed here"
            continue
    return None


class EnergyMeter:
    """Reads a counter at ``start`` and ``stop``; ``reading`` is None without one."""

    def __init__(self, counter: EnergyCounter | None, clock: Callable[[], float] = time.perf_counter) -> None:
        self._counter = counter
        self._clock = clock
        self._start: tuple[float, float] | None = None
        self.reading: EnergyReading | None = None

    def start(self) -> None:
        if self._counter is not None:
            self._start = (self._counter.read_j(), self._clock())

    def stop(self) -> EnergyReading | None:
        if self._counter is None or self._start is None:
            return None
        energy_j, started_s = self._counter.read_j() - self._start[0], self._start[1]
        self.reading = EnergyReading(self._counter.source, energy_j, self._clock() - started_s)
        return self.reading
