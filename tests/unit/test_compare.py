"""Repeat statistics, the comparison decision, regression expressions, and the gate over whole reports."""

from __future__ import annotations

import importlib
import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from fake_reports import HASH_A, HASH_B, record, report

from pytest_hetero.check.gate import (
    HistoryBaseline,
    MetricComparison,
    ReportBaseline,
    Series,
    compare_metrics,
    run_gate,
)
from pytest_hetero.check.references import Verdict, VerdictKind
from pytest_hetero.check.statistics import (
    check_regression_expr,
    compare,
    parse_regression_expr,
    summary_stats,
    trimmed_mean,
)
from pytest_hetero.check.verdicts import combine, not_judged_notes
from pytest_hetero.config.models import Accelerator, BackendConfig, Platform
from pytest_hetero.errors import ConfigError, HistoryError
from pytest_hetero.history import Selection, open_store
from pytest_hetero.metrics import Metric
from pytest_hetero.results import BenchmarkResult
from pytest_hetero.workload import Workload

WORKLOAD = Workload.builtin("resnet50", {"batch_size": 4})

BASE = [412.0, 410.0, 415.0, 411.0, 413.0]
DROP_10 = [371.0, 370.0, 372.0, 369.0, 373.0]


def test_trimmed_mean_drops_the_best_and_the_worst() -> None:
    assert trimmed_mean([10.0, 1.0, 3.0, 2.0, 100.0]) == 5.0
    assert trimmed_mean([1.0, 2.0, 3.0]) == 2.0
    with pytest.raises(ValueError, match="at least 3 values, got 2"):
        trimmed_mean([1.0, 2.0])


def test_summary_stats() -> None:
    stats = summary_stats([100.0, 102.0, 98.0, 101.0, 99.0])
    assert stats["n"] == 5
    assert stats["median"] == stats["mean"] == stats["trimmed_mean"] == 100.0
    assert stats["stdev"] == pytest.approx(math.sqrt(2.5))
    assert stats["cv"] == pytest.approx(math.sqrt(2.5) / 100)
    assert (stats["min"], stats["max"]) == (98.0, 102.0)
    assert summary_stats([7]) == {
        "n": 1, "median": 7.0, "mean": 7.0, "stdev": None, "cv": None, "min": 7.0, "max": 7.0, "trimmed_mean": None
    }  # fmt: skip
    assert summary_stats([-1.0, 1.0])["cv"] is None  # mean 0: no coefficient of variation
    with pytest.raises(ValueError, match="at least one value"):
        summary_stats([])


def test_ten_percent_drop_over_five_repeats_is_a_significant_regression() -> None:
    result = compare(DROP_10, BASE, higher_is_better=True, name="throughput_sps", unit="samples/s")
    assert result.verdict == "regression" and result.regressed
    assert result.relative_change == pytest.approx(-0.1, abs=0.001)
    assert result.p_value == pytest.approx(2 / 252)  # exact two-sided p of fully separated 5 vs 5
    assert result.message == (
        "throughput_sps: median 412 → 371 samples/s (-10.0 %, p=0.00794 < 0.05, min effect 5 %): regression"
    )


def test_direction_decides_regression_or_improvement() -> None:
    assert compare(BASE, DROP_10, higher_is_better=True).verdict == "improvement"
    assert compare(BASE, DROP_10, higher_is_better=False).verdict == "regression"  # e.g. time_to_train_s went up
    assert compare(DROP_10, BASE, higher_is_better=False).verdict == "improvement"


def test_significant_but_smaller_than_the_min_effect_is_unchanged() -> None:
    shifted = [v * 0.98 for v in BASE]  # -2 %, perfectly separated
    result = compare(shifted, BASE, higher_is_better=True)
    assert result.p_value is not None and result.p_value < 0.05
    assert result.verdict == "unchanged"
    assert compare(shifted, BASE, higher_is_better=True, min_effect=0.01).verdict == "regression"


def test_large_but_noisy_change_is_not_significant() -> None:
    noisy_base = [400.0, 300.0, 500.0, 350.0, 450.0]
    noisy_now = [360.0, 280.0, 470.0, 300.0, 420.0]  # median -10 %, but the samples overlap
    result = compare(noisy_now, noisy_base, higher_is_better=True)
    assert result.p_value is not None and result.p_value >= 0.05
    assert result.verdict == "unchanged"
    assert "p=" in result.message and ">= 0.05" in result.message


