"""Cost model, energy, like-for-like ranking, Pareto front, scaling (pytest_hetero.decide); ``pytest-hetero rank``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import fake_reports
import pytest

from pytest_hetero.cli import main
from pytest_hetero.decide.costs import HOURS_PER_YEAR, load_costs
from pytest_hetero.decide.figures import run_figures
from pytest_hetero.decide.rank import Constraints, rank
from pytest_hetero.decide.scaling import read_scale, scaled_key, unscaled_key
from pytest_hetero.errors import ConfigError
from pytest_hetero.schemas import load_schema, schema_errors
from pytest_hetero.workloads.energy import RAPL_ROOT_ENV, open_counter

COSTS = """\
version: 1
currency: EUR
electricity:
  price_per_kwh: {value: 0.30, source: example tariff}
  pue: {value: 1.5, source: example}
platforms:
  owned:
    power: {nominal_w_per_node: {value: 1000, source: example datasheet}}
    capital:
      price_per_node: {value: 87660, source: example quote}
      lifetime_years: {value: 5, source: example}
      utilisation: {value: 0.5, source: example}
      maintenance_per_year: {value: 1000, source: example}
  rented:
    power: {nominal_w_per_node: {value: 700, source: example}}
    rental: {price_per_accelerator_hour: {value: 3.6, source: example cloud price}}
