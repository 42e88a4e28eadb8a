"""The Slurm backend on a real cluster: every outcome, no orphans, concurrency, dry run.

Start the cluster with ``scripts/slurm-local.sh up`` (as root). Without a
reachable cluster these tests skip, except under CI, where they fail. The
workloads are tiny Python programs, so the whole file takes a few minutes;
the time-limit test alone waits for Slurm's one-minute granularity.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import pytest

from pytest_hetero.backends.base import JobSpec, JobState, raise_for_state
from pytest_hetero.backends.slurm import SlurmBackend, SlurmJobHandle
from pytest_hetero.config.loader import parse_catalogue
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import JobFailedError, JobTimeoutError, SubmitError
from pytest_hetero.launchers import get_launcher
from pytest_hetero.metrics import parse_metrics_record
from pytest_hetero.reporting.json_report import expand_report
from pytest_hetero.scheduler import run_job, wait_for_handle
from pytest_hetero.workload import Workload

if TYPE_CHECKING:
    from conftest import LiveSlurm  # the slurm_cluster fixture's type

pytestmark = pytest.mark.slurm

PYTHON = sys.executable
PROGRAM = """
import json, os, sys, time
config = json.loads(os.environ.get("HETERO_WORKLOAD_CONFIG") or "{}")
env = os.environ.get
print("working in job", env("SLURM_JOB_ID"), "rank", env("SLURM_PROCID"), "on", env("SLURMD_NODENAME"), flush=True)
for name in config.get("show_env", []):
    print(name, "=", os.environ.get(name))
time.sleep(config.get("sleep_s", 0))
if config.get("exit_code"):
    print("boom: simulated crash", file=sys.stderr)
    sys.exit(config["exit_code"])
