"""The ranking as text (terminal), Markdown and CSV; HTML is :mod:`pytest_hetero.decide.html`."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from pytest_hetero.decide.rank import Candidate, WorkloadRanking

__all__ = ["COLUMNS", "render_csv", "render_markdown", "render_text", "row"]

COLUMNS = (
    "rank", "platform", "nodes", "acc_per_node", "time_s", "energy_j", "energy", "currency", "capital", "operating",
    "cost", "samples_per_money", "samples_per_kj", "note",
)  # fmt: skip


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def row(position: int | None, cand: Candidate, note: str = "") -> dict[str, str]:
    """One result as table cells (``rank`` empty for results that are not their platform's best)."""
    f = cand.figures
    return {
        "rank": "" if position is None else str(position),
        "platform": f.platform,
        "nodes": str(f.nodes),
        "acc_per_node": str(f.accelerators_per_node),
        "time_s": _fmt(f.time_s),
        "energy_j": _fmt(f.energy_j),
        "energy": f.energy_word,
        "currency": f.currency or "",
        "capital": _fmt(f.capital),
        "operating": _fmt(f.operating),
        "cost": _fmt(f.cost),
        "samples_per_money": _fmt(f.samples_per_money),
        "samples_per_kj": _fmt(f.samples_per_kj),
        "note": note or cand.violation or "",
    }


def rows(ranking: WorkloadRanking) -> list[dict[str, str]]:
    """The ranked results first, then every other comparable result (other shapes, repeated runs)."""
    found = [row(i, cand) for i, cand in enumerate(ranking.ranked, 1)]
    found += [row(None, cand, ranking.note(cand)) for cand in ranking.candidates if cand not in ranking.ranked]
    return found


def render_text(rankings: Sequence[WorkloadRanking]) -> str:
    lines = []
    for ranking in rankings:
        lines.append(f"{ranking.test}  (objective: {ranking.objective}, workload fingerprint {ranking.fingerprint})")
        table = rows(ranking)
        widths = {c: max(len(c), *(len(r[c]) for r in table)) if table else len(c) for c in COLUMNS}
        lines.append("  " + "  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip())
        lines += ["  " + "  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in table]
        lines += _scaling_lines(ranking)
        lines += [f"  refused {r.platform} ({r.report}): {r.reason}" for r in ranking.refused]
        lines.append(f"  => {ranking.answer}")
        lines.append("")
    return "\n".join(lines)


def _scaling_lines(ranking: WorkloadRanking) -> list[str]:
    lines = []
    for platform, points in ranking.scaling.items():
        shown = ", ".join(
            f"{_shape(p.nodes, p.accelerators_per_node)}: speed-up {_fmt(p.speedup)}, efficiency {_fmt(p.efficiency)}"
            for p in points
        )
        lines.append(f"  scaling {platform}: {shown}")
    return lines


def _shape(nodes: int, per_node: int) -> str:
    return f"{nodes} node(s) x {per_node} accelerator(s)"


def render_markdown(rankings: Sequence[WorkloadRanking]) -> str:
    out = ["# Platform ranking", ""]
    for ranking in rankings:
        out += [f"## `{ranking.test}`", "", f"Objective: **{ranking.objective}**. {ranking.answer}", ""]
        out.append("| " + " | ".join(COLUMNS) + " |")
        out.append("|" + "---|" * len(COLUMNS))
        out += ["| " + " | ".join(r[c] for c in COLUMNS) + " |" for r in rows(ranking)]
        out.append("")
        if ranking.scaling:
            out += [
                "| platform | nodes | acc_per_node | time_s | speed-up | efficiency |",
                "|---|---|---|---|---|---|",
            ]
            for platform, points in ranking.scaling.items():
                out += [
                    f"| {platform} | {p.nodes} | {p.accelerators_per_node} | {_fmt(p.time_s)} | {_fmt(p.speedup)} "
                    f"| {_fmt(p.efficiency)} |"
                    for p in points
                ]
            out.append("")
        out += [f"- refused: {r.platform} ({r.report}): {r.reason}" for r in ranking.refused]
        out.append("")
    return "\n".join(out)


def render_csv(rankings: Sequence[WorkloadRanking]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["test", *COLUMNS], lineterminator="\n")
    writer.writeheader()
    for ranking in rankings:
        for cells in rows(ranking):
            writer.writerow({"test": ranking.test, **cells})
        for refusal in ranking.refused:
            writer.writerow({"test": ranking.test, "platform": refusal.platform, "note": f"refused: {refusal.reason}"})
    return buffer.getvalue()
