"""Issue 14: bad input is a usage error (exit 4) before any job is submitted, dry runs included.

Bad ``hetero`` marks (every one, each naming its test), a built-in workload's config, and
launcher options that cannot fit the platform (poprun's shapes).
"""

from __future__ import annotations

import importlib.util

import pytest

BAD_MARKS = """
import pytest

@pytest.mark.hetero(command=["touch", "ran_x"], timeout_min=-1)
def test_x(hetero_result):
    pass

@pytest.mark.hetero(command=["touch", "ran_y"], min_accelerators=-2)
def test_y(hetero_result):
    pass

@pytest.mark.hetero(command=["python", "work.py"])
def test_good(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0
"""


def test_every_bad_mark_is_a_usage_error_naming_its_test(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_m=BAD_MARKS)
    for args in (["test_m.py"], ["test_m.py", "--hetero-dry-run"]):
        result = bench_dir.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                "*invalid @pytest.mark.hetero:",
                "*test_m.py::test_x: @pytest.mark.hetero timeout_min=-1: expected a number > 0*",
                "*test_m.py::test_y: @pytest.mark.hetero min_accelerators=-2: expected a whole number >= 0",
            ]
        )
    assert not list(bench_dir.path.rglob("ran_*"))


def test_a_bad_mark_selected_alone_is_the_same_usage_error(bench_dir: pytest.Pytester) -> None:
    bench_dir.makepyfile(test_m=BAD_MARKS)
    result = bench_dir.runpytest("test_m.py::test_y")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_m.py::test_y: @pytest.mark.hetero min_accelerators=-2*"])
    assert "test_x" not in result.stderr.str()


@pytest.mark.parametrize("selection", [["test_m.py::test_good"], ["test_m.py", "-k", "good"]])
def test_a_good_test_beside_bad_marks_runs(bench_dir: pytest.Pytester, selection: list[str]) -> None:
    bench_dir.makepyfile(test_m=BAD_MARKS)
    result = bench_dir.runpytest(*selection)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, deselected=2 if "-k" in selection else 0)


BAD_CONFIGS = """
import pytest

@pytest.mark.hetero(workload="resnet50", config={"batch_sz": 4, "preset": "tiny"})
def test_typo(hetero_result):
    pass

@pytest.mark.hetero(workload="resnet50", config={"batch_size": "4"})
def test_type(hetero_result):
    pass

@pytest.mark.parametrize("preset", ["tiny", "huge"])
@pytest.mark.hetero(workload="resnet50", params=["preset"])
def test_sweep(hetero_result, preset):
    pass
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the workloads' checks need torch")
def test_a_builtin_workloads_config_is_checked_before_any_job(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_c=BAD_CONFIGS)
    for args in ([], ["--hetero-dry-run"]):
        result = pytester.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                "*test_c.py::test_typo[[]local[]]: @pytest.mark.hetero(workload='resnet50') config: "
                "unknown config key 'batch_sz' (did you mean 'batch_size'?)*",
                "*test_c.py::test_type[[]local[]]: *config key 'batch_size' must be int, got str '4'",
                "*test_c.py::test_sweep[[]local-huge[]]: *config key 'preset' must be one of tiny, standard, subset*",
            ]
        )
        assert "test_sweep[local-tiny]" not in result.stderr.str()
    pytester.runpytest("test_c.py::test_sweep[local-tiny]", "--hetero-dry-run").assert_outcomes(passed=1)


CATALOGUE = """
version: 1
platforms:
  - name: cpu
    accelerator: {kind: cpu}
    backend: {kind: local}
  - name: pod16
    accelerator: {kind: graphcore-ipu, count_per_node: 16}
    backend: {kind: local}
    launcher:
      kind: poprun
      options: {num_instances: 3, ipus_per_replica: 3}
"""


def test_launcher_options_that_cannot_fit_are_catalogue_errors(bench_dir: pytest.Pytester) -> None:
    bench_dir.makefile(".yaml", platforms=CATALOGUE)
    bench_dir.makepyfile(
        test_p='import pytest\n\n@pytest.mark.hetero(command=["touch", "ran"])\ndef test_p():\n    pass\n'
    )
    for args in ([], ["--hetero-dry-run"], ["--platform=cpu"]):
        result = bench_dir.runpytest("--platforms-file=platforms.yaml", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                "*platforms.yaml: invalid platform catalogue (1 problem(s)):",
                "*$.platforms[[]1[]].launcher.options: poprun: num_replicas 5 is not a multiple of num_instances 3;*",
            ]
        )
    assert not (bench_dir.path / "ran").exists()


def test_under_xdist_bad_marks_are_a_collection_error_and_nothing_runs(bench_dir: pytest.Pytester) -> None:
    """An xdist worker cannot raise a usage error: it reports every bad mark once and runs no test."""
    bench_dir.makepyfile(test_m=BAD_MARKS.replace('command=["python", "work.py"]', 'command=["touch", "ran_good"]'))
    result = bench_dir.runpytest_subprocess("test_m.py", "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*test_m.py::test_x: @pytest.mark.hetero timeout_min=-1*", "*test_m.py::test_y: *"])
    # One worker's error, not one per worker (the short summary repeats it, in full where CI is set).
    errors = result.stdout.str().split("short test summary info", 1)[0]
    assert errors.count("test_m.py::test_x: @pytest.mark.hetero") == 1
    assert not list(bench_dir.path.rglob("ran_*"))
