"""The terminal summary: roll-up per case, bands, no-reference rows under -v, full failure reasons."""

from __future__ import annotations

from typing import Any

from fake_reports import record

from pytest_hetero.reporting.terminal import failure_lines, summary_lines


def _records() -> list[dict[str, Any]]:
    ok = record(metrics={"throughput_sps": [412.0]}, band=(360.0, None))
    ok["metrics"]["epochs"] = {"name": "epochs", "value": 2, "unit": "epochs", "higher_is_better": True}
    ok["verdicts"].append({"metric": "epochs", "verdict": "no-reference", "message": "epochs: no reference"})
    slow = record(platform="mi250", metrics={"throughput_sps": [120.0]}, band=(360.0, 440.0), outcome="failed")
    slow["verdicts"][0]["message"] = "throughput_sps = 120 samples/s on platform 'mi250': below the band"
    return [ok, slow]


def test_a_roll_up_line_per_case_then_its_metrics_with_their_band() -> None:
    lines = summary_lines(_records())  # type: ignore[arg-type]
    assert lines[0].split() == ["test", "platform", "metric", "value", "unit", "band", "verdict"]
    assert lines[1].split() == ["test_resnet50", "a100", "-", "passed:", "1", "no-reference,", "1", "pass"]
    assert lines[2].split() == ["test_resnet50", "a100", "throughput_sps", "412", "samples/s", "≥", "360", "pass"]
    assert lines[3].split() == ["test_resnet50", "mi250", "-", "failed:", "1", "fail"]
    assert lines[4].split()[-4:] == ["samples/s", "[360,", "440]", "fail"]


def test_metrics_without_a_reference_are_counted_and_listed_under_verbose() -> None:
    quiet = summary_lines(_records())  # type: ignore[arg-type]
    assert not any(" epochs " in line for line in quiet)
    assert "(1 metric(s) without a reference not listed; -v lists them)" in quiet
    verbose = summary_lines(_records(), verbose=True)  # type: ignore[arg-type]
    assert any(line.split()[2:4] == ["epochs", "2"] and line.split()[-2:] == ["-", "no-reference"] for line in verbose)


def test_every_reason_of_a_failure_in_full() -> None:
    assert failure_lines(_records()) == [  # type: ignore[arg-type]
        "why test_resnet50[mi250] failed: throughput_sps = 120 samples/s on platform 'mi250': below the band"
    ]
