"""``pytest-hetero rank`` end to end on real reports: a local and a Slurm platform, a deliberately different config,
measured and estimated energy, the Pareto chart in headless Chromium, and a 1- and 2-node scaling sweep on the
live cluster's ``multi`` partition (torchrun, gloo).

Needs the local cluster (``scripts/slurm-local.sh up``); without it these skip, except under CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.cli import main
from pytest_hetero.reporting.json_report import expand_report

pytestmark = pytest.mark.slurm

PYTHON = sys.executable
TEST_FILE = """
import os
import pytest

TINY = {"image_size": 32, "batch_size": int(os.environ.get("DECIDE_BATCH", "4")), "train_steps": 6,
        "warmup_steps": 2, "eval_steps": 1, "num_classes": 10}

@pytest.mark.hetero(workload="resnet50", config=TINY, timeout_min=5)
def test_train(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0

@pytest.mark.hetero(workload="resnet50", config=TINY, scale={"nodes": [1, 2]}, timeout_min=5)
def test_sweep(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0
"""
CATALOGUE = """
version: 1
platforms:
  - name: cpu-local
    accelerator: {{kind: cpu, model: host}}
    backend: {{kind: local}}
    environment: {{env: {{OMP_NUM_THREADS: "1", HETERO_RAPL_ROOT: "{rapl}"}}}}
  - name: cpu-slurm
    accelerator: {{kind: cpu, model: host}}
    backend: {{kind: slurm, options: {{partition: debug}}}}
    environment: {{python: {python}, env: {{OMP_NUM_THREADS: "1"}}}}
    resources: {{cpus_per_task: 1, time_limit_min: 5}}
  - name: cpu-slurm-multi
    accelerator: {{kind: cpu, model: host}}
    backend: {{kind: slurm, options: {{partition: multi}}}}
    launcher: {{kind: torchrun}}
    environment: {{python: {python}, env: {{OMP_NUM_THREADS: "1"}}}}
    resources: {{cpus_per_task: 1, time_limit_min: 5}}
"""
COSTS = """
version: 1
currency: EUR
electricity:
  price_per_kwh: {value: 0.25, source: "example tariff, not a quote"}
  pue: {value: 1.4, source: example}
platforms:
  cpu-local:
    power: {nominal_w_per_node: {value: 150, source: example}}
    capital:
      price_per_node: {value: 8000, source: example}
      lifetime_years: {value: 5, source: example}
      utilisation: {value: 0.6, source: example}
  cpu-slurm:
    power: {nominal_w_per_node: {value: 400, source: example}}
    rental: {price_per_accelerator_hour: {value: 2.0, source: example}}
  cpu-slurm-multi:
    power: {nominal_w_per_node: {value: 400, source: example}}
    rental: {price_per_accelerator_hour: {value: 2.0, source: example}}
"""


@pytest.fixture
def rapl_tree(tmp_path: Path) -> Iterator[Path]:
    """A sysfs-shaped powercap tree whose package counter rises 1 J every 10 ms while the test runs."""
    root = tmp_path / "powercap"
    domain = root / "intel-rapl:0"
    domain.mkdir(parents=True)
    (domain / "max_energy_range_uj").write_text("262143328850\n")
    (domain / "name").write_text("package-0\n")
    counter = domain / "energy_uj"
    counter.write_text("1000\n")
    stop = threading.Event()

    def tick() -> None:
        value = 1000
        while not stop.wait(0.01):
            value += 1_000_000
            tmp = domain / "energy_uj.tmp"
            tmp.write_text(f"{value}\n")
            tmp.replace(counter)  # a reader sees the old or the new value, never a partial one

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    yield root
    stop.set()
    thread.join()


def _run(pytester: pytest.Pytester, platform: str, report: str, *, select: str, batch: str = "4") -> None:
    os.environ["DECIDE_BATCH"] = batch
    try:
        result = pytester.runpytest_subprocess(
            "--platforms-file=platforms.yaml", f"--platform={platform}", f"--hetero-json={report}", "-k", select
        )
    finally:
        del os.environ["DECIDE_BATCH"]
    assert result.ret == 0, result.stdout.str()[-3000:]


@pytest.fixture
def project(live_pytester: pytest.Pytester, rapl_tree: Path) -> pytest.Pytester:
    live_pytester.makepyfile(test_decide=TEST_FILE)
    live_pytester.makefile(".yaml", platforms=CATALOGUE.format(rapl=rapl_tree, python=PYTHON))
    live_pytester.makefile(".yaml", costs=COSTS)
    live_pytester.makeini("[pytest]\n")
    return live_pytester


def test_rank_real_reports_like_for_like_with_measured_and_estimated_energy(
    project: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(project, "cpu-local", "local.json", select="test_train")
    _run(project, "cpu-slurm", "slurm.json", select="test_train")
    _run(project, "cpu-local", "odd.json", select="test_train", batch="8")  # a deliberately different config
    reports = [str(project.path / name) for name in ("local.json", "slurm.json", "odd.json")]
    costs = str(project.path / "costs.yaml")
    capsys.readouterr()

    assert main(["rank", *reports, "--costs", costs, "--objective", "cost", "--deadline", "10min"]) == 0
    text = capsys.readouterr().out
    rows = {line.split()[1]: line for line in text.splitlines() if re.match(r"\s+[12]\s+cpu-", line)}
    assert set(rows) == {"cpu-local", "cpu-slurm"}, text
    assert " measured " in rows["cpu-local"] and " estimated " in rows["cpu-slurm"], text  # RAPL tree vs none
    assert re.search(r"refused cpu-local \(.*odd\.json\): not like for like: .*batch_size=8 vs 4", text), text
    assert "cheapest platform within the deadline of 600 s: cpu-" in text

    local = json.loads((project.path / "local.json").read_text())["results"][0]
    assert local["metrics"]["energy_j"]["value"] > 0  # read from the tree by the workload, in the job
    assert "energy_j" not in json.loads((project.path / "slurm.json").read_text())["results"][0]["metrics"]

    page = project.path / "rank.html"
    assert main(["rank", *reports, "--costs", costs, "--format", "html", "-o", str(page)]) == 0
    layout = _browser_layout(page, project.path)
    assert layout["pareto"]["width"] > 300 and layout["pareto"]["height"] > 200
    assert layout["points"] == 2 and layout["inside"], layout  # both comparable results, drawn inside the chart
    assert layout["refused"] == 1


PROBE = """<script>
const svg = document.querySelector("svg.pareto"), box = svg.getBoundingClientRect();
const circles = [...svg.querySelectorAll("circle")].map((c) => c.getBoundingClientRect());
document.body.dataset.layout = JSON.stringify({
  pareto: {width: box.width, height: box.height},
  points: circles.length,
  inside: circles.every((c) => c.left >= box.left && c.right <= box.right &&
                               c.top >= box.top && c.bottom <= box.bottom),
  refused: document.querySelectorAll("ul.refused li").length,
});
</script>"""


def _browser_layout(page: Path, workdir: Path) -> dict[str, Any]:
    """What headless Chromium laid out: the Pareto chart's size and its points."""
    names = [os.environ.get("HETERO_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"]
    chromium = next((path for path in map(shutil.which, filter(None, names)) if path), None)
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("headless Chromium is not installed; CI is set, so the browser check must run")
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
    probed = workdir / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    argv = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
    argv += [f"--user-data-dir={workdir / 'profile'}", "--window-size=1400,1000", "--dump-dom", probed.as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'data-layout="([^"]*)"', done.stdout)
    assert found, done.stdout[:2000]
    layout: dict[str, Any] = json.loads(found.group(1).replace("&quot;", '"'))
    return layout


def test_a_sweep_over_one_and_two_nodes_reports_efficiency(
    project: pytest.Pytester, multi_nodes: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _run(project, "cpu-slurm-multi", "sweep.json", select="test_sweep")
    records = expand_report(json.loads((project.path / "sweep.json").read_text()))["results"]
    assert sorted((r["test"], r["platform"]["nodes"]) for r in records) == [
        ("test_decide.py::test_sweep[nodes1]", 1),
        ("test_decide.py::test_sweep[nodes2]", 2),
    ]
    two = next(r for r in records if r["platform"]["nodes"] == 2)
    assert "#SBATCH --nodes=2" in Path(two["job"]["logs"]["batch_script"]).read_text()
    capsys.readouterr()

    sweep, costs = str(project.path / "sweep.json"), str(project.path / "costs.yaml")
    assert main(["rank", sweep, "--costs", costs]) == 0
    text = capsys.readouterr().out
    found = re.search(r"scaling cpu-slurm-multi: 1 node\(s\) x 1 accelerator\(s\): speed-up 1, efficiency 1, "
                      r"2 node\(s\) x 1 accelerator\(s\): "
                      r"speed-up ([0-9.e+-]+), efficiency ([0-9.e+-]+)", text)  # fmt: skip
    assert found, text
    speedup, efficiency = float(found.group(1)), float(found.group(2))
    assert speedup > 0 and efficiency == pytest.approx(speedup / 2, rel=1e-3)

    page = project.path / "sweep.html"
    assert main(["rank", sweep, "--costs", costs, "--format", "html", "-o", str(page)]) == 0
    assert page.read_text().count('<svg class="chart scaling"') == 1
