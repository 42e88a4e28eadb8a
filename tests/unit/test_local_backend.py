from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_hetero.backends.base import JobSpec, JobState
from pytest_hetero.backends.local import LocalBackend, LocalOptions
from pytest_hetero.config.models import Accelerator, BackendConfig, Environment, LauncherConfig, Platform, Resources
from pytest_hetero.errors import ConfigError, JobFailedError, JobTimeoutError, SubmitError
from pytest_hetero.launchers import get_launcher
from pytest_hetero.scheduler import run_job
from pytest_hetero.workload import Workload

PLATFORM = Platform(
    name="t",
    accelerator=Accelerator(kind="cpu"),
    backend=BackendConfig(kind="local", options={"kill_grace_s": 0.5}),
    environment=Environment(env={"FROM_PLATFORM": "yes"}),
)


def _spec(tmp_path: Path, code: str, timeout_s: float = 30.0) -> JobSpec:
    return JobSpec(
        name="t",
        argv=(sys.executable, "-c", code),
        workdir=tmp_path / "job",
        platform=PLATFORM,
        env={"FROM_SPEC": "1"},
        timeout_s=timeout_s,
    )


def test_run_captures_output_and_environment(tmp_path: Path) -> None:
    code = "import os, sys; print(os.environ['FROM_PLATFORM'], os.environ['FROM_SPEC']); print('e', file=sys.stderr)"
    output = run_job(LocalBackend(PLATFORM), _spec(tmp_path, code))
    assert output.state is JobState.COMPLETED and output.exit_code == 0
    assert output.stdout() == "yes 1\n"
    assert output.stderr_path.read_text() == "e\n"


def test_nonzero_exit_is_a_wait_failure_with_the_log_tail(tmp_path: Path) -> None:
    with pytest.raises(JobFailedError) as info:
        run_job(LocalBackend(PLATFORM), _spec(tmp_path, "import sys; print('dying'); sys.exit(7)"))
    assert str(info.value).startswith("wait: the workload exited with status 7")
    assert "dying" in str(info.value)


def test_time_limit_kills_the_process_group(tmp_path: Path) -> None:
    code = (
        "import subprocess, time; p = subprocess.Popen(['sleep', '60']);"
        " open('child', 'w').write(str(p.pid)); time.sleep(60)"
    )
    spec = _spec(tmp_path, code, timeout_s=1.0)
    spec.workdir.mkdir(parents=True)
    with pytest.raises(JobTimeoutError, match="ran past its time limit"):
        run_job(LocalBackend(PLATFORM), spec)
    child = int((spec.workdir / "child").read_text())
    assert _gone_within(child, 10.0)


def _gone_within(pid: int, timeout_s: float) -> bool:
    """A SIGKILLed process ends once it is next scheduled: on a loaded machine, not at once."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status")
        try:
            if "zombie" in status.read_text():
                return True
        except OSError:
            return True  # gone
        time.sleep(0.05)
    return False


def test_missing_program_is_a_launch_error(tmp_path: Path) -> None:
    spec = JobSpec(name="t", argv=("/nonexistent/prog",), workdir=tmp_path, platform=PLATFORM)
    with pytest.raises(SubmitError, match="launch: cannot start '/nonexistent/prog'"):
        LocalBackend(PLATFORM).submit(spec)


def test_cancel_is_idempotent(tmp_path: Path) -> None:
    backend = LocalBackend(PLATFORM)
    handle = backend.submit(_spec(tmp_path, "import time; time.sleep(60)"))
    backend.cancel(handle)
    backend.cancel(handle)
    assert backend.status(handle) is JobState.CANCELLED


def test_options_are_typed_with_their_defaults() -> None:
    assert LocalBackend(PLATFORM).options == LocalOptions(kill_grace_s=0.5, inherit_env=True)
    bare = Platform(name="b", accelerator=Accelerator(kind="cpu"), backend=BackendConfig(kind="local"))
    assert LocalBackend(bare).options == LocalOptions(kill_grace_s=5.0, inherit_env=True)


def test_bad_options_are_refused_naming_the_platform() -> None:
    platform = Platform(
        name="bad", accelerator=Accelerator(kind="cpu"), backend=BackendConfig(kind="local", options={"kill_grace": 1})
    )
    with pytest.raises(ConfigError, match=r"^platform 'bad' \(<built-in>\): backend.options: Additional properties"):
        LocalBackend(platform)


def test_inherit_env_false_passes_only_path_and_the_platform_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HETERO_TEST_LEAK", "leaked")
    platform = Platform(
        name="clean",
        accelerator=Accelerator(kind="cpu"),
        backend=BackendConfig(kind="local", options={"inherit_env": False}),
        environment=Environment(env={"FROM_PLATFORM": "yes"}),
    )
    code = "import os; print(sorted(k for k in os.environ if k in ('PATH', 'FROM_PLATFORM', 'HETERO_TEST_LEAK')))"
    spec = JobSpec(name="t", argv=(sys.executable, "-c", code), workdir=tmp_path / "job", platform=platform)
    assert run_job(LocalBackend(platform), spec).stdout() == "['FROM_PLATFORM', 'PATH']\n"


def test_each_job_gets_the_environment_as_it_is_when_it_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The inherited environment is encoded once and reused: a variable set, changed or removed is seen."""
    backend = LocalBackend(PLATFORM)
    code = "import os; print(os.environ.get('HETERO_TEST_VAR', '-'), os.environ['FROM_SPEC'])"

    def seen(name: str) -> str:
        return run_job(backend, _spec(tmp_path / name, code)).stdout()

    monkeypatch.delenv("HETERO_TEST_VAR", raising=False)
    assert seen("a") == "- 1\n"
    monkeypatch.setenv("HETERO_TEST_VAR", "first")
    assert seen("b") == "first 1\n"
    monkeypatch.setenv("HETERO_TEST_VAR", "second")
    assert seen("c") == "second 1\n"
    monkeypatch.delenv("HETERO_TEST_VAR")
    assert seen("d") == "- 1\n"


