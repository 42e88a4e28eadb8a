"""The local backend: the workload as a separate process group on this host."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pytest_hetero.backends.base import (
    Backend,
    BackendOptions,
    JobHandle,
    JobOutput,
    JobSpec,
    JobState,
    check_options,
    narrow_handle,
)
from pytest_hetero.errors import SubmitError
from pytest_hetero.launchers.base import LaunchContext

__all__ = ["LocalBackend", "LocalJobHandle", "LocalOptions"]


@dataclass(frozen=True)
class LocalOptions(BackendOptions):
    """``backend.options`` of the local backend."""

    #: Seconds between SIGTERM and SIGKILL when a job is stopped.
    kill_grace_s: float = 5.0
    #: Start the workload with this process's environment (else only PATH, plus the platform's env).
    inherit_env: bool = True


@dataclass(kw_only=True)
class LocalJobHandle(JobHandle):
    """A process group on this host; its state is settled by ``status`` or ``cancel``."""

    proc: subprocess.Popen[bytes]
    started_at: float
    state: JobState = JobState.RUNNING
    ended_at: float | None = None


class LocalBackend(Backend):
    """Runs each job with ``subprocess.Popen`` in its own session (process group).

    stdout and stderr go to files in the job's work directory; the time limit
    is enforced by :meth:`status`; :meth:`cancel` signals the whole group
    (SIGTERM, then SIGKILL after ``kill_grace_s``) so nothing the workload
    started survives it.
    """

    name = "local"
    # Local processes end in milliseconds; start polling fast, back off to 0.5 s.
    poll_initial_s = 0.001
    poll_max_s = 0.5
    runs_on_this_host = True
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "kill_grace_s": {"type": "number", "minimum": 0},
            "inherit_env": {"type": "boolean"},
        },
    }

    options: LocalOptions

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any]) -> LocalOptions:
        return LocalOptions.from_mapping(check_options(cls.options_schema, raw))

    def launch_context(self) -> LaunchContext:
        context = super().launch_context()
        # A workload on this host runs with this interpreter, unless it runs in a container.
        python = "python3" if self.platform.environment.container_image else sys.executable
        return LaunchContext(nodes=context.nodes, ranks_per_node=context.ranks_per_node, python=python)

    def submit(self, spec: JobSpec) -> LocalJobHandle:
        try:
            spec.workdir.mkdir(parents=True, exist_ok=True)
            return self._start(spec)
        except OSError as exc:
            raise SubmitError(f"cannot prepare the job directory {spec.workdir}: {exc.strerror or exc}") from exc

    def _start(self, spec: JobSpec) -> LocalJobHandle:
        env = self._environment(spec)
        with open(spec.stdout_path, "wb") as out, open(spec.stderr_path, "wb") as err:
            try:
                proc = subprocess.Popen(
                    list(spec.argv),
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    cwd=spec.cwd or spec.workdir,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise SubmitError(f"cannot start {spec.argv[0]!r}: {exc.strerror or exc}") from exc
        return LocalJobHandle(job_id=f"local-{proc.pid}", spec=spec, proc=proc, started_at=time.monotonic())

    def _environment(self, spec: JobSpec) -> dict[str, str]:
        env = dict(os.environ) if self.options.inherit_env else {"PATH": os.environ.get("PATH", "")}
        env.update(self.platform.environment.env)
        env.update(spec.env)
        return env

    def status(self, handle: JobHandle) -> JobState:
        job = narrow_handle(handle, LocalJobHandle)
        if job.state.finished:
            return job.state
        code = job.proc.poll()
        if code is not None:
            # Whatever the workload left behind in its group (loader workers, daemons) goes with it.
            _signal_group(job.proc.pid, signal.SIGKILL)
            return self._settle(job, JobState.COMPLETED if code == 0 else JobState.FAILED)
        if time.monotonic() - job.started_at > job.spec.timeout_s:
            self._kill_group(job.proc)
            return self._settle(job, JobState.TIMEOUT)
        return JobState.RUNNING

    def _settle(self, job: LocalJobHandle, state: JobState) -> JobState:
        job.state = state
        job.ended_at = time.monotonic()
        return state

    def cancel(self, handle: JobHandle) -> None:
        job = narrow_handle(handle, LocalJobHandle)
        if job.state.finished:
            return
        self._kill_group(job.proc)
        self._settle(job, JobState.CANCELLED)

    def _kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the process group, SIGKILL what is left after the grace period."""
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=self.options.kill_grace_s)
        # The leader may be gone while children linger in the group.
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()

    def collect(self, handle: JobHandle) -> JobOutput:
        job = narrow_handle(handle, LocalJobHandle)
        ended_at = time.monotonic() if job.ended_at is None else job.ended_at
        return JobOutput(
            job_id=job.job_id,
            state=job.state,
            exit_code=job.proc.returncode,
            stdout_path=job.spec.stdout_path,
            stderr_path=job.spec.stderr_path,
            elapsed_s=ended_at - job.started_at,
        )


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