"""


@pytest.fixture
def costs(tmp_path: Path) -> Path:
    path = tmp_path / "costs.yaml"
    path.write_text(COSTS)
    return path


def rec(
    platform: str,
    time_s: float,
    *,
    config: dict[str, Any] | None = None,
    nodes: int = 1,
    throughput: float = 100.0,
    energy_j: float | None = None,
    used_per_node: int = 1,
    count_per_node: int = 1,
    test: str = "test_x.py::test_train",
    outcome: str = "passed",
) -> dict[str, Any]:
    config = config if config is not None else {"batch_size": 4}
    config_hash = "%016x" % (abs(hash(json.dumps(config, sort_keys=True))) % 16**16)
    metrics = {"time_to_train_s": time_s, "throughput_sps": throughput}
    if energy_j is not None:
        metrics |= {"energy_j": energy_j, "avg_power_w": energy_j / time_s}
    return {
        "nodeid": f"test_x.py::test_train[{platform}]",
        "test": test,
        "outcome": outcome,
        "platform": {
            "name": platform,
            "nodes": nodes,
            "accelerator": {
                "kind": "cpu",
                "model": "m",
                "count_per_node": count_per_node,
                "used_per_node": used_per_node,
            },
        },
        "workload": {"config": config, "config_hash": config_hash, "fingerprint": config_hash, "code": {}},
        "metrics": {k: {"name": k, "value": v, "unit": "", "higher_is_better": False} for k, v in metrics.items()},
        "stage_timings_s": {"wait": time_s + 1},
    }


def report(*records: dict[str, Any]) -> dict[str, Any]:
    return {"results": list(records)}


# -- the cost model ------------------------------------------------------------


def test_capital_is_spread_over_the_hours_of_paid_work(costs: Path) -> None:
    model = load_costs(costs)
    capital = model.platforms["owned"].capital
    assert capital is not None
    # (87660 / 5 + 1000) per year over 8766 h x 0.5 utilisation
    assert capital.per_node_hour == pytest.approx((87660 / 5 + 1000) / (HOURS_PER_YEAR * 0.5))
    assert model.platforms["owned"].basis == "owned" and model.platforms["rented"].basis == "rental"
    assert model.currency == "EUR"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("value: 87660, source: example quote", "value: -1, source: q"), "$.platforms.owned.capital.price_per_node"),
        (("{value: 0.5, source: example}", "{value: 1.5, source: example}"), "capital.utilisation.value"),
        (("{value: 0.30, source: example tariff}", "{value: 0.30}"), "$.electricity.price_per_kwh: 'source'"),
        (("currency: EUR", "currency: euro"), "$.currency"),
        (("  rented:\n", "  rented:\n    colour: red\n"), "$.platforms.rented"),
    ],
)
def test_a_bad_costs_file_names_the_file_and_the_json_path(costs: Path, edit: tuple[str, str], expected: str) -> None:
    costs.write_text(COSTS.replace(*edit))
    with pytest.raises(ConfigError) as info:
        load_costs(costs)
    assert str(costs) in str(info.value) and expected in str(info.value)


def test_owned_hardware_without_an_electricity_price_is_refused(costs: Path) -> None:
    text = COSTS.split("platforms:")[1]
    costs.write_text("version: 1\ncurrency: EUR\nplatforms:" + text)
    with pytest.raises(ConfigError, match=r"\$\.platforms\.owned\.electricity: owned hardware"):
        load_costs(costs)


def test_a_platform_is_owned_or_rented_not_both(costs: Path) -> None:
    both = COSTS.replace(
        "      maintenance_per_year: {value: 1000, source: example}\n",
        "      maintenance_per_year: {value: 1000, source: example}\n"
        "    rental: {price_per_accelerator_hour: {value: 1, source: x}}\n",
    )
    costs.write_text(both)
    with pytest.raises(ConfigError, match=r"\$\.platforms\.owned"):
        load_costs(costs)


# -- figures of one run ---------------------------------------------------------


def test_estimated_energy_and_the_owned_cost_split(costs: Path) -> None:
    figures = run_figures(rec("owned", 3600.0, nodes=2), load_costs(costs))
    assert not figures.energy_measured and figures.energy_word == "estimated"
    assert figures.energy_j == pytest.approx(1000 * 2 * 3600)  # nominal W per node x nodes x s
    assert "estimated: 1000 W per node x 2 node(s)" in figures.energy_note
    capital = (87660 / 5 + 1000) / (HOURS_PER_YEAR * 0.5) * 2  # two node-hours
    assert figures.capital == pytest.approx(capital)
    assert figures.operating == pytest.approx(2.0 * 1.5 * 0.30)  # 2 kWh x PUE x price
    assert figures.cost == pytest.approx(capital + 0.9)
    assert figures.samples_per_money == pytest.approx(100 * 3600 / (capital + 0.9))


def test_measured_energy_is_used_and_marked_measured(costs: Path) -> None:
    figures = run_figures(rec("owned", 10.0, energy_j=5000.0), load_costs(costs))
    assert figures.energy_measured and figures.energy_j == 5000.0
    assert figures.operating == pytest.approx(5000 / 3.6e6 * 1.5 * 0.30)
    assert figures.samples_per_kj == pytest.approx(100 * 10 / 5.0)
    block = figures.as_dict()
    assert block["energy"]["kind"] == "measured" and block["cost"]["currency"] == "EUR"


def test_rental_is_all_operating_per_accelerator_hour(costs: Path) -> None:
    figures = run_figures(rec("rented", 1800.0, nodes=2, used_per_node=4, count_per_node=8), load_costs(costs))
    assert figures.accelerators == 8 and figures.basis == "rental"
    assert figures.capital == 0.0 and figures.operating == pytest.approx(3.6 * 8 * 0.5)
    assert figures.energy_j == pytest.approx(700 * 1.0 * 1800)  # half of each of two nodes


def test_without_a_cost_model_time_and_measured_energy_remain() -> None:
    figures = run_figures(rec("owned", 5.0), None)
    assert figures.cost is None and figures.energy_j is None and figures.time_s == 5.0


# -- ranking ----------------------------------------------------------------------


def test_ranks_like_for_like_and_refuses_the_odd_one_with_its_reason(costs: Path) -> None:
    model = load_costs(costs)
    reports = [
        ("a.json", report(rec("owned", 20.0), rec("rented", 10.0))),
        ("b.json", report(rec("odd", 1.0, config={"batch_size": 64}))),
    ]
    (ranking,) = rank(reports, model, "time")
    assert [c.figures.platform for c in ranking.ranked] == ["rented", "owned"]
    (refused,) = ranking.refused
    assert refused.platform == "odd" and refused.report == "b.json"
    assert "config differs" in refused.reason and "batch_size=64 vs 4" in refused.reason

    by_cost = rank(reports, model, "cost")[0]
    costs_in_order = [c.figures.cost for c in by_cost.ranked]
    assert costs_in_order == sorted(costs_in_order)  # type: ignore[type-var]


def test_failed_results_are_refused_not_ranked() -> None:
    (ranking,) = rank([("a.json", report(rec("p", 1.0), rec("q", 2.0, outcome="failed")))], None)
    assert [r.platform for r in ranking.refused] == ["q"] and "outcome failed" in ranking.refused[0].reason


def test_the_cheapest_platform_within_the_deadline_in_one_line(costs: Path) -> None:
    model = load_costs(costs)
    # eight rented accelerators: faster and dearer
    reports = [("a.json", report(rec("owned", 100.0), rec("rented", 50.0, used_per_node=8, count_per_node=8)))]
    cheapest = rank(reports, model, "time", Constraints())[0]
    owned_cost = run_figures(rec("owned", 100.0), model).cost
    rented_cost = run_figures(rec("rented", 50.0, used_per_node=8, count_per_node=8), model).cost
    assert owned_cost is not None and rented_cost is not None and owned_cost < rented_cost
    assert "cheapest platform (no deadline or budget given): owned (1 node)" in cheapest.answer
    tight = rank(reports, model, "time", Constraints(deadline_s=60.0))[0]
    assert "within the deadline of 60 s: rented (1 node, 8 accelerators per node)" in tight.answer
    assert tight.ranked[1].violation is not None and "over the deadline" in tight.ranked[1].violation
    none = rank(reports, model, "time", Constraints(deadline_s=10.0))[0]
    assert "no platform trains within the deadline" in none.answer


def test_a_sweep_gives_speedup_efficiency_and_ranks_the_best_count_within_budget(costs: Path) -> None:
    model = load_costs(costs)
    one = rec("rented", 100.0, throughput=100.0, test="t.py::test_train[nodes1]")
    two = rec("rented", 62.5, nodes=2, throughput=160.0, test="t.py::test_train[nodes2]")
    (ranking,) = rank([("a.json", report(one, two))], model, "time")
    assert ranking.test == "t.py::test_train"
    points = ranking.scaling["rented"]
    assert [(p.nodes, p.speedup, p.efficiency) for p in points] == [(1, 1.0, 1.0), (2, 1.6, 0.8)]
    assert ranking.ranked[0].figures.nodes == 2  # fastest
    one_cost = run_figures(one, model).cost
    assert one_cost is not None
    budget = rank([("a.json", report(one, two))], model, "time", Constraints(budget=one_cost * 1.01))[0]
    assert budget.ranked[0].figures.nodes == 1  # two nodes cost more than the budget allows


def test_the_pareto_front_keeps_only_undominated_results(costs: Path) -> None:
    model = load_costs(costs)
    eight = rec("rented", 50.0, used_per_node=8, count_per_node=8)
    records = [rec("owned", 100.0), eight, rec("slow-dear", 200.0, nodes=4)]
    records[2]["platform"]["name"] = "owned"  # owned at 4 nodes: slower and dearer than owned at 1
    (ranking,) = rank([("a.json", report(*records))], model, "cost")
    assert sorted(c.label for c in ranking.front) == ["owned (1 node)", "rented (1 node, 8 accelerators per node)"]


# -- scaling declarations ------------------------------------------------------------


def test_scale_keys_round_trip() -> None:
    assert scaled_key("f.py::t", "nodes", 2) == "f.py::t[nodes2]"
    assert unscaled_key(scaled_key("f.py::t[4]", "nodes", 2)) == "f.py::t[4]"
    assert unscaled_key("f.py::t[bs4]") == "f.py::t[bs4]"


@pytest.mark.parametrize(
    ("value", "message"),
    [({"gpus": [1]}, "got 'gpus'"), ({"nodes": []}, "counts >= 1"), ({"nodes": [1, 1]}, "repeats a count")],
)
def test_a_bad_scale_argument_is_a_clear_error(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_scale(value, "t.py::test")
    assert read_scale({"nodes": [1, 2]}, "t.py::test") is not None


# -- the command line ------------------------------------------------------------


def valid_report(tmp_path: Path, platforms: tuple[str, ...]) -> Path:
    """A schema-valid report (fake_reports) whose records carry a workload fingerprint."""
    records = []
    for name in platforms:
        record = fake_reports.record(platform=name, metrics={"throughput_sps": [100.0], "time_to_train_s": [12.0]})
        record["workload"]["fingerprint"] = fake_reports.HASH_A
        records.append(record)
    return fake_reports.write(tmp_path / "r.json", fake_reports.report(records))


def test_rank_command_text_markdown_csv_and_annotate(
    costs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = valid_report(tmp_path, ("owned", "rented"))
    assert main(["rank", str(path), "--costs", str(costs), "--objective", "cost", "--deadline", "1h"]) == 0
    text = capsys.readouterr().out
    assert "estimated" in text and "cheapest platform within the deadline of 3600 s" in text
    out = tmp_path / "r.csv"
    assert main(["rank", str(path), "--costs", str(costs), "--format", "csv", "-o", str(out)]) == 0
    assert out.read_text().splitlines()[0].startswith("test,rank,platform,nodes,acc_per_node,time_s")
    annotated = tmp_path / "annotated"
    assert main(["rank", str(path), "--costs", str(costs), "--annotate", str(annotated)]) == 0
    written = json.loads((annotated / "r.json").read_text())
    assert not schema_errors(written, load_schema("report"))
    assert written["results"][0]["extra"]["decide"]["energy"]["kind"] == "estimated"


def test_rank_command_usage_errors(costs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = valid_report(tmp_path, ("owned",))
    assert main(["rank", str(path), "--objective", "cost"]) == 4
    assert "need a cost model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["rank", str(path), "--deadline", "soon"])
    assert info.value.code == 4 and "invalid deadline 'soon'" in capsys.readouterr().err
    costs.write_text(COSTS.replace("version: 1", "version: 2"))
    assert main(["rank", str(path), "--costs", str(costs)]) == 4
    assert f"{costs}: invalid costs file" in capsys.readouterr().err


# -- energy counters: the RAPL root from the environment ---------------------------------


def test_rapl_is_read_where_hetero_rapl_root_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    domain = tmp_path / "intel-rapl:0"
    domain.mkdir()
    (domain / "max_energy_range_uj").write_text("262143328850\n")
    (domain / "energy_uj").write_text("1000000\n")
    monkeypatch.setenv(RAPL_ROOT_ENV, str(tmp_path))
    counter = open_counter("cpu")
    assert counter is not None and counter.source == "rapl"
    first_j = counter.read_j()
    (domain / "energy_uj").write_text("3500000\n")
    assert counter.read_j() - first_j == pytest.approx(2.5)
    monkeypatch.setenv(RAPL_ROOT_ENV, str(tmp_path / "elsewhere"))
    assert open_counter("cpu") is None  # no domains there: no energy metrics, never a guess


# -- the worked example: docs/decide.md and costs.example-centre.yaml -----------------------

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_costs_price_every_example_platform_and_say_they_are_examples() -> None:
    from pytest_hetero.config.loader import load_catalogue

    model = load_costs(ROOT / "costs.example-centre.yaml")
    catalogue = load_catalogue(ROOT / "platforms.example-centre.yaml")
    assert sorted(model.platforms) == sorted(p.name for p in catalogue.platforms)
    text = (ROOT / "costs.example-centre.yaml").read_text()
    sources = re.findall(r"source: \"([^\"]*)\"", text)
    assert sources and all(source.startswith("EXAMPLE") for source in sources)


def test_the_docs_table_of_hourly_costs_is_what_the_model_computes() -> None:
    from pytest_hetero.config.loader import load_catalogue

    model = load_costs(ROOT / "costs.example-centre.yaml")
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| \d+ x [\d/]+ \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", DOC, re.M)
    assert len(rows) == 6
    for platform in load_catalogue(ROOT / "platforms.example-centre.yaml").platforms:
        accelerator = {"count_per_node": platform.accelerator.count_per_node}
        accelerator["used_per_node"] = platform.accelerators_per_node
        record = {
            "platform": {"name": platform.name, "nodes": platform.resources.nodes, "accelerator": accelerator},
            "metrics": {"time_to_train_s": {"value": 3600.0}},
        }
        figures = run_figures(record, model)
        shown = next(row[1:] for row in rows if row[0] == platform.name)
        assert [f"{v:.2f}" for v in (figures.capital, figures.operating, figures.cost)] == list(shown), platform.name


DOC = (ROOT / "docs" / "decide.md").read_text(encoding="utf-8")


def test_the_run_report_html_has_a_cost_section_only_for_records_with_figures(costs: Path) -> None:
    from pytest_hetero.decide.command import annotate
    from pytest_hetero.reporting.html import render_html

    plain = fake_reports.report([fake_reports.record(platform="owned"), fake_reports.record(platform="rented")])
    for record in plain["results"]:
        record["workload"]["fingerprint"] = fake_reports.HASH_A
    assert 'id="decide"' not in render_html([plain], image_format="svg")
    page = render_html([annotate(plain, load_costs(costs))], image_format="svg")
    assert '<div id="decide">' in page and page.count('<svg class="chart pareto"') == 1
    assert "cheapest platform (no deadline or budget given): " in page
