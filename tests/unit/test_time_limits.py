"""The platform's time limit bounds the job, the test's timeout the workload inside it."""

from __future__ import annotations

from pytest_hetero.jobs import TimeLimits


def test_the_tests_timeout_bounds_the_workload_inside_the_job() -> None:
    limits = TimeLimits(job_s=240 * 60.0, workload_s=10 * 60.0)
    assert limits.bounded(["python", "w.py"]) == ("timeout", "--kill-after=30", "600", "python", "w.py")
    assert limits.describe().startswith("time limits: job 240 min") and "workload 10 min" in limits.describe()


def test_without_a_shorter_workload_bound_the_command_is_left_alone() -> None:
    assert TimeLimits(job_s=600.0, workload_s=None).bounded(["a"]) == ("a",)
    longer = TimeLimits(job_s=600.0, workload_s=900.0)
    assert longer.bounded(["a"]) == ("a",) and "capped by the job's" in longer.describe()


def test_a_kind_that_compiles_in_the_workload_gets_the_jobs_bound_only() -> None:
    limits = TimeLimits(job_s=240 * 60.0, workload_s=600.0, compiles="cerebras")
    assert limits.bounded(["python", "w.py"]) == ("python", "w.py")  # 10 min would cut compilation short
    assert "cerebras compiles inside the workload" in limits.describe()
