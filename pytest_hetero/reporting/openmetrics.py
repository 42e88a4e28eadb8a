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


def metric_family_name(metric: str) -> str:
    """``hetero_`` + the metric name with every character OpenMetrics does not allow as ``_``."""
    return "hetero_" + _INVALID.sub("_", metric)


def render_openmetrics(reports: Sequence[dict[str, Any]]) -> str:
    families: dict[str, dict[tuple[str, str], tuple[dict[str, Any], str]]] = {}
    for report in sorted(reports, key=lambda r: r["created_at"]):
        for record in report["results"]:
            key = (record["test"], record["platform"]["name"])
            for name, metric in record["metrics"].items():
                if metric["value"] is not None:
                    families.setdefault(name, {})[key] = (metric, name)
    lines = []
    for name in sorted(families):
        lines.extend(_family(name, families[name]))
    lines.extend(_outcomes(reports))
    return "\n".join([*lines, "# EOF"]) + "\n"


def _family(name: str, samples: dict[tuple[str, str], tuple[dict[str, Any], str]]) -> list[str]:
    family = metric_family_name(name)
    first = next(iter(samples.values()))[0]
    direction = "higher" if first["higher_is_better"] else "lower"
    lines = [
        f"# TYPE {family} gauge",
        f"# HELP {family} {name} in {first['unit'] or 'no unit'} ({direction} is better)",
    ]
    for (test, platform), (metric, _) in sorted(samples.items()):
        labels = _labels({"test": test, "platform": platform, "unit": metric["unit"]})
        lines.append(f"{family}{labels} {metric['value']!r}")
    return lines


def _outcomes(reports: Sequence[dict[str, Any]]) -> list[str]:
    newest = max(reports, key=lambda r: r["created_at"], default=None)
    if newest is None or not newest["summary"]:
        return []
    lines = ["# TYPE hetero_tests gauge", "# HELP hetero_tests benchmark test cases by outcome (newest report)"]
    lines.extend(f"hetero_tests{_labels({'outcome': k})} {v}" for k, v in sorted(newest["summary"].items()))
    return lines


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
