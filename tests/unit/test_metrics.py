from __future__ import annotations

import pytest

from pytest_hetero.errors import CollectError
from pytest_hetero.metrics import Metric, parse_metrics_record

GOOD = (
    ':::HETERO_METRICS {"metrics": [{"name": "t", "value": 1.5, "unit": "s", "higher_is_better": false}],'
    ' "workload": "w"}'
)


def test_last_record_wins_and_extra_is_kept() -> None:
    text = "noise\n" + GOOD.replace("1.5", "9") + "\n" + GOOD + "\n"
    record = parse_metrics_record(text, "log")
    assert record.metrics == {"t": Metric("t", 1.5, "s", False)}
    assert record.extra == {"workload": "w"}


def test_null_value_is_kept_as_missing() -> None:
    record = parse_metrics_record(GOOD.replace("1.5", "null"), "log")
    assert record.metrics["t"].value is None


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (":::HETERO_METRICS {bad", "log:2: malformed metrics record: Expecting property name"),
        (':::HETERO_METRICS {"metrics": 3}', "log:2: the metrics record must be an object with a 'metrics' list"),
        (':::HETERO_METRICS {"metrics": [{"value": 1}]}', "log:2: metrics[0]: each metric needs a string 'name'"),
        (':::HETERO_METRICS {"metrics": [{"name": "x", "value": "fast"}]}', "metric 'x' has non-numeric value 'fast'"),
    ],
)
def test_malformed_lines_say_where(line: str, problem: str) -> None:
    with pytest.raises(CollectError, match="collect: ") as info:
        parse_metrics_record("first\n" + line, "log")
    assert problem in str(info.value)


def test_no_record_at_all() -> None:
    with pytest.raises(CollectError, match="printed no ':::HETERO_METRICS' line"):
        parse_metrics_record("just text", "out.log")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_value_is_an_error_not_missing(token: str) -> None:
    """Python's json reads these tokens; a NaN throughput must fail the case even without a reference."""
    with pytest.raises(CollectError, match=r"collect: log:2: metrics\[0\]: metric 't' has the non-finite value"):
        parse_metrics_record("first\n" + GOOD.replace("1.5", token), "log")


def test_duplicate_metric_names_name_both_entries() -> None:
    entries = '[{"name": "t", "value": 1}, {"name": "u", "value": 2}, {"name": "t", "value": 3}]'
    line = ':::HETERO_METRICS {"metrics": ' + entries + "}"
    with pytest.raises(CollectError, match=r"log:3: metric 't' is given twice: metrics\[0\] and metrics\[2\]"):
        parse_metrics_record("a\nb\n" + line, "log")
