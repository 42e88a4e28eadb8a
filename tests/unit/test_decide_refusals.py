"""``pytest-hetero rank``: unpriced platforms, missing energy, repeated runs, accelerator sweeps (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_decide import COSTS, rec, report, valid_report

from pytest_hetero.cli import main
from pytest_hetero.decide.costs import load_costs
from pytest_hetero.decide.figures import run_figures
from pytest_hetero.decide.rank import Constraints, rank
from pytest_hetero.decide.render import render_csv, render_text


@pytest.fixture
def costs(tmp_path: Path) -> Path:
    path = tmp_path / "costs.yaml"
    path.write_text(COSTS)
    return path


def test_an_unpriced_platform_is_refused_under_cost_with_the_closest_priced_name(costs: Path) -> None:
    costs.write_text(COSTS.replace("  owned:\n", "  ownd:\n"))  # a typo: "owned" is no longer priced
    model = load_costs(costs)
    (ranking,) = rank([("a.json", report(rec("owned", 100.0), rec("rented", 100.0)))], model, "cost")
    assert [c.figures.platform for c in ranking.ranked] == ["rented"]
    (refusal,) = ranking.refused
    assert refusal.platform == "owned" and refusal.missing
    assert (
        "'owned' is not priced in the costs file" in refusal.reason and "closest priced name: 'ownd'" in refusal.reason
    )
    assert ranking.unpriced == ["owned"]
    assert (
        "within the budget" not in ranking.answer and "(no deadline or budget given): rented (1 node)" in ranking.answer
    )
    # Under time it still ranks (its time is known), its cost empty.
    (by_time,) = rank([("a.json", report(rec("owned", 100.0)))], model, "time")
    assert [c.figures.platform for c in by_time.ranked] == ["owned"] and by_time.unpriced == ["owned"]
    assert "unknown, the costs file prices none of owned" in by_time.answer


def test_the_one_line_answer_names_only_the_bounds_given(costs: Path) -> None:
    model = load_costs(costs)
    reports = [("a.json", report(rec("owned", 100.0)))]
    assert (
        "no platform trains within the deadline of 10 s"
        in rank(reports, model, "time", Constraints(None, 10.0))[0].answer
    )
    over = rank(reports, model, "time", Constraints(budget=1e-9))[0].answer
    assert "no platform trains within the budget of 1e-09 EUR per run" in over and "deadline" not in over


def test_rank_command_warns_of_each_unpriced_platform(
    costs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    costs.write_text(COSTS.replace("  owned:\n", "  owned-cpu:\n"))
    path = valid_report(tmp_path, ("owned", "rented"))
    assert main(["rank", str(path), "--costs", str(costs), "--objective", "cost"]) == 0
    captured = capsys.readouterr()
    assert "warning: platform 'owned' is not priced" in captured.err and "'owned-cpu'" in captured.err
    assert "rented" not in captured.err
    assert "refused owned (" in captured.out and "not ranked by cost" in captured.out
    assert "within the budget" not in captured.out


def test_cost_when_the_costs_file_prices_no_measured_platform_is_refused(
    costs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    costs.write_text(COSTS.replace("  owned:\n", "  owned-cpu:\n").replace("  rented:\n", "  rented-cpu:\n"))
    path = valid_report(tmp_path, ("owned", "rented"))
    assert main(["rank", str(path), "--costs", str(costs), "--objective", "cost"]) == 4
    captured = capsys.readouterr()
    assert "warning: platform 'owned' is not priced" in captured.err  # each with its closest name, first
    assert f"--objective cost: no result has a cost (owned, rented): the costs file {costs} prices none" in captured.err
    assert captured.out == ""  # no empty ranking
    assert main(["rank", str(path), "--costs", str(costs), "--objective", "time"]) == 0  # time needs no price


def test_energy_without_measured_energy_or_costs_is_refused(
    costs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = valid_report(tmp_path, ("owned", "rented"))
    assert main(["rank", str(path), "--objective", "energy"]) == 4
    assert "--objective energy: no result has an energy figure (owned, rented)" in capsys.readouterr().err
    assert main(["rank", str(path), "--objective", "energy", "--costs", str(costs)]) == 0  # nominal power: estimates
    assert "estimated" in capsys.readouterr().out


def test_under_energy_only_results_with_an_energy_figure_rank() -> None:
    records = [rec("meter", 100.0, energy_j=5000.0), rec("blind", 50.0)]
    (ranking,) = rank([("a.json", report(*records))], None, "energy")
    assert [c.figures.platform for c in ranking.ranked] == ["meter"]
    assert [r.platform for r in ranking.refused] == ["blind"] and "the run measured no energy" in ranking.refused[
        0
    ].reason
    (by_time,) = rank([("a.json", report(*records))], None, "time")
    blind = next(line for line in render_text([by_time]).splitlines() if " blind " in line)
    assert "estimated" not in blind and " unknown" in blind  # no estimate, no "estimated" label
    assert run_figures(rec("blind", 50.0), None).as_dict()["energy"]["kind"] == "unknown"


def test_repeated_runs_of_one_shape_are_told_apart_from_other_counts() -> None:
    records = [rec("p", 10.0), rec("p", 12.0), rec("p", 7.0, nodes=2)]
    (ranking,) = rank([("a.json", report(*records))], None, "time")
    notes = {(r["nodes"], r["time_s"]): r["note"] for r in _csv_rows(render_csv([ranking]))}
    assert notes[("2", "7")] == ""  # ranked: the fastest shape
    assert notes[("1", "10")] == "another shape (node or accelerator count) ranks for this platform"
    assert notes[("1", "12")] == "another shape (node or accelerator count) ranks for this platform"
    (repeats,) = rank([("a.json", report(*records[:2]))], None, "time")
    assert repeats.ranked[0].figures.time_s == 10.0 and not repeats.scaling  # the best run; one shape: no sweep
    assert repeats.note(repeats.candidates[1]) == "repeated run of the ranked shape: the best of its 2 runs ranks"
    (sweep,) = rank([("a.json", report(*records))], None, "time")
    assert [(p.nodes, p.time_s) for p in sweep.scaling["p"]] == [(1, 10.0), (2, 7.0)]  # the fastest of the repeats


def test_an_accelerators_per_node_sweep_has_its_column_and_efficiency() -> None:
    one = rec("gpu", 100.0, throughput=100.0, count_per_node=4, used_per_node=1, test="t.py::t[acc1]")
    two = rec("gpu", 60.0, throughput=150.0, count_per_node=4, used_per_node=2, test="t.py::t[acc2]")
    (ranking,) = rank([("a.json", report(one, two))], None, "time")
    points = ranking.scaling["gpu"]
    assert [(p.nodes, p.accelerators_per_node, p.speedup, p.efficiency) for p in points] == [
        (1, 1, 1.0, 1.0),
        (1, 2, 1.5, 0.75),
    ]
    text = render_text([ranking])
    assert "acc_per_node" in text and "1 node(s) x 2 accelerator(s): speed-up 1.5, efficiency 0.75" in text
    assert ranking.ranked[0].label == "gpu (1 node, 2 accelerators per node)"


def _csv_rows(text: str) -> list[dict[str, str]]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(text)))