metric = {"name": "throughput_sps", "value": 42.0, "unit": "samples/s"}
print(":::HETERO_METRICS " + json.dumps({"metrics": [metric], "workload": "tiny"}))
"""


def make_platform(
    launcher: str = "python",
    env: dict[str, str] | None = None,
    resources: dict[str, object] | None = None,
    launcher_options: dict[str, object] | None = None,
    **options: object,
) -> Platform:
    entry = {
        "name": "live",
        "accelerator": {"kind": "cpu"},
        "backend": {"kind": "slurm", "options": options},
        "launcher": {"kind": launcher, "options": launcher_options or {}},
        "environment": {"python": PYTHON, "env": env or {}},
        "resources": {"time_limit_min": 1, **(resources or {})},
    }
    return parse_catalogue({"version": 1, "platforms": [entry]}, "live").platforms[0]


def make_spec(workdir: Path, platform: Platform | None = None, **config: object) -> JobSpec:
    platform = platform or make_platform()
    workload = Workload(name="tiny", command=(PYTHON, "-c", PROGRAM), config=config)
    return JobSpec(
        name=f"live-{workdir.name}",
        argv=tuple(get_launcher(platform).command(workload, SlurmBackend(platform).launch_context())),
        workdir=workdir / "job",
        platform=platform,
        env={"HETERO_WORKLOAD_CONFIG": workload.config_json},
        timeout_s=60.0,
    )


def submit_running(cluster: LiveSlurm, backend: SlurmBackend, spec: JobSpec) -> SlurmJobHandle:
    handle = backend.submit(spec)
    cluster.wait_until(lambda: backend.status(handle) is JobState.RUNNING, 30, f"job {handle.job_id} running")
    return handle


# -- outcomes, through the backend ------------------------------------------------


def test_completed_job_passes_the_environment_and_keeps_its_script(slurm_dir: Path, slurm_cluster: LiveSlurm) -> None:
    platform = make_platform(env={"PLAIN": "visible it's", "API_TOKEN": "hunter2-secret"})
    spec = make_spec(slurm_dir, platform, show_env=["PLAIN", "API_TOKEN", "HETERO_WORKLOAD_CONFIG"])
    output = run_job(SlurmBackend(platform), spec)
    assert (output.state, output.exit_code) == (JobState.COMPLETED, 0)
    assert output.job_id.isdigit()
    for line in (f"working in job {output.job_id}", "PLAIN = visible it's", "API_TOKEN = hunter2-secret"):
        assert line in output.stdout()
    assert parse_metrics_record(output.stdout(), output.stdout_path).metrics["throughput_sps"].value == 42.0
    script = Path(output.artifacts["batch_script"]).read_text()
    assert script.startswith("#!/bin/bash") and f"#SBATCH --job-name=live-{slurm_dir.name}" in script
    assert "hunter2-secret" not in script
    assert slurm_cluster.state(output.job_id) == "COMPLETED"


def test_failed_job_reports_status_job_id_and_log_tail(slurm_dir: Path) -> None:
    with pytest.raises(JobFailedError) as info:
        run_job(SlurmBackend(make_platform()), make_spec(slurm_dir, exit_code=3))
    text = str(info.value)
    assert text.startswith("wait: the workload exited with status 3 after")
    assert info.value.job_id is not None
    assert f"(job {info.value.job_id})" in text and info.value.job_id.isdigit()
    assert "boom: simulated crash" in info.value.log_tail and "working in job" in info.value.log_tail


def test_job_past_its_time_limit_is_a_timeout(slurm_dir: Path, slurm_cluster: LiveSlurm) -> None:
    started = time.monotonic()
    with pytest.raises(JobTimeoutError) as info:
        run_job(SlurmBackend(make_platform()), make_spec(slurm_dir, sleep_s=600))
    assert "the job ran past its time limit" in str(info.value)
    assert slurm_cluster.state(str(info.value.job_id)) == "TIMEOUT"
    assert "working in job" in info.value.log_tail
    assert time.monotonic() - started < 180  # Slurm's 1-minute limit, enforced within its check period


def test_job_queued_past_its_allowance_is_cancelled_at_the_deadline(slurm_dir: Path, slurm_cluster: LiveSlurm) -> None:
    platform = make_platform(queue_timeout_min=0.05, sbatch_extra=["--hold"])
    with pytest.raises(JobTimeoutError, match=r"wait: no result 3 s after submission \(job \d+\)") as info:
        run_job(SlurmBackend(platform), make_spec(slurm_dir, platform))
    assert not slurm_cluster.jobs_under(slurm_dir)
    # scancel is at once in squeue; accounting (slurmdbd) records it a moment later.
    job_id = str(info.value.job_id)
    slurm_cluster.wait_until(lambda: slurm_cluster.state(job_id).startswith("CANCELLED"), 30, "CANCELLED in sacct")


def test_job_cancelled_from_outside(slurm_dir: Path, slurm_cluster: LiveSlurm) -> None:
    backend = SlurmBackend(make_platform())
    handle = submit_running(slurm_cluster, backend, make_spec(slurm_dir, sleep_s=600))
    slurm_cluster.run("scancel", handle.job_id)
    assert wait_for_handle(backend, handle).state is JobState.CANCELLED
    with pytest.raises(JobFailedError, match=rf"wait: the job was cancelled \(job {handle.job_id}\)"):
        raise_for_state(backend.collect(handle))


def test_node_failure_is_reported_and_the_node_restored(
    slurm_dir: Path, multi_nodes: list[str], slurm_cluster: LiveSlurm
) -> None:
    node = multi_nodes[-1]  # never the default partition's node: other tests keep running there
    platform = make_platform(partition="multi", sbatch_extra=[f"--nodelist={node}"])
    backend = SlurmBackend(platform)
    handle = submit_running(slurm_cluster, backend, make_spec(slurm_dir, platform, sleep_s=600))
    try:
        slurm_cluster.run("scontrol", "update", f"nodename={node}", "state=down", "reason=pytest-hetero live test")
        assert wait_for_handle(backend, handle).state is JobState.NODE_FAIL
        with pytest.raises(JobFailedError, match=rf"the node running the job failed \(job {handle.job_id}\)"):
            raise_for_state(backend.collect(handle))
    finally:
        slurm_cluster.restore_node(node)


def test_cancel_stops_the_job_for_real(slurm_dir: Path, slurm_cluster: LiveSlurm) -> None:
    backend = SlurmBackend(make_platform())
    handle = submit_running(slurm_cluster, backend, make_spec(slurm_dir, sleep_s=600))
    backend.cancel(handle)
    backend.cancel(handle)  # idempotent
    slurm_cluster.wait_for_jobs(slurm_dir, [], timeout_s=30)  # gone from squeue
    assert slurm_cluster.state(handle.job_id).startswith("CANCELLED")


def _ranks(stdout: str) -> dict[str, str]:
    """rank -> node, from the workload's first lines."""
    found = (re.match(r"working in job \d+ rank (\d+) on (\S+)", line) for line in stdout.splitlines())
    return {match[1]: match[2] for match in found if match}


def test_srun_launcher_starts_every_task_of_the_allocation(slurm_dir: Path) -> None:
    platform = make_platform(launcher="srun", tasks_per_node=2)
    output = run_job(SlurmBackend(platform), make_spec(slurm_dir, platform))
    assert sorted(_ranks(output.stdout())) == ["0", "1"]


