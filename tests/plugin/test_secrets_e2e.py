"""Secrets end to end (issue 14): a local run with every output turned on, and a dry run.

Values marked secret in the catalogue, taken from the submitting environment by reference,
URL passwords, setup-line and config passwords reach the workload but appear in no output:
terminal, JSON report, pytest-benchmark JSON, JUnit, history, HTML, dry run, run directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SECRETS = {
    "by-design": "hf_DesignSecret4242",
    "from-env": "submitter-only-7171",
    "url": "urlpw-3131",
    "setup": "setup-pw-5151",
    "config": "config-pw-6161",
}
CATALOGUE = f"""
version: 1
platforms:
  - name: cpu
    accelerator: {{kind: cpu}}
    backend: {{kind: local}}
    environment:
      env:
        HF_AUTH: {{value: {SECRETS["by-design"]}, secret: true}}
        FROM_SUBMITTER: {{from_env: E14A_SUBMITTER_SECRET}}
        DB_URL: "postgresql://bench:{SECRETS["url"]}@db:5432/results"
      setup: ["export SETUP_PASSWORD={SECRETS["setup"]}"]
"""
WORKLOAD = """
import json, os, sys
config = json.loads(os.environ["HETERO_WORKLOAD_CONFIG"])
got = [os.environ.get("HF_AUTH"), os.environ.get("FROM_SUBMITTER"), os.environ.get("DB_URL"), config["password"]]
with open(config["seen"], "w") as out:
    json.dump(got, out)
if config.get("fail"):  # a crash that prints its secrets: the error shown and recorded is scrubbed
    print("connecting to", os.environ["DB_URL"], "with", os.environ["HF_AUTH"], os.environ["FROM_SUBMITTER"],
          "password=" + config["password"], file=sys.stderr)
    sys.exit(2)
print(":::HETERO_METRICS " + json.dumps({"metrics": [{"name": "throughput_sps", "value": 5.0, "unit": "samples/s"}]}))
"""
TESTS = f"""
import pytest

@pytest.mark.hetero(command=["python", "work.py"], config={{"password": "{SECRETS["config"]}", "seen": "seen-ok.json"}})
def test_ok(hetero_result):
    pass

@pytest.mark.hetero(command=["python", "work.py"],
                    config={{"password": "{SECRETS["config"]}", "seen": "seen-fail.json", "fail": True}})
def test_crash(hetero_result):
    pass
"""


@pytest.fixture
def secret_dir(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("E14A_SUBMITTER_SECRET", SECRETS["from-env"])
    pytester.makefile(".yaml", platforms=CATALOGUE)
    pytester.makefile(".py", work=WORKLOAD)
    pytester.makepyfile(test_s=TESTS)
    return pytester


def _leaks(text: str) -> list[str]:
    return [what for what, value in SECRETS.items() if value in text]


def test_no_secret_in_any_output_of_a_run(secret_dir: pytest.Pytester, tmp_path: Path) -> None:
    out = secret_dir.path / "out"
    result = secret_dir.runpytest_subprocess(
        "--platforms-file=platforms.yaml", "--platform=cpu", "-v", "-rA",
        "--hetero-json=out/report.json", "--hetero-benchmark-json=out/bench.json", "--junitxml=out/junit.xml",
        f"--hetero-history={out / 'history.db'}", f"--hetero-output-dir={out}",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    expected = [SECRETS["by-design"], SECRETS["from-env"], f"postgresql://bench:{SECRETS['url']}@db:5432/results"]
    assert json.loads((secret_dir.path / "seen-ok.json").read_text()) == [*expected, SECRETS["config"]]
    assert "connecting to postgresql://bench:***@db:5432/results with *** ***" in result.stdout.str()
    assert _leaks(result.stdout.str() + result.stderr.str()) == []
    cli = [sys.executable, "-m", "pytest_hetero.cli", "report", str(out / "report.json")]
    html = subprocess.run([*cli, "--html", str(tmp_path / "r.html")], capture_output=True, text=True, check=False)
    assert html.returncode == 0, html.stderr
    # Not the workload's own logs: what a program prints is its business (this one prints its secrets).
    written = sorted(p for p in [*out.rglob("*"), tmp_path / "r.html"] if p.is_file() and p.suffix != ".log")
    assert {"report.json", "bench.json", "junit.xml", "history.db", "r.html"} <= {p.name for p in written}
    leaks = {str(p): _leaks(p.read_bytes().decode("utf-8", "replace")) for p in written}
    assert {path: found for path, found in leaks.items() if found} == {}
    record = next(r for r in json.loads((out / "report.json").read_text())["results"] if "test_ok" in r["nodeid"])
    assert record["workload"]["config"]["password"] == "***"
    assert record["job"]["env"]["HF_AUTH"] == "***"


def test_no_secret_in_a_dry_run(secret_dir: pytest.Pytester) -> None:
    result = secret_dir.runpytest_subprocess("--platforms-file=platforms.yaml", "--platform=cpu", "--hetero-dry-run")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*dry run: test_s.py::test_ok[[]cpu[]]*"])
    assert _leaks(result.stdout.str() + result.stderr.str()) == []
