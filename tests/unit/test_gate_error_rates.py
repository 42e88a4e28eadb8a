"""scripts/gate_error_rates.py: the measured noise is read from reports and replayed through the gate."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "gate_error_rates.py"


@pytest.fixture(scope="module")
def rates() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gate_error_rates", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _report(throughput: list[float], step_ms: list[float]) -> dict[str, Any]:
    metrics = {
        "throughput_sps": {"value": 0, "unit": "samples/s", "higher_is_better": True, "samples": throughput},
        "step_time_ms": {"value": 0, "unit": "ms", "higher_is_better": False, "samples": step_ms},
        "peak_max": {"value": 0, "unit": "MiB", "higher_is_better": False, "samples": [1.0, 9.0], "gated": False},
    }
    return {"results": [{"test": "t.py::test_a", "metrics": metrics}]}


def test_noise_is_split_into_run_offsets_and_residuals(rates: ModuleType) -> None:
    reports = [_report([100.0, 101.0, 99.0], [10.0, 10.1, 9.9]), _report([90.0, 91.0, 89.0], [11.0, 11.1, 10.9])]
    noise = {n.metric: n for n in rates.noise_from_reports(reports)}
    assert set(noise) == {"step_time_ms", "throughput_sps"}, "informational metrics are not gated"
    speed = noise["throughput_sps"]
    assert speed.center == pytest.approx(95.0)
    assert sorted(speed.run_offsets) == pytest.approx([90 / 95 - 1, 100 / 95 - 1])
    assert sorted(speed.residuals)[0] == pytest.approx(89 / 90 - 1)


def test_quiet_noise_gives_no_false_alarm_and_catches_a_ten_percent_slowdown(rates: ModuleType) -> None:
    quiet = [_report([100.0, 100.2, 99.8, 100.1, 99.9], [10.0, 10.02, 9.98, 10.01, 9.99]) for _ in range(3)]
    found = rates.simulate(rates.noise_from_reports(quiet), trials=200, seed=1, gate=rates.Gate())
    by_cell = {(r.repeats, r.slowdown): r.failed for r in found}
    assert by_cell[(1, 0.0)] == by_cell[(3, 0.0)] == by_cell[(5, 0.0)] == 0.0
    assert by_cell[(1, 0.10)] == by_cell[(3, 0.10)] == by_cell[(5, 0.10)] == 1.0
    assert rates.table(found)[2].startswith("| t.py::test_a | 1 | 0.0 % |")


def test_saved_noise_replays_the_same_table(
    rates: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = []
    for i, level in enumerate((100.0, 97.0, 103.0)):
        path = tmp_path / f"noise-{i}.json"
        path.write_text(json.dumps(_report([level, level * 1.01, level * 0.99], [10.0, 10.2, 9.8])))
        reports.append(str(path))
    saved = tmp_path / "noise.json"
    assert rates.main([*reports, "--trials", "50", "--save-noise", str(saved)]) == 0
    first = capsys.readouterr().out
    assert rates.main([str(saved), "--trials", "50"]) == 0
    assert capsys.readouterr().out == first
    assert "| t.py::test_a | throughput_sps | samples/s | 3 |" in first
