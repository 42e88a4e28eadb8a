"""OpenMetrics text for GitLab's ``artifacts:reports:metrics`` (the merge-request metrics widget).

One gauge family per metric name, one sample per test × platform::

    # TYPE hetero_throughput_sps gauge
    # HELP hetero_throughput_sps throughput_sps in samples/s (higher is better)
    hetero_throughput_sps{test="test_resnet50",platform="a100-k8s",unit="samples/s"} 412.3
    # EOF

GitLab compares each line's name and labels between the source and target
branch, so the labels carry no run id; when several reports have the same
test and platform, the newest wins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["metric_family_name", "render_openmetrics"]

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_OUTCOMES = "hetero_tests"
_TIME = {"s": 1.0, "sec": 1.0, "secs": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "m": 60.0, "min": 60.0}
_TIME |= {"mins": 60.0, "minutes": 60.0, "h": 3600.0, "hours": 3600.0, "d": 86400.0, "days": 86400.0}
_TIME |= {"weeks": 604800.0, "milliseconds": 1e-3, "microseconds": 1e-6, "nanoseconds": 1e-9}
_SIZE = {"b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15, "bits": 0.125}
_SIZE |= {"kilobytes": 1e3, "megabytes": 1e6, "gigabytes": 1e9, "terabytes": 1e12, "petabytes": 1e15}
#: Abbreviated or non-base unit in a name -> (base unit, factor to it); ``promtool check metrics`` lints them.
_UNITS = {**{k: ("seconds", v) for k, v in _TIME.items()}, **{k: ("bytes", v) for k, v in _SIZE.items()}}


def _family_of(metric: str, unit: str = "") -> tuple[str, float]:
    """The family name of ``metric`` and the factor that turns its values into that name's unit.

    ``hetero_`` + the name in lower case, every character OpenMetrics does not allow as ``_``, and
    units spelled out in base units (``step_time_ms`` -> ``hetero_step_time_seconds``, factor 0.001;
    ``bw_gb_per_s`` -> ``hetero_bw_bytes_per_second``, factor 1e9). A word is read as a unit when the
    metric's declared unit has it (``a_b`` in no unit stays), it follows ``per``, or it is not one letter
    and ends the name or precedes ``per``.
    """
    words = _INVALID.sub("_", metric).lower().split("_")
    declared = set(re.split(r"[^a-z]+", unit.lower()))
    out, factor, per = [], 1.0, False
    for index, word in enumerate(words):
        last, before_per = index == len(words) - 1, words[index + 1 : index + 2] == ["per"]
        is_unit = word in _UNITS and (word in declared or per or (len(word) > 1 and (last or before_per)))
        base, scale = _UNITS[word] if is_unit else (word, 1.0)
        out.append(base[:-1] if per and is_unit else base)  # per second, per byte
        factor = factor / scale if per else factor * scale
        per = word == "per"
    family = "hetero_" + "_".join(out)
    return (f"{family}_metric" if family == _OUTCOMES else family), factor


def metric_family_name(metric: str, unit: str = "") -> str:
    """The OpenMetrics family ``metric`` (in ``unit``) is written under (see :func:`_family_of`)."""
    return _family_of(metric, unit)[0]


def render_openmetrics(reports: Sequence[dict[str, Any]]) -> str:
    """One family per distinct name after sanitising; metrics that sanitise alike share it, told apart by a
    ``metric`` label (a repeated ``# TYPE`` line would make the whole exposition invalid)."""
    families: dict[str, dict[tuple[str, str, str], dict[str, Any]]] = {}
    for report in sorted(reports, key=lambda r: r["created_at"]):
        for record in report["results"]:
            for name, metric in record["metrics"].items():
                if metric["value"] is not None:
                    key = (name, record["test"], record["platform"]["name"])
                    families.setdefault(metric_family_name(name, metric["unit"]), {})[key] = metric
    lines = []
    for family in sorted(families):
        lines.extend(_family(family, families[family]))
    lines.extend(_outcomes(reports))
    return "\n".join([*lines, "# EOF"]) + "\n"


def _family(family: str, samples: dict[tuple[str, str, str], dict[str, Any]]) -> list[str]:
    names = sorted({name for name, _, _ in samples})
    first = next(iter(samples.values()))
    direction = "higher" if first["higher_is_better"] else "lower"
    converted = _family_of(names[0], first["unit"])[1] != 1.0
    shown = f" (converted: {family})" if converted and len(names) == 1 else ""
    lines = [
        f"# TYPE {family} gauge",
        f"# HELP {family} {', '.join(names)} in {first['unit'] or 'no unit'}{shown} ({direction} is better)",
    ]
    for (name, test, platform), metric in sorted(samples.items()):
        labels = {"test": test, "platform": platform, "unit": metric["unit"]}
        if len(names) > 1:
            labels["metric"] = name
        factor = _family_of(name, metric["unit"])[1]
        lines.append(f"{family}{_labels(labels)} {_number(metric['value'] * factor)}")
    return lines


def _outcomes(reports: Sequence[dict[str, Any]]) -> list[str]:
    newest = max(reports, key=lambda r: r["created_at"], default=None)
    if newest is None or not newest["summary"]:
        return []
    lines = [f"# TYPE {_OUTCOMES} gauge", f"# HELP {_OUTCOMES} benchmark test cases by outcome (newest report)"]
    lines.extend(f"{_OUTCOMES}{_labels({'outcome': k})} {v}" for k, v in sorted(newest["summary"].items()))
    return lines


def _number(value: float) -> str:
    """15 significant digits: a unit conversion's float noise (12.4 ms -> 0.012400000000000001 s) dropped."""
    return repr(float(f"{value:.15g}"))


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