def test_srun_launcher_across_two_nodes(slurm_dir: Path, multi_nodes: list[str]) -> None:
    platform = make_platform(launcher="srun", partition="multi", tasks_per_node=2, resources={"nodes": 2})
    output = run_job(SlurmBackend(platform), make_spec(slurm_dir, platform))
    ranks = _ranks(output.stdout())
    assert sorted(ranks) == ["0", "1", "2", "3"]
    assert set(ranks.values()) == set(multi_nodes[:2])


# Four ranks share one log: each line goes out in one write, or the lines interleave
# (PYTHONUNBUFFERED makes print() write its pieces one by one).
DISTRIBUTED = """
import os, sys, torch, torch.distributed as dist
dist.init_process_group("gloo")
total = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(total)
rank, size, node = dist.get_rank(), dist.get_world_size(), os.environ["SLURMD_NODENAME"]
sys.stdout.write(f"rank {rank} of {size} on {node} sum {total.item()}\\n")
sys.stdout.flush()
dist.destroy_process_group()
"""


def test_torchrun_rendezvous_across_two_nodes_from_the_slurm_environment(
    slurm_dir: Path, multi_nodes: list[str], slurm_cluster: LiveSlurm
) -> None:
    pytest.importorskip("torch")
    script = slurm_dir / "dist.py"
    script.write_text(DISTRIBUTED)
    platform = make_platform(
        launcher="torchrun",
        launcher_options={"nproc_per_node": 2, "rdzv_port": slurm_cluster.free_port()},
        partition="multi",
        resources={"nodes": 2, "time_limit_min": 3},
    )
    workload = Workload(name="dist", command=(str(script),))
    spec = replace(
        make_spec(slurm_dir, platform),
        argv=tuple(get_launcher(platform).command(workload, SlurmBackend(platform).launch_context())),
        timeout_s=180,
    )
    output = run_job(SlurmBackend(platform), spec)
    lines = sorted(line for line in output.stdout().splitlines() if line.startswith("rank "))
    assert [line.split(" on ")[0] for line in lines] == [f"rank {r} of 4" for r in range(4)], output.log_tail()
    assert {line.split(" on ")[1].split()[0] for line in lines} == set(multi_nodes[:2])
    assert all(line.endswith("sum 10.0") for line in lines)


# -- Slurm refusing or unreachable ------------------------------------------------


def test_unknown_partition_is_rejected_with_sbatch_message(slurm_dir: Path, slurm_cluster: LiveSlurm) -> None:
    platform = make_platform(partition="no-such-partition")
    with pytest.raises(SubmitError) as info:
        SlurmBackend(platform).submit(make_spec(slurm_dir, platform))
    assert str(info.value).startswith("launch: sbatch rejected the job: sbatch: error: ")
    assert "invalid partition" in str(info.value).lower()
    assert not slurm_cluster.jobs_under(slurm_dir)


class _BackendOptions(TypedDict, total=False):
    """Slurm backend options that a parametrized test passes on to make_platform."""

    command_timeout_s: int


@pytest.mark.parametrize(
    ("options", "message", "bound_s"),
    [
        ({}, "launch: the Slurm controller is unreachable: sbatch: error: *Unable to contact slurm controller*", 30),
        ({"command_timeout_s": 2}, "launch: the Slurm controller is unreachable: sbatch did not answer within 2 s*", 8),
    ],
    ids=["sbatch-gives-up", "our-timeout"],
)
def test_controller_down_is_a_clear_error_in_bounded_time(
    slurm_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: _BackendOptions,
    message: str,
    bound_s: float,
    slurm_cluster: LiveSlurm,
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf_pointing_nowhere(slurm_dir, "SlurmctldPort")))
    started = time.monotonic()
    platform = make_platform(**options)
    with pytest.raises(SubmitError) as info:
        SlurmBackend(platform).submit(make_spec(slurm_dir, platform))
    assert time.monotonic() - started < bound_s
    assert fnmatch(str(info.value), message), str(info.value)