def test_few_samples_decide_on_the_min_effect_and_non_overlapping_ranges() -> None:
    single = compare([371.0], [412.0], higher_is_better=True, name="throughput_sps")
    assert (single.verdict, single.p_value) == ("regression", None)
    assert "n=1 vs 1, too few for a test" in single.message
    assert compare([405.0], [412.0], higher_is_better=True).verdict == "unchanged"  # -1.7 % < 5 %
    # 3 vs 3 cannot reach p < 0.05 (smallest two-sided p is 0.1): decided like the single runs
    assert compare([370.0, 371.0, 372.0], [410.0, 412.0, 414.0], True).verdict == "regression"
    assert compare([370.0, 371.0, 420.0], [410.0, 412.0, 414.0], True).verdict == "unchanged"  # ranges overlap
    assert compare([370.0, 371.0, 372.0], [410.0, 412.0, 414.0], True).p_value is None
    assert compare([370.0, 371.0, 372.0, 369.0], [410.0, 412.0, 414.0, 411.0], True).p_value is not None


def test_insufficient_data() -> None:
    assert compare([], BASE, True).verdict == "insufficient-data"
    no_base = compare([1.0, float("nan")], [None, float("nan")], True, name="mfu")  # type: ignore[list-item]
    assert no_base.verdict == "insufficient-data"
    assert no_base.message == "mfu: no baseline samples: insufficient-data"
    zero = compare([1.0], [0.0], True, name="errors")
    assert zero.message == "errors: baseline median is 0, no relative change: insufficient-data"


def test_identical_samples_are_unchanged() -> None:
    result = compare([5.0] * 5, [5.0] * 5, higher_is_better=True)
    assert (result.verdict, result.p_value, result.relative_change) == ("unchanged", 1.0, 0.0)


def test_parse_regression_expressions_like_pytest_benchmark() -> None:
    mean = parse_regression_expr("mean:5%")
    assert (mean.stat, mean.threshold, mean.relative) == ("mean", 5.0, True)
    minimum = parse_regression_expr("min:0.001")
    assert (minimum.stat, minimum.threshold, minimum.relative) == ("min", 0.001, False)
    assert parse_regression_expr("stddev:12.5%").stat == "stdev"
    assert parse_regression_expr("median:1e-3").threshold == 0.001
    for bad in ("mean", "mean:", "avg:5%", "mean:-5%", "mean:5%%", "mean:five"):
        with pytest.raises(ConfigError, match=f"regression expression {bad!r}: expected STAT:PERCENT%"):
            parse_regression_expr(bad)


def test_regression_expressions_fail_when_worse_by_more_than_the_threshold() -> None:
    times_s = [1.00, 1.02, 0.98]
    expr = parse_regression_expr("mean:5%")
    assert check_regression_expr(expr, [1.06, 1.08, 1.04], times_s, higher_is_better=False).failed
    assert not check_regression_expr(expr, [1.04, 1.04, 1.04], times_s, higher_is_better=False).failed
    assert not check_regression_expr(expr, [0.5, 0.5, 0.5], times_s, higher_is_better=False).failed  # faster
    drop = check_regression_expr(expr, DROP_10, BASE, higher_is_better=True)
    assert drop.failed and drop.worse_by == pytest.approx(9.9, abs=0.1)
    assert drop.message == "mean:5%: mean 412.2 → 371, worse by 9.995% > 5%"
    absolute = parse_regression_expr("min:0.001")
    assert check_regression_expr(absolute, [0.0125], [0.0110], higher_is_better=False).failed
    assert not check_regression_expr(absolute, [0.0115], [0.0110], higher_is_better=False).failed
    spread = parse_regression_expr("stddev:50%")  # more spread is worse whatever the metric's direction
    assert check_regression_expr(spread, [100.0, 120.0, 80.0], [100.0, 101.0, 99.0], higher_is_better=True).failed
    unknown = check_regression_expr(parse_regression_expr("iqr:5%"), [1.0], [1.0], higher_is_better=True)
    assert not unknown.failed and "not enough samples" in unknown.message


def _two_platform_report(
    run_id: str, a100: list[float], mi250: list[float], mi250_hash: str = HASH_A
) -> dict[str, Any]:
    records = [
        record(platform="a100", metrics={"throughput_sps": a100}),
        record(platform="mi250", metrics={"throughput_sps": mi250}, config_hash=mi250_hash),
    ]
    return report(records, run_id=run_id, created_at=f"2026-05-01T10:{len(run_id):02d}:00Z")


