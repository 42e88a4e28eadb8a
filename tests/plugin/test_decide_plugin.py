"""``--hetero-costs``: each result's energy and cost in the JSON report, JUnit properties and the history."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pytest_hetero.decide.rank import rank
from pytest_hetero.history import open_store
from pytest_hetero.schemas import load_schema, schema_errors

CATALOGUE = """
version: 1
platforms:
  - name: owned
    accelerator: {kind: cpu, model: host}
    backend: {kind: local}
  - name: rented
    accelerator: {kind: cpu, model: host, count_per_node: 4}
    backend: {kind: local}
    resources: {accelerators_per_node: 2}
"""
COSTS = """
version: 1
currency: GBP
electricity:
  price_per_kwh: {value: 0.3, source: example}
  pue: {value: 1.2, source: example}
platforms:
  owned:
    power: {nominal_w_per_node: {value: 500, source: example}}
    capital:
      price_per_node: {value: 10000, source: example}
      lifetime_years: {value: 4, source: example}
      utilisation: {value: 0.8, source: example}
  rented:
    power: {nominal_w_per_node: {value: 800, source: example}}
    rental: {price_per_accelerator_hour: {value: 2.0, source: example}}
"""
TEST = """
import pytest

@pytest.mark.hetero(command=["python", "work.py"], config={"sleep_s": 0.2})
def test_bench(hetero_result):
    assert hetero_result.metric("throughput_sps") == 100.0
"""


@pytest.fixture
def costed(bench_dir: pytest.Pytester) -> pytest.Pytester:
    bench_dir.makefile(".yaml", platforms=CATALOGUE, costs=COSTS)
    bench_dir.makepyfile(test_costed=TEST)
    return bench_dir


def test_each_record_carries_energy_and_cost_in_report_junit_and_history(costed: pytest.Pytester) -> None:
    result = costed.runpytest(
        "--platforms-file=platforms.yaml", "--platform=all", "--hetero-costs=costs.yaml",
        "--hetero-json=out.json", "--junitxml=junit.xml", "--hetero-history=history.sqlite",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    report = json.loads((costed.path / "out.json").read_text())
    assert schema_errors(report, load_schema("report")) == []
    records = {r["platform"]["name"]: r for r in report["results"]}

    owned = records["owned"]
    block = owned["extra"]["decide"]
    assert block["energy"]["kind"] == "estimated" and block["time_source"] == "stage wait (job wall time)"
    wait_s = owned["stage_timings_s"]["wait"]
    assert block["energy"]["joules"] == pytest.approx(500 * wait_s)  # nominal power x time: no counters here
    assert owned["metrics"]["energy_estimated_j"]["gated"] is False  # informational, never gated
    assert "energy_j" not in owned["metrics"]  # nothing measured, nothing claimed as measured
    capital = 10000 / 4 / (8766 * 0.8) * wait_s / 3600
    assert owned["metrics"]["cost_capital"]["value"] == pytest.approx(capital)
    assert owned["metrics"]["cost_operating"]["value"] == pytest.approx(500 * wait_s / 3.6e6 * 1.2 * 0.3)
    assert owned["metrics"]["cost_total"]["unit"] == "GBP"

    rented = records["rented"]["extra"]["decide"]
    assert rented["accelerators"] == 2 and rented["cost"]["basis"] == "rental" and rented["cost"]["capital"] == 0
    assert rented["energy"]["joules"] == pytest.approx(800 * 0.5 * records["rented"]["stage_timings_s"]["wait"])

    props = {
        case.get("name", "") + "[" + p.get("name", "") + "]": p.get("value")
        for case in ET.parse(costed.path / "junit.xml").getroot().iter("testcase")
        for p in case.iter("property")
    }
    assert props["test_bench[owned][hetero.energy_kind]"] == "estimated"
    assert props["test_bench[rented][hetero.cost.currency]"] == "GBP"
    assert float(props["test_bench[owned][hetero.cost.total]"] or 0) > 0

    with open_store(str(costed.path / "history.sqlite")) as store:
        (point,) = store.series("test_costed.py::test_bench", "owned", "cost_total")
    assert point.value == pytest.approx(owned["metrics"]["cost_total"]["value"])

    # The run's own HTML report gets a cost section with the Pareto chart (a subprocess: matplotlib and numpy
    # must not be imported inside pytester's in-process runs, which unload modules afterwards).
    done = subprocess.run(
        [sys.executable, "-m", "pytest_hetero.cli", "report", "out.json", "--html", "out.html"],
        cwd=costed.path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = (costed.path / "out.html").read_text()
    assert '<div id="decide">' in page and page.count('<svg class="chart pareto"') == 1
    (ranking,) = rank([("out.json", report)], None, "cost")  # no costs file: the records' own figures
    assert {c.figures.basis for c in ranking.ranked} == {"owned", "rental"}
    assert "cheapest platform (no deadline or budget given): " in ranking.answer


def test_a_bad_costs_file_is_a_usage_error_with_its_path(costed: pytest.Pytester) -> None:
    (costed.path / "costs.yaml").write_text(COSTS.replace("value: 0.8", "value: 8"))
    result = costed.runpytest("--platforms-file=platforms.yaml", "--platform=owned", "--hetero-costs=costs.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*costs.yaml: invalid costs file*", "*$.platforms.owned.capital.utilisation.value*"])
    result = costed.runpytest("--platform=owned", "--hetero-costs=missing.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hetero-costs 'missing.yaml': no such file*"])


def test_a_sweep_skips_counts_a_backend_cannot_give_and_its_report_ranks(
    costed: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    costed.makepyfile(
        test_sweep="""