def test_accounting_down_fails_the_job_after_the_grace_period(
    slurm_dir: Path, monkeypatch: pytest.MonkeyPatch, slurm_cluster: LiveSlurm
) -> None:
    backend = SlurmBackend(make_platform(unreachable_grace_s=1, command_timeout_s=3))
    handle = submit_running(slurm_cluster, backend, make_spec(slurm_dir, sleep_s=600))
    bad_conf = slurm_cluster.conf_pointing_nowhere(slurm_dir, "AccountingStoragePort", "SlurmctldPort")
    monkeypatch.setenv("SLURM_CONF", str(bad_conf))
    started = time.monotonic()
    with pytest.raises(JobFailedError) as info:
        _poll_forever(backend, handle)
    assert time.monotonic() - started < 20
    assert "cannot read the job's state from Slurm" in str(info.value)
    assert f"scancel {handle.job_id}" in str(info.value)
    monkeypatch.undo()  # the slurm_dir fixture cancels the job that could not be cancelled


def _poll_forever(backend: SlurmBackend, handle: SlurmJobHandle) -> None:
    while True:
        backend.status(handle)
        time.sleep(0.3)


# -- through the plugin ---------------------------------------------------------------


def _catalogue(**platforms: str) -> str:
    """platforms.yaml with one Slurm CPU platform per keyword: name -> more YAML flow entries."""
    common = f"accelerator: {{kind: cpu}}, environment: {{python: {PYTHON}}}, resources: {{time_limit_min: 2}}"
    entries = [f"  - {{name: {name.replace('_', '-')}, {common}, {extra}}}" for name, extra in platforms.items()]
    return "\n".join(["version: 1", "platforms:", *entries]) + "\n"


def _benchmarks(pytester: pytest.Pytester, **configs: Mapping[str, object]) -> None:
    """One benchmark test per keyword (test name -> workload config) running PROGRAM."""
    work = pytester.makefile(".py", work=PROGRAM)
    tests = ["import pytest"]
    for name, config in configs.items():
        tests += [
            f"@pytest.mark.hetero(command=[{PYTHON!r}, {str(work)!r}], config={config!r})",
            f"def test_{name}(hetero_result):",
            "    assert hetero_result.metric('throughput_sps') == 42.0",
        ]
    pytester.makepyfile(test_live="\n".join(tests) + "\n")
    pytester.makeini("[pytest]\njunit_family = xunit1\n")


def test_plugin_reports_job_id_metrics_script_and_failures(
    live_pytester: pytest.Pytester, slurm_cluster: LiveSlurm
) -> None:
    live_pytester.makefile(".yaml", platforms=_catalogue(slurm_cpu="backend: {kind: slurm}, max_jobs: 2"))
    _benchmarks(live_pytester, ok={"sleep_s": 1}, crash={"exit_code": 3})
    result = live_pytester.runpytest(
        "--platforms-file=platforms.yaml", "--platform=slurm-cpu", "--hetero-json=out.json", "--junitxml=junit.xml"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*wait: the workload exited with status 3 after * s (job *)*", "*boom: simulated crash*"]
    )
    records = {
        r["nodeid"]: r for r in expand_report(json.loads((live_pytester.path / "out.json").read_text()))["results"]
    }
    ok = records["test_live.py::test_ok[slurm-cpu]"]
    assert ok["job"]["id"].isdigit() and ok["job"]["state"] == "COMPLETED"
    assert ok["metrics"]["throughput_sps"]["value"] == 42.0
    script = Path(ok["job"]["logs"]["batch_script"]).read_text()
    assert "#SBATCH --job-name='test_ok[slurm-cpu]'" in script
    job_name = ("sacct", "-X", "-n", "-P", "-o", "JobName", "-j", ok["job"]["id"])  # sbatch drops the quotes
    slurm_cluster.wait_until(
        lambda: slurm_cluster.run(*job_name) == "test_ok[slurm-cpu]", 10, "the job name in accounting"
    )
    crash = records["test_live.py::test_crash[slurm-cpu]"]
    assert (crash["job"]["state"], crash["job"]["exit_code"]) == ("FAILED", 3)
    assert f'name="hetero.job_id" value="{ok["job"]["id"]}"' in (live_pytester.path / "junit.xml").read_text()


def test_dry_run_prints_the_script_and_submits_nothing(
    live_pytester: pytest.Pytester, slurm_cluster: LiveSlurm
) -> None:
    live_pytester.makefile(".yaml", platforms=_catalogue(slurm_cpu="backend: {kind: slurm, options: {qos: normal}}"))
    _benchmarks(live_pytester, ok={})
    result = live_pytester.runpytest("--platforms-file=platforms.yaml", "--platform=slurm-cpu", "--hetero-dry-run")
    result.stdout.fnmatch_lines(["*dry run: test_live.py::test_ok[[]slurm-cpu[]]*", "#!/bin/bash"])
    result.stdout.fnmatch_lines(["#SBATCH --job-name='test_ok[[]slurm-cpu[]]'", "#SBATCH --qos=normal"])
    result.stdout.fnmatch_lines(["export HETERO_PLATFORM=slurm-cpu"])
    assert not list(live_pytester.path.rglob("batch.sh"))
    workdirs = slurm_cluster.run("sacct", "-X", "-n", "-P", "-o", "WorkDir", "-S", "now-10minutes").splitlines()
    assert not [w for w in workdirs if w.startswith(str(live_pytester.path))]