def test_gate_compares_only_matching_config_hashes_and_says_so() -> None:
    old = _two_platform_report("old", BASE, BASE)
    new = _two_platform_report("new-run", DROP_10, DROP_10, mi250_hash=HASH_B)
    new["results"].append(record(platform="ipu", metrics={"throughput_sps": [100.0]}))
    gate = run_gate(new, ReportBaseline(old, "old.json"))
    assert [(r.platform, r.verdict) for r in gate.regressions] == [("a100", "regression")]
    assert gate.counts() == {"regression": 1, "improvement": 0, "unchanged": 0, "insufficient-data": 2}
    assert gate.notes == [
        f"test_resnet50 on mi250: workload config hash {HASH_B} ≠ {HASH_A} in the baseline: the config changed; "
        "not compared",
        "test_resnet50 on ipu: not in the baseline run; not compared",
    ]
    assert gate.regressions[0].message.startswith("test_resnet50 on a100: throughput_sps: median 412 → 371")
    assert gate.against == "old.json (run old, 2026-05-01T10:03:00Z)"
    row = gate.regressions[0].as_dict()
    assert (row["metric"], row["verdict"], row["n_current"], row["note"]) == ("throughput_sps", "regression", 5, "")
    assert json.loads(json.dumps(row)) == row


def test_gate_against_the_history(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "h.sqlite")) as store:
        store.add_report(_two_platform_report("r1", BASE, BASE))
        store.add_report(_two_platform_report("r2", [500.0] * 5, [500.0] * 5, mi250_hash=HASH_B))
        store.save_baseline("golden", "r1")
        current = _two_platform_report("r3-now", DROP_10, DROP_10)
        store.add_report(current)  # already stored: the current run must not be its own baseline
        last = run_gate(current, HistoryBaseline(store, Selection.parse("last"), "r3-now"))
        assert [r.verdict for r in last.rows] == ["regression", "regression"]  # a100 vs r2 (500), mi250 vs r1
        golden = run_gate(current, HistoryBaseline(store, Selection.parse("baseline:golden"), "r3-now"))
        assert "-10.0 %" in golden.rows[0].message
        fresh = _two_platform_report("r4", DROP_10, DROP_10, mi250_hash="aaaaaaaaaaaaaaaa")
        gate = run_gate(fresh, HistoryBaseline(store, Selection.parse("last"), "r4"))
        assert gate.notes == [  # the most recent run it could have been compared with
            f"test_resnet50 on mi250: workload config hash aaaaaaaaaaaaaaaa ≠ {HASH_A} in the history "
            "(run r3-now): the config changed; not compared"
        ]


def test_gate_applies_regression_expressions() -> None:
    old = _two_platform_report("old", BASE, BASE)
    new = _two_platform_report("new", [v * 0.97 for v in BASE], BASE)  # -3 %: below the 5 % min effect
    plain = run_gate(new, ReportBaseline(old))
    assert plain.regressions == []
    strict = run_gate(new, ReportBaseline(old), exprs=[parse_regression_expr("median:2%")])
    assert [r.platform for r in strict.regressions] == ["a100"]
    assert "median:2%: median 412 → 399.6, worse by 3% > 2%" in strict.regressions[0].message


def test_the_worked_examples_in_docs_history_md_hold() -> None:
    text = (Path(__file__).parents[2] / "docs" / "history.md").read_text()
    table = text.split("| baseline | current | change | p | verdict |\n|---|---|---|---|---|\n")[1].split("\n\n")[0]
    rows = [line.strip("|").split("|") for line in table.splitlines()]
    assert len(rows) == 5
    for baseline, current, change, p_value, verdict in rows:
        result = compare([float(v) for v in current.split()], [float(v) for v in baseline.split()], True)
        assert result.relative_change is not None
        assert f"{result.relative_change * 100:+.1f} %" == change.strip().replace("−", "-")
        assert (result.p_value is None) == (p_value.strip() == "n/a")
        if result.p_value is not None:
            assert f"{result.p_value:.2g}" == p_value.strip()
        assert verdict.split("(")[0].strip() == result.verdict