import pytest

@pytest.mark.hetero(command=["python", "work.py"], config={}, scale={"nodes": [1, 2]})
def test_sweep(hetero_result):
    assert hetero_result.metric("throughput_sps") == 100.0
"""
    )
    result = costed.runpytest(
        "test_sweep.py", "--platforms-file=platforms.yaml", "--platform=owned", "-rs", "--hetero-json=sweep.json"
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*platform 'owned': its local backend cannot span 2 nodes*"])
    report = json.loads((costed.path / "sweep.json").read_text())
    assert schema_errors(report, load_schema("report")) == []  # the skipped case too: fingerprints included
    keys = sorted((r["nodeid"].split("::")[1], r["test"], r["platform"]["nodes"]) for r in report["results"])
    assert keys == [
        ("test_sweep[owned-nodes1]", "test_sweep.py::test_sweep[nodes1]", 1),
        ("test_sweep[owned-nodes2]", "test_sweep.py::test_sweep[nodes2]", 2),
    ]
    from pytest_hetero.cli import main

    capsys.readouterr()
    assert main(["rank", str(costed.path / "sweep.json"), "--costs", str(costed.path / "costs.yaml")]) == 0
    text = capsys.readouterr().out
    assert "test_sweep.py::test_sweep  (objective: time" in text
    assert "refused owned (" in text and "outcome skipped" in text and "cannot span 2 nodes" in text


def test_a_bad_scale_argument_fails_collection_with_the_test_named(costed: pytest.Pytester) -> None:
    costed.makepyfile(
        test_bad="""
import pytest

@pytest.mark.hetero(command=["python", "work.py"], scale={"gpus": [1, 2]})
def test_bad(hetero_result):
    pass
"""
    )
    result = costed.runpytest("test_bad.py", "--platforms-file=platforms.yaml", "--platform=owned")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_bad.py::test_bad: @pytest.mark.hetero scale= must be one of*got 'gpus'*"])


def test_an_unpriced_platform_is_named_in_the_terminal_summary(costed: pytest.Pytester) -> None:
    (costed.path / "costs.yaml").write_text(COSTS.replace("  owned:\n", "  ownd:\n"))  # a typo in the costs file
    result = costed.runpytest(
        "--platforms-file=platforms.yaml", "--platform=all", "--hetero-costs=costs.yaml", "--hetero-json=out.json"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*hetero costs*", "*note: platform 'owned' is not priced in the costs file*closest priced name: 'ownd'*"]
    )
    assert "platform 'rented' is not priced" not in result.stdout.str()
    records = {r["platform"]["name"]: r for r in json.loads((costed.path / "out.json").read_text())["results"]}
    assert records["owned"]["extra"]["decide"]["energy"]["kind"] == "unknown"  # nothing to estimate it from
    assert records["rented"]["extra"]["decide"]["cost"]["total"] is not None


def test_an_accelerators_per_node_sweep_skips_counts_a_node_does_not_have(costed: pytest.Pytester) -> None:
    costed.makepyfile(
        test_apn="""
import pytest

@pytest.mark.hetero(command=["python", "work.py"], config={}, scale={"accelerators_per_node": [1, 2, 8]})
def test_apn(hetero_result):
    assert hetero_result.metric("throughput_sps") == 100.0
"""
    )
    result = costed.runpytest("test_apn.py", "--platforms-file=platforms.yaml", "--platform=all", "-rs")
    result.assert_outcomes(passed=3, skipped=3)  # owned has 1 accelerator per node, rented 4
    result.stdout.fnmatch_lines(
        [
            "*platform 'owned': 2 accelerators per node asked, its nodes have 1 (accelerator.count_per_node*",
            "*platform 'owned': 8 accelerators per node asked, its nodes have 1*",
            "*platform 'rented': 8 accelerators per node asked, its nodes have 4*",
        ],
        consecutive=False,
    )
