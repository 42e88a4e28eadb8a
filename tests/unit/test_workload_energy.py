"""Energy counters: RAPL files (a fake powercap tree), NVML and AMD SMI (stand-in modules)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.workloads import energy
from pytest_hetero.workloads.energy import EnergyMeter, EnergyReading, RaplCounter, open_counter


def _domain(root: Path, name: str, energy_uj: int, range_uj: int = 1_000_000) -> Path:
    domain = root / name
    domain.mkdir(parents=True)
    (domain / "energy_uj").write_text(f"{energy_uj}\n")
    (domain / "max_energy_range_uj").write_text(f"{range_uj}\n")
    return domain


def test_rapl_sums_package_domains_and_skips_subdomains(tmp_path: Path) -> None:
    package0 = _domain(tmp_path, "intel-rapl:0", 100)
    package1 = _domain(tmp_path, "intel-rapl:1", 1_000)
    _domain(tmp_path, "intel-rapl:0:0", 5)  # a core subdomain: inside package 0 already
    counter = RaplCounter(tmp_path)

    (package0 / "energy_uj").write_text("600")
    (package1 / "energy_uj").write_text("1500")

    assert counter.read_j() == pytest.approx(1000 / 1e6)


def test_rapl_corrects_wrap_around(tmp_path: Path) -> None:
    package = _domain(tmp_path, "intel-rapl:0", 900_000, range_uj=1_000_000)
    counter = RaplCounter(tmp_path)

    (package / "energy_uj").write_text("100000")  # wrapped past 1 J

    assert counter.read_j() == pytest.approx(0.2)


def test_rapl_without_domains_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="no RAPL package domains"):
        RaplCounter(tmp_path)


class _Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def test_meter_reports_energy_and_average_power(tmp_path: Path) -> None:
    package = _domain(tmp_path, "intel-rapl:0", 0)
    clock = _Clock()
    meter = EnergyMeter(RaplCounter(tmp_path), clock)

    meter.start()
    (package / "energy_uj").write_text("50000000")  # 50 J
    clock.now_s = 2.0
    reading = meter.stop()

    assert reading == EnergyReading("rapl", 50.0, 2.0)
    assert reading.avg_power_w == pytest.approx(25.0)


def test_meter_without_a_counter_reports_nothing() -> None:
    meter = EnergyMeter(None)
    meter.start()

    assert meter.stop() is None


def test_nvml_counter_from_a_stand_in_module(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([1_000.0, 1_000.0, 4_500.0])  # mJ
    fake: Any = types.ModuleType("pynvml")
    fake.nvmlInit = lambda: None
    fake.nvmlDeviceGetHandleByIndex = lambda index: f"gpu{index}"
    fake.nvmlDeviceGetTotalEnergyConsumption = lambda handle: next(readings)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    clock = _Clock()

    meter = EnergyMeter(open_counter("nvidia-gpu", 1), clock)
    meter.start()
    clock.now_s = 0.5
    reading = meter.stop()

    assert reading == EnergyReading("nvml", 3.5, 0.5)


def test_amdsmi_counter_from_a_stand_in_module(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = iter([10, 10, 30])
    fake: Any = types.ModuleType("amdsmi")
    fake.amdsmi_init = lambda: None
    fake.amdsmi_get_processor_handles = lambda: ["gcd0", "gcd1"]
    fake.amdsmi_get_energy_count = lambda handle: {"energy_accumulator": next(counts), "counter_resolution": 15.3}
    monkeypatch.setitem(sys.modules, "amdsmi", fake)

    counter = open_counter("amd-gpu", 1)

    assert counter is not None and counter.source == "amdsmi"
    first_j = counter.read_j()
    assert counter.read_j() - first_j == pytest.approx(20 * 15.3 / 1e6)  # counter x resolution (uJ)


def test_no_counter_where_nothing_is_exposed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(energy, "RAPL_ROOT", tmp_path)
    monkeypatch.setitem(energy._FACTORIES, "cpu", (lambda _index: RaplCounter(energy.RAPL_ROOT),))

    assert open_counter("nvidia-gpu") is None
    assert open_counter("cpu") is None
    assert open_counter("graphcore-ipu") is None