def test_torchrun_on_two_nodes_is_refused_not_run_on_one() -> None:
    """This host is one node: the local backend offers no rendezvous, so torchrun says so."""
    platform = Platform(
        name="two",
        accelerator=Accelerator(kind="cpu"),
        backend=BackendConfig(kind="local"),
        launcher=LauncherConfig(kind="torchrun"),
        resources=Resources(nodes=2),
    )
    context = LocalBackend(platform).launch_context()
    assert (context.nodes, context.rendezvous) == (2, None)
    with pytest.raises(ConfigError, match=r"platform 'two': torchrun on 2 nodes needs a backend that runs a command "):
        get_launcher(platform).command(Workload(name="w", command=("train.py",)), context)


def test_a_job_that_ended_by_itself_leaves_no_escaped_process_behind(tmp_path: Path) -> None:
    """A child in its own session and a double-forked daemon outlive the workload's exit: both are ended."""
    code = (
        "import os, subprocess, time\n"
        "escaped = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        open('daemon', 'w').write(str(os.getpid())); time.sleep(300)\n"
        "    os._exit(0)\n"
        "while not os.path.exists('daemon'): time.sleep(0.01)\n"
        "open('escaped', 'w').write(str(escaped.pid))\n"
    )
    spec = _spec(tmp_path, code)
    spec.workdir.mkdir(parents=True)
    assert run_job(LocalBackend(PLATFORM), spec).state is JobState.COMPLETED
    for name in ("escaped", "daemon"):
        assert _gone_within(int((spec.workdir / name).read_text()), 10.0), name


# In a process of its own (the test process may have other children): the walk of /proc is skipped
# after a job that left nothing, and not after one whose child escaped its group.
ESCAPE_CHECK = """
import os, subprocess, sys
from pytest_hetero.backends import local_tree
assert local_tree.become_subreaper()
quiet = subprocess.Popen(["true"], start_new_session=True)
local_tree.track_leader(quiet.pid)
quiet.wait()
local_tree.forget_leader(quiet.pid)
print(local_tree._nothing_escaped(quiet.pid))
env = {**os.environ, local_tree.MARKER_ENV: "t1"}
leave = "import subprocess; print(subprocess.Popen(['sleep', '300'], start_new_session=True, stdout=-3).pid)"
argv = [sys.executable, "-c", leave]
loud = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.PIPE, env=env)
local_tree.track_leader(loud.pid)
stray = int(loud.communicate()[0])
local_tree.forget_leader(loud.pid)
print(local_tree._nothing_escaped(loud.pid))
local_tree.kill_job(loud.pid, "t1", leader=None)
print(local_tree._nothing_escaped(loud.pid))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a child subreaper and /proc are Linux's")
def test_the_proc_walk_is_skipped_only_when_nothing_can_have_escaped() -> None:
    done = subprocess.run([sys.executable, "-c", ESCAPE_CHECK], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "True"]