SLURM_STAR = ["--platform=slurm-*", "--hetero-json=out.json"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_cancels_queued_and_running_jobs(
    live_pytester: pytest.Pytester, sig: int, slurm_cluster: LiveSlurm
) -> None:
    live_pytester.makefile(
        ".yaml",
        platforms=_catalogue(
            slurm_run="backend: {kind: slurm}",
            slurm_held="backend: {kind: slurm, options: {sbatch_extra: ['--hold']}}",
        ),
    )
    _benchmarks(live_pytester, slow={"sleep_s": 600})
    proc = subprocess.Popen(
        [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "--platforms-file=platforms.yaml", *SLURM_STAR],
        cwd=live_pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        jobs = slurm_cluster.wait_for_jobs(live_pytester.path, ["PENDING", "RUNNING"])
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    slurm_cluster.wait_for_jobs(live_pytester.path, [], timeout_s=30)  # squeue holds none of the run's jobs
    assert sorted(json.loads((live_pytester.path / "out.json").read_text())["cancelled_jobs"]) == jobs
    assert all(slurm_cluster.state(job).startswith("CANCELLED") for job in jobs)


def _job_ids(pytester: pytest.Pytester) -> list[str]:
    return [r["job"]["id"] for r in json.loads((pytester.path / "out.json").read_text())["results"]]


def test_concurrent_jobs_are_bounded_by_max_jobs(live_pytester: pytest.Pytester, slurm_cluster: LiveSlurm) -> None:
    live_pytester.makefile(".yaml", platforms=_catalogue(slurm_cpu="backend: {kind: slurm}, max_jobs: 2"))
    _benchmarks(live_pytester, **{f"b{i}": {"sleep_s": 3} for i in range(4)})
    result = live_pytester.runpytest("--platforms-file=platforms.yaml", *SLURM_STAR)
    result.assert_outcomes(passed=4)
    assert slurm_cluster.max_overlap(_job_ids(live_pytester)) == 2


@pytest.mark.parametrize("max_jobs", [1, 2])
def test_xdist_workers_share_max_jobs(live_pytester: pytest.Pytester, slurm_cluster: LiveSlurm, max_jobs: int) -> None:
    """Two workers run Slurm benchmarks side by side, within one max_jobs for the run (a slot lock in the run dir)."""
    live_pytester.makefile(".yaml", platforms=_catalogue(slurm_cpu=f"backend: {{kind: slurm}}, max_jobs: {max_jobs}"))
    _benchmarks(live_pytester, **{f"b{i}": {"sleep_s": 3} for i in range(4)})
    result = live_pytester.runpytest_subprocess("--platforms-file=platforms.yaml", *SLURM_STAR, "-n", "2")
    result.assert_outcomes(passed=4)
    assert slurm_cluster.max_overlap(_job_ids(live_pytester)) == max_jobs


def test_a_relative_command_path_works_although_the_job_starts_in_its_run_directory(
    live_pytester: pytest.Pytester, slurm_cluster: LiveSlurm
) -> None:
    live_pytester.makefile(".yaml", platforms=_catalogue(slurm_cpu="backend: {kind: slurm}"))
    live_pytester.makefile(".py", prog=PROGRAM)
    live_pytester.makepyfile(
        test_rel="""
import pytest

@pytest.mark.hetero(command=["python", "prog.py"], config={})
def test_relative(hetero_result):
    assert hetero_result.metric("throughput_sps") == 42.0
"""
    )
    live_pytester.makeini("[pytest]\n")
    result = live_pytester.runpytest(
        "--platforms-file=platforms.yaml", "--platform=slurm-cpu", "--hetero-json=out.json"
    )
    result.assert_outcomes(passed=1)
    record = expand_report(json.loads((live_pytester.path / "out.json").read_text()))["results"][0]
    workdir = Path(record["job"]["logs"]["batch_script"]).parent
    assert record["job"]["argv"][-1] == str(workdir / "bundle" / "workload" / "prog.py")  # the bundle's copy
    assert record["workload"]["command"] == ["python", "prog.py"]  # the portable form
