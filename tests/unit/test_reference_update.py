"""--hetero-update-references edits references.yaml in place: only the value lines it touched change."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest

from pytest_hetero.check.reference_update import ReferenceUpdate, update_references
from pytest_hetero.check.references import Reference, load_references
from pytest_hetero.errors import ConfigError
from pytest_hetero.host_fingerprint import HostFingerprint
from pytest_hetero.metrics import Metric

SHIPPED = Path(__file__).parents[2] / "benchmarks" / "references.yaml"
RESNET = "test_resnet50.py::test_resnet50_tiny"
HOST = HostFingerprint("Imaginary CPU 9000", 64, 512, "9.9.9+cpu")  # differs from the shipped one in every field

#: Every form that must survive an edit nearby: comments, quoting, null and bool spellings, number forms,
#: a short-form list, block and flow mappings, 4-space indentation.
TRICKY = """\
# top comment
version: 1
references:
    'test_a.py::test_x':   # single-quoted key
        "local*":
            m1: [110.0, null, 1.0, ms]   # short form
            m2: {value: 1.0e-3, lower: -0.50, upper: ~, unit: 's', host_bound: True}
            m3:
                value: 0x10
                lower: -0.1
                upper:    # empty null
                unit: "samples/s"
        a100:
            m1: [1, -0.1, 0.1]
    test_z:
        cpu: {m: {value: 1, upper: Null}}   # untouched
"""


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0))
    removed = [line[1:] for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")]
    return removed, added


def test_shipped_file_keeps_everything_but_the_touched_values(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    shutil.copy(SHIPPED, path)
    before = path.read_text()
    old = load_references(path).lookup(RESNET, "local")
    metrics = {
        "throughput_sps": Metric("throughput_sps", 57.5012, "samples/s"),  # written as 57.5 (4 significant digits)
        "steady_steps": Metric("steady_steps", old["steady_steps"].value, "steps"),  # unchanged: not touched
    }
    changed = update_references(path, [ReferenceUpdate(RESNET, "local", metrics, HOST)]).changed
    removed, added = _changed_lines(before, path.read_text())
    host_lines = ["host"] if load_references(SHIPPED).entry(RESNET, "local").host else []
    assert [line.split(":")[0].strip() for line in removed] == [*host_lines, "throughput_sps"]
    assert [line.split(":")[0].strip() for line in added] == ["host", "throughput_sps"]
    assert added[1] == removed[-1].replace(f"value: {old['throughput_sps'].value:g},", "value: 57.5,")
    assert changed == 1 + 4  # the value, and the four fields of the host
    entry = load_references(path).entry(RESNET, "local")
    assert entry.host == HOST
    assert entry.metrics["throughput_sps"].lower == old["throughput_sps"].lower


def test_a_new_host_replaces_only_the_fields_that_differ(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    shutil.copy(SHIPPED, path)
    update_references(path, [ReferenceUpdate(RESNET, "local", {}, HOST)])
    before = path.read_text()
    bigger = HostFingerprint(HOST.cpu_model, 8, HOST.memory_gib, HOST.torch)
    assert update_references(path, [ReferenceUpdate(RESNET, "local", {}, bigger)]).changed == 1
    removed, added = _changed_lines(before, path.read_text())
    assert len(removed) == len(added) == 1 and "cpu_count: 8" in added[0]


def test_every_written_form_survives_an_edit_nearby(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text(TRICKY)
    metrics = {
        "m1": Metric("m1", 99.5, "ms", False),
        "m3": Metric("m3", 1e-05, "samples/s"),
        "m2": Metric("m2", 0.001, "s", False),  # equal to what the file says: untouched
    }
    update_references(path, [ReferenceUpdate("test_a.py::test_x", "local", metrics)])
    removed, added = _changed_lines(TRICKY, path.read_text())
    assert [line.strip() for line in removed] == ["m1: [110.0, null, 1.0, ms]   # short form", "value: 0x10"]
    assert [line.strip() for line in added] == ["m1: [99.5, null, 1.0, ms]    # short form", "value: 1.0e-05"]
    refs = load_references(path).lookup("test_a.py::test_x", "local")
    assert refs["m3"].value == 1e-05, "written so that YAML 1.1 (PyYAML) reads a float"


def test_absolute_limits_stay_and_an_entry_keeps_its_metrics(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    shutil.copy(SHIPPED, path)
    before = path.read_text()
    metrics = {
        "data_wait_fraction": Metric("data_wait_fraction", 7.2e-05, "ratio", False),  # value 0: a limit
        "epoch_time_s": Metric("epoch_time_s", 0.51, "s", False),  # no reference in the entry
    }
    summary = update_references(path, [ReferenceUpdate(RESNET, "local", metrics)])
    assert summary.changed == 0 and summary.not_added == [f"{RESNET} on local: epoch_time_s"]
    assert path.read_text() == before


def test_new_entries_are_added_in_flow_style_with_twenty_percent_on_the_bad_side(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text(TRICKY)
    metrics = {"q": Metric("q", 12.0, "steps", True), "t": Metric("t", 3.25, "ms", False)}
    update_references(path, [ReferenceUpdate("test_new", "local", metrics)])
    removed, added = _changed_lines(TRICKY, path.read_text())
    assert removed == []
    assert added == [
        "    test_new:",
        "        local:",
        "            q: {value: 12.0, lower: -0.2, upper: null, unit: steps}",
        "            t: {value: 3.25, lower: null, upper: 0.2, unit: ms}",
    ]
    assert load_references(path).lookup("test_new", "local")["t"] == Reference(3.25, None, 0.2, "ms")


def test_an_integer_stays_an_integer_and_nothing_changes_when_nothing_moved(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text("version: 1\nreferences:\n  t:\n    cpu: {steps: {value: 6, lower: 0, upper: 0}}\n")
    assert update_references(path, [ReferenceUpdate("t", "cpu", {"steps": Metric("steps", 6.0)})]).changed == 0
    update_references(path, [ReferenceUpdate("t", "cpu", {"steps": Metric("steps", 7.0)})])
    assert "steps: {value: 7, lower: 0, upper: 0}" in path.read_text()


def test_a_missing_file_is_created_and_a_broken_one_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    update_references(path, [ReferenceUpdate("t", "local", {"m": Metric("m", 2.0, "s", False)}, HOST)])
    entry = load_references(path).entry("t", "local")
    assert entry.host == HOST and entry.metrics["m"].value == 2.0
    path.write_text("version: 1\nreferences:\n  t:\n    local: {m: {value: fast}}\n")
    with pytest.raises(ConfigError, match="invalid references"):
        update_references(path, [ReferenceUpdate("t", "local", {"m": Metric("m", 2.0)})])
    assert "fast" in path.read_text()
