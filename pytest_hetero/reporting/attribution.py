"""Where a case's time went and where its data lay, in words, for the terminal and Markdown reports.

The workload reports them (``workloads/timesplit.py``, ``workloads/storage.py``)
in the record's ``workload.reported``: ``time_split`` (parts in seconds and
fractions, the dominant part) and ``storage`` (per data root, its filesystem).
Records without them (other workloads, older reports) give empty text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["attribution_lines", "data_text", "dominant_text"]


def _reported(record: Mapping[str, Any]) -> Mapping[str, Any]:
    reported = (record.get("workload") or {}).get("reported")
    return reported if isinstance(reported, Mapping) else {}


def dominant_text(record: Mapping[str, Any]) -> str:
    """``data wait (46%)``: the largest part of staging plus time to train; "" when not reported."""
    split = _reported(record).get("time_split")
    if not isinstance(split, Mapping) or split.get("dominant") in (None, "unknown"):
        return ""
    part = str(split["dominant"])
    share = float((split.get("fractions") or {}).get(part, 0.0))
    return f"{part.replace('_', ' ')} ({share:.0%})"


def data_text(record: Mapping[str, Any]) -> str:
    """``cosmoflow on lustre (10.0.0.1@o2ib:/scratch)``, one per data root the run named; "" when none."""
    roots = (_reported(record).get("storage") or {}).get("roots") or {}
    return ", ".join(
        f"{name} on {entry.get('kind', 'unknown')} ({entry.get('source', '?')})"
        for name, entry in sorted(roots.items())
        if isinstance(entry, Mapping)
    )


def attribution_lines(records: list[Mapping[str, Any]]) -> list[str]:
    """Markdown bullet lines, one per case that reported where its time went."""
    lines = []
    for record in sorted(records, key=lambda r: (r["test"], r["platform"]["name"])):
        dominant = dominant_text(record)
        if dominant:
            data = data_text(record)
            where = f"; data: {data}" if data else ""
            lines.append(f"- `{record['test']}` on `{record['platform']['name']}`: time mostly {dominant}{where}")
    return lines