def test_parametrised_variants_are_matched_by_node_id_then_config_hash() -> None:
    def variants(run_id: str, small: list[float], large: list[float], rename: bool = False) -> dict[str, Any]:
        small_rec = record(metrics={"throughput_sps": small}, config_hash=HASH_A)
        large_rec = record(metrics={"throughput_sps": large}, config_hash=HASH_B)
        small_rec["nodeid"] = "test_bench.py::test_resnet50[bs32-a100]"
        large_rec["nodeid"] = "test_bench.py::test_resnet50[bs256-a100]" + ("-renamed" if rename else "")
        return report([small_rec, large_rec], run_id=run_id)

    old = variants("old", [100.0], [400.0])
    gate = run_gate(variants("new", [100.0], [360.0], rename=True), ReportBaseline(old))
    assert [(r.config_hash, r.verdict) for r in gate.rows] == [(HASH_A, "unchanged"), (HASH_B, "regression")]
    assert gate.notes == []


# --- the noise floor and one verdict per metric ---------------------------------------------------------------

WAIT_BASE = [4.1e-05, 4.0e-05, 4.2e-05, 4.1e-05, 4.0e-05]
WAIT_NOW = [4.7e-05, 4.8e-05, 4.6e-05, 4.7e-05, 4.9e-05]


def test_a_significant_change_below_the_noise_floor_is_unchanged() -> None:
    loud = compare(WAIT_NOW, WAIT_BASE, higher_is_better=False, name="data_wait_s", unit="s")
    assert loud.verdict == "regression", "without a floor: +15 %, p < 0.05"
    quiet = compare(WAIT_NOW, WAIT_BASE, higher_is_better=False, name="data_wait_s", unit="s", noise_floor=0.001)
    assert quiet.verdict == "unchanged"
    assert quiet.message == (
        "data_wait_s: median 4.1e-05 → 4.7e-05 s (+14.6 %, p=0.0114 < 0.05, min effect 5 %, noise floor 0.001 s): "
        "unchanged"
    )


def test_the_gate_takes_the_noise_floor_from_the_unit_or_the_references() -> None:
    series = Series("t", "local", HASH_A)
    waits = [Metric("data_wait_s", statistics.median(WAIT_NOW), "s", False, tuple(WAIT_NOW))]
    baseline = _FixedBaseline(WAIT_BASE)
    [by_unit] = compare_metrics(series, waits, baseline)
    assert by_unit.verdict == "unchanged" and by_unit.as_dict()["noise_floor"] == 0.001
    [overridden] = compare_metrics(series, waits, baseline, noise_floors={"data_wait_s": 0.0})
    assert overridden.verdict == "regression"


class _FixedBaseline:
    description = "fixed"

    def __init__(self, samples: list[float]) -> None:
        self.samples = samples

    def lookup(self, series: Series, metric: str) -> tuple[list[float], str]:
        return self.samples, ""


def _row(metric: str, current: list[float], baseline: list[float], unit: str = "samples/s") -> MetricComparison:
    higher = unit == "samples/s"
    return MetricComparison("t", "local", metric, unit, HASH_A, compare(current, baseline, higher, name=metric))


def _band(kind: VerdictKind, metric: str = "throughput_sps", host_bound: bool = True) -> Verdict:
    return Verdict(metric, kind, 100.0, None, f"{metric}: band says {kind.value}", kind, host_bound=host_bound)


@pytest.mark.parametrize(
    ("band", "samples", "combined", "failed"),
    [
        (VerdictKind.PASS, BASE, VerdictKind.PASS, False),
        (VerdictKind.PASS, DROP_10, VerdictKind.REGRESSION, True),
        (VerdictKind.NO_REFERENCE, DROP_10, VerdictKind.REGRESSION, True),
        (VerdictKind.XFAIL, DROP_10, VerdictKind.REGRESSION, True),
        (VerdictKind.FAIL, DROP_10, VerdictKind.FAIL, True),
        (VerdictKind.FAIL, BASE, VerdictKind.FAIL, True),
        (VerdictKind.CONTENDED, DROP_10, VerdictKind.CONTENDED, False),
    ],
)
def test_one_verdict_per_metric_combines_band_and_gate(
    band: VerdictKind, samples: list[float], combined: VerdictKind, failed: bool
) -> None:
    row = _row("throughput_sps", samples, BASE)
    [verdict] = combine([_band(band)], [row], contended=band is VerdictKind.CONTENDED)
    assert (verdict.kind, verdict.failed) == (combined, failed)
    assert verdict.band is band and verdict.gate == row.verdict
    if row.regressed:
        assert row.comparison.message in verdict.message or band is VerdictKind.CONTENDED
    record = verdict.as_dict()
    assert (record["verdict"], record["band"], record["gate"]) == (combined.value, band.value, row.verdict)


