from __future__ import annotations

from pathlib import Path

import pytest

from pytest_hetero.check.references import Reference, VerdictKind, check, judge, load_references
from pytest_hetero.errors import ConfigError
from pytest_hetero.metrics import Metric


@pytest.mark.parametrize(
    ("value", "lower", "upper", "band"),
    [
        (100, -0.01, 0.02, (99.0, 102.0)),  # the worked table in docs/references.md
        (100, -0.1, None, (90.0, None)),
        (-50, -0.1, 0.1, (-55.0, -45.0)),
        (0, -0.5, 0.5, (-0.5, 0.5)),
    ],
)
def test_bounds_follow_the_documented_table(
    value: float, lower: float, upper: float | None, band: tuple[float, float | None]
) -> None:
    low, high = Reference(value, lower, upper).bounds
    assert low == pytest.approx(band[0])
    assert (high is None and band[1] is None) or high == pytest.approx(band[1])


@pytest.mark.parametrize(
    ("measured", "kind", "side"),
    [
        (99.0, VerdictKind.PASS, ""),
        (98.9, VerdictKind.FAIL, "below the band (worse"),
        (102.5, VerdictKind.FAIL, "above the band (better"),
    ],
)
def test_check_on_both_sides_with_direction(measured: float, kind: VerdictKind, side: str) -> None:
    verdict = check(
        Metric("throughput_sps", measured, "samples/s", True), "throughput_sps", Reference(100, -0.01, 0.02), "a100"
    )
    assert verdict.kind is kind
    assert side in verdict.message
    assert "platform 'a100'" in verdict.message and "band [99, 102]" in verdict.message


def test_lower_is_better_names_the_worse_side() -> None:
    verdict = check(Metric("step_time_ms", 130.0, "ms", False), "step_time_ms", Reference(100, None, 0.2), "cpu")
    assert verdict.kind is VerdictKind.FAIL
    assert "above the band (worse than the reference)" in verdict.message


def test_missing_metric_and_xfail() -> None:
    assert check(None, "eval_accuracy", Reference(0.75, -0.01, None), "cpu").kind is VerdictKind.MISSING
    slow = check(Metric("x", 1.0), "x", Reference(100, -0.1, None, xfail="known issue"), "cpu")
    assert slow.kind is VerdictKind.XFAIL and "known issue" in slow.message


def test_judge_marks_unreferenced_metrics() -> None:
    metrics = {"a": Metric("a", 1.0), "b": Metric("b", 2.0)}
    lax = judge(metrics, {"a": Reference(1.0, -0.1, 0.1)}, "cpu", require=False)
    assert [(v.metric, v.kind) for v in lax] == [("a", VerdictKind.PASS), ("b", VerdictKind.NO_REFERENCE)]
    strict = judge(metrics, {"a": Reference(1.0, -0.1, 0.1)}, "cpu", require=True)
    assert strict[1].failed


def test_lookup_prefers_exact_platform_over_glob(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text(
        "version: 1\nreferences:\n  t.py::test_x:\n"
        "    'a100-*': {m: [1, -0.1, 0.1]}\n    a100-80: {m: [2, -0.1, 0.1]}\n"
    )
    book = load_references(path)
    assert book.lookup("t.py::test_x", "a100-80")["m"].value == 2
    assert book.lookup("t.py::test_x", "a100-40")["m"].value == 1
    assert book.lookup("t.py::test_x", "mi250x") == {}


def test_invalid_tolerances_are_reported_with_paths(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text("version: 1\nreferences:\n  t:\n    cpu:\n      m: {value: 10, lower: 0.1, upper: -0.2}\n")
    with pytest.raises(ConfigError) as info:
        load_references(path)
    message = str(info.value)
    assert "$.references['t']['cpu']['m'].lower: 0.1 must be <= 0" in message
    assert "$.references['t']['cpu']['m'].upper: -0.2 must be >= 0" in message


def test_update_keeps_tolerances_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text("version: 1\nreferences:\n  t:\n    cpu:\n      m: {value: 10, lower: -0.05, upper: 0.05}\n")
    book = load_references(path)
    book.update("t", "cpu", {"m": Metric("m", 12.345678, "s", False), "n": Metric("n", 3.0, "x", True)})
    book.save()
    again = load_references(path).lookup("t", "cpu")
    assert again["m"] == Reference(12.35, -0.05, 0.05, "s")
    assert again["n"] == Reference(3.0, -0.2, None, "x")
