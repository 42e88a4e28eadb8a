"""Failure paths a demanding user hits: collisions, leftovers, secrets, partial results, bad outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.check.references import candidate_keys


def _report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def test_long_parametrised_ids_never_share_a_job_directory(bench_dir: pytest.Pytester) -> None:
    long = "imagenet_full_resolution_" * 6
    bench_dir.makepyfile(
        test_long=f"""
import pytest

@pytest.mark.hetero(command=["python", "work.py"])
@pytest.mark.parametrize("variant", ["{long}A", "{long}B"])
def test_long(variant, hetero_result, request):
    assert hetero_result.workdir not in request.config.seen_dirs
    request.config.seen_dirs.add(hetero_result.workdir)
"""
    )
    bench_dir.makeconftest("def pytest_configure(config):\n    config.seen_dirs = set()\n")
    bench_dir.runpytest().assert_outcomes(passed=2)


def test_processes_left_behind_by_a_finished_workload_are_killed(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(
        test_bg="""
import pytest

CODE = (
    "import json, subprocess; p = subprocess.Popen(['sleep', '300']); open('bg.pid', 'w').write(str(p.pid)); "
    "print(':::HETERO_METRICS ' + json.dumps({'metrics': [{'name': 'x', 'value': 1}]}))"
)

@pytest.mark.hetero(command=["python", "-c", CODE])
def test_bg():
    pass
"""
    )
    bench_dir.runpytest().assert_outcomes(passed=1)
    pid = int((bench_dir.path / "bg.pid").read_text())
    assert _gone_within(pid, 10.0)


def _gone_within(pid: int, timeout_s: float) -> bool:
    """A killed process ends once it is next scheduled: on a loaded machine, not at once."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if "zombie" in Path(f"/proc/{pid}/status").read_text():
                return True
        except OSError:
            return True  # gone
        time.sleep(0.05)
    return False


def test_inherited_secrets_are_scrubbed(bench_dir: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "hunter2hunter2")
    bench_dir.makepyfile(
        test_leak="""
import pytest

@pytest.mark.hetero(command=["sh", "-c", "echo pw=$DB_PASSWORD; exit 2"])
def test_leak():
    pass
"""
    )
    result = bench_dir.runpytest("--hetero-json=out.json", "--junitxml=j.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["pw=[*][*][*]"])
    for name in ("out.json", "j.xml"):
        assert "hunter2hunter2" not in (bench_dir.path / name).read_text()


def test_a_failed_repeat_keeps_the_measured_samples(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(
        ".py",
        flaky="""
import json, sys
from pathlib import Path
runs = Path("runs.txt")
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
if len(runs.read_text()) == 3:
    sys.exit("third run breaks")
print(":::HETERO_METRICS " + json.dumps({"metrics": [{"name": "x_per_s", "value": float(len(runs.read_text()))}]}))
""",
    )
    bench_dir.makepyfile(
        test_f="""
import pytest

@pytest.mark.hetero(command=["python", "flaky.py"])
def test_f():
    pass
"""
    )
    result = bench_dir.runpytest("--hetero-repeat=4", "--hetero-json=out.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*third run breaks*"])
    record = _report(bench_dir.path / "out.json")["results"][0]
    assert record["metrics"]["x_per_s"]["samples"] == [1.0, 2.0]
    assert record["error"]["stage"] == "wait"
    assert len(record["job"]["ids"]) == 3, "the fourth repeat is never started"


def test_hetero_run_in_a_plain_test_is_not_an_interruption(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(
        test_p="""
from pytest_hetero.workload import Workload

def test_p(hetero_run):
    assert hetero_run(Workload(name="w", command=("python", "work.py"))).metric("throughput_sps") == 100.0
"""
    )
    bench_dir.runpytest("--hetero-json=out.json").assert_outcomes(passed=1)
    assert _report(bench_dir.path / "out.json")["summary"] == {}


def test_unwritable_outputs(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(
        test_b="import pytest\n\n@pytest.mark.hetero(command=['python', 'work.py'])\ndef test_b():\n    pass\n"
    )
    (bench_dir.path / "a-file").write_text("")
    no_dir = bench_dir.runpytest("--hetero-output-dir=a-file/sub")
    assert no_dir.ret == pytest.ExitCode.USAGE_ERROR
    no_dir.stderr.fnmatch_lines(["*--hetero-output-dir a-file/sub: cannot create it: *"])
    no_json = bench_dir.runpytest("-q", "--hetero-json=a-file/out.json")
    assert no_json.ret == pytest.ExitCode.INTERNAL_ERROR
    no_json.stdout.fnmatch_lines(["pytest-hetero: could not write the JSON report a-file/out.json: *"])


def test_parametrised_cases_have_their_own_references(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(
        test_bs="""
import pytest

@pytest.mark.hetero(command=["python", "work.py"], config={"metrics": {"throughput_sps": 100.0}})
@pytest.mark.parametrize("bs", [32, 64])
def test_bs(bs, hetero_result):
    pass
"""
    )
    bench_dir.makefile(
        ".yaml",
        references="""
version: 1
references:
  test_bs.py::test_bs[64]:
    local: {throughput_sps: [500, -0.1, null]}
  test_bs:
    "*": {throughput_sps: {value: 100, lower: -0.05, upper: 0.05, unit: samples/s}}
""",
    )
    result = bench_dir.runpytest("--hetero-json=out.json")
    result.assert_outcomes(passed=1, failed=1)
    tests = sorted(r["test"] for r in _report(bench_dir.path / "out.json")["results"])
    assert tests == ["test_bs.py::test_bs[32]", "test_bs.py::test_bs[64]"]
    bench_dir.runpytest("--hetero-update-references").assert_outcomes(passed=2)
    text = (bench_dir.path / "references.yaml").read_text()
    assert "lower: -0.05" in text, "the glob entry that applied keeps its tolerances"
    assert text.count("throughput_sps") == 2, f"no new entries were added:\n{text}"


def test_candidate_keys() -> None:
    assert candidate_keys("t.py::test_y[bs64]") == ["t.py::test_y[bs64]", "t.py::test_y", "test_y[bs64]", "test_y"]
    assert candidate_keys("test_y") == ["test_y"]


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("'cpu'", "*test_a: @pytest.mark.hetero accelerators= must be a list of kinds*"),
        ("['gpu']", "*test_a: unknown accelerator kind(s) [[]'gpu'[]]; valid: *"),
    ],
)
def test_marker_accelerators_are_validated(pytester: pytest.Pytester, given: str, problem: str) -> None:
    pytester.makepyfile(
        f"import pytest\n\n@pytest.mark.hetero(command=['x'], accelerators={given})\ndef test_a():\n    pass\n"
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([problem])


def test_workload_name_and_collect_failure_tail(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(
        test_n="""
import pytest

@pytest.mark.hetero(command=["sh", "-c", "echo 'loading data'; echo 'no such dataset' >&2"])
def test_n():
    pass
"""
    )
    result = bench_dir.runpytest("--hetero-json=out.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["collect: *printed no ':::HETERO_METRICS' line*", "*no such dataset*"])
    assert _report(bench_dir.path / "out.json")["results"][0]["workload"]["name"] == "test_n"


def test_killed_by_a_signal_says_so(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(
        test_k="import pytest\n\n@pytest.mark.hetero(command=['sh', '-c', 'kill -9 $$'])\ndef test_k():\n    pass\n"
    )
    result = bench_dir.runpytest()
    result.stdout.fnmatch_lines(["wait: the workload was killed by signal 9 (SIGKILL) (out of memory?)*"])