def test_a_failed_band_and_a_regression_say_both_once() -> None:
    result = BenchmarkResult("n", "t", Platform("local", Accelerator("cpu"), BackendConfig("local")), WORKLOAD, "")
    result.comparisons = [_row("throughput_sps", DROP_10, BASE)]
    result.verdicts = combine([_band(VerdictKind.FAIL)], result.comparisons, contended=False)
    [message] = result.failure_messages()
    assert message.startswith("throughput_sps: band says fail; t on local: throughput_sps: median 412 → 371")


def test_a_compared_metric_without_a_band_verdict_gets_one() -> None:
    rows = [_row("throughput_sps", DROP_10, BASE), _row("step_time_ms", [10.0], [10.0], "ms")]
    regression, unchanged = combine([], rows, contended=False)
    assert regression.kind is VerdictKind.REGRESSION and regression.gate == "regression"
    assert unchanged.kind is VerdictKind.NO_REFERENCE and unchanged.gate == "unchanged"
    [contended] = combine([], rows[:1], contended=True)
    assert contended.kind is VerdictKind.CONTENDED and not contended.failed


def test_notes_name_why_host_bound_figures_were_not_judged() -> None:
    why = "measured on another host: cpu_count 64 there, 2 here"
    verdict = Verdict("throughput_sps", VerdictKind.NO_REFERENCE, 1.0, None, "m", reason=why, host_bound=True)
    records = [{"test": "t.py::test_a", "platform": {"name": "local"}, "verdicts": [verdict.as_dict()]}] * 2
    assert not_judged_notes(records) == [
        f"pytest-hetero: host-bound figures not judged, {why}: t.py::test_a on local (throughput_sps, throughput_sps)"
    ]


def test_an_unknown_baseline_is_noticed_before_any_job(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "h.sqlite")) as store:
        HistoryBaseline(store, Selection.parse("last")).check()
        with pytest.raises(HistoryError, match=r"no baseline 'golden' \(known: none saved yet\)"):
            HistoryBaseline(store, Selection.parse("baseline:golden")).check()


EXPORTS = {
    "pytest_hetero.check.statistics": [
        "Comparison",
        "ComparisonVerdict",
        "ExprCheck",
        "RegressionExpr",
        "check_regression_expr",
        "compare",
        "parse_regression_expr",
        "summary_stats",
        "trimmed_mean",
    ],
    "pytest_hetero.history": [
        "HistoryError",
        "HistoryStore",
        "Measurement",
        "RunInfo",
        "Selection",
        "SeriesPoint",
        "StoreUnavailableError",
        "Variant",
        "measurements",
        "metric_samples",
        "open_store",
        "run_info",
    ],
    "pytest_hetero.history.sql": ["PostgresStore", "SQLiteStore", "SqlHistoryStore"],
    "pytest_hetero.check.references": [
        "HOST_KEY",
        "Reference",
        "ReferenceBook",
        "ReferenceEntry",
        "Verdict",
        "VerdictKind",
        "candidate_keys",
        "check",
        "judge",
        "load_references",
        "parse_yaml",
        "read_text",
    ],
    "pytest_hetero.check.reference_update": ["ReferenceUpdate", "UpdateSummary", "update_references"],
    "pytest_hetero.check.units": ["default_noise_floor", "dimension", "is_host_bound"],
    "pytest_hetero.check.verdicts": ["combine", "not_judged_notes"],
    "pytest_hetero.host_fingerprint": ["HostFingerprint", "cpu_model", "host_fingerprint"],
    "pytest_hetero.check.gate": [
        "Baseline",
        "GateResult",
        "HistoryBaseline",
        "MetricComparison",
        "ReportBaseline",
        "Series",
        "compare_metrics",
        "compare_record",
        "run_gate",
    ],
    "pytest_hetero.cli": [
        "EXIT_OK",
        "EXIT_REGRESSION",
        "EXIT_STORE_ERROR",
        "EXIT_USAGE",
        "console_main",
        "load_report",
        "main",
    ],
    "pytest_hetero.reporting.markdown": ["band_text", "render_comparison", "render_summary", "spread_text"],
    "pytest_hetero.reporting.html": ["ImageFormat", "TrendPoint", "render_html"],
    "pytest_hetero.reporting.csv_report": ["CSV_COLUMNS", "render_csv"],
    "pytest_hetero.reporting.openmetrics": ["metric_family_name", "render_openmetrics"],
}


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_public_names_of_history_and_reports_are_pinned(module: str) -> None:
    assert sorted(importlib.import_module(module).__all__) == sorted(EXPORTS[module])
