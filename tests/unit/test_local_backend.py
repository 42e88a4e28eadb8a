from __future__ import annotations

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
