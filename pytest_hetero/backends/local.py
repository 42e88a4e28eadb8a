"""The local backend: the workload as a separate process group on this host, every descendant tracked."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
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
from pytest_hetero.backends.local_tree import (
    MARKER_ENV,
    become_subreaper,
    forget_leader,
    kill_job,
    signal_job,
    track_leader,
)
from pytest_hetero.errors import SubmitError
from pytest_hetero.ids import new_id
from pytest_hetero.interrupts import HURRY
from pytest_hetero.launchers.base import LaunchContext

__all__ = ["LocalBackend", "LocalJobHandle", "LocalOptions"]


class _InheritedEnvironment:
    """This process's environment as a child gets it (bytes), encoded again only after it changed.

    ``os.environ`` keeps its variables encoded (CPython's ``_data``): comparing those with the copy
    taken last is one C-level dict comparison, where copying ``os.environ`` and encoding every
    variable again cost about 70 µs a job (a trivial job's whole overhead is a few hundred).
    """

    def __init__(self) -> None:
        self._seen: dict[bytes, bytes] = {}

    def get(self) -> dict[bytes, bytes]:
        """Never modified by the caller: merged into a new dict per job."""
        data = getattr(os.environ, "_data", None)
        if not isinstance(data, dict):  # not CPython's os.environ: encode it every time
            return {os.fsencode(key): os.fsencode(value) for key, value in os.environ.items()}
        if data != self._seen:
            self._seen = dict(data)
        return self._seen


_INHERITED = _InheritedEnvironment()


@functools.cache
def _devnull() -> int:
    """A descriptor of /dev/null, opened once: every job's stdin (``subprocess.DEVNULL`` opens one a job)."""
    return os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))


_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


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
    #: Marks every process of this job in its environment (see local_tree).
    token: str = ""
    state: JobState = JobState.RUNNING
    ended_at: float | None = None


class LocalBackend(Backend):
    """Runs each job with ``subprocess.Popen`` in its own session (process group).

    stdout and stderr go to files in the job's work directory; the time limit
    is enforced by :meth:`status`; :meth:`cancel` signals the whole group
    (SIGTERM, then SIGKILL after ``kill_grace_s``, at once on a second Ctrl-C)
    and every process of the job found outside it (:mod:`.local_tree`: a
    child that started its own session, an orphan), so nothing the workload
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

    def bundle_root(self, workdir: Path) -> str | None:
        """A platform that names its own interpreter (a venv with torch alone) gets the workload bundle."""
        environment = self.platform.environment
        return str(workdir / "bundle") if environment.python or environment.venv else None

    def submit(self, spec: JobSpec) -> LocalJobHandle:
        try:
            spec.workdir.mkdir(parents=True, exist_ok=True)
            if spec.bundle is not None:
                spec.bundle.write(spec.workdir / "bundle")
            return self._start(spec)
        except OSError as exc:
            raise SubmitError(f"cannot prepare the job directory {spec.workdir}: {exc.strerror or exc}") from exc

    def _start(self, spec: JobSpec) -> LocalJobHandle:
        become_subreaper()  # the job's orphans stay in this process's tree
        token = new_id()
        env = self._environment(spec, token)
        out = os.open(spec.stdout_path, _LOG_FLAGS, 0o666)  # descriptors: no file objects to build and drop
        try:
            err = os.open(spec.stderr_path, _LOG_FLAGS, 0o666)
            try:
                proc = subprocess.Popen(
                    list(spec.argv),
                    stdout=out,
                    stderr=err,
                    stdin=_devnull(),
                    cwd=spec.cwd or spec.workdir,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise SubmitError(f"cannot start {spec.argv[0]!r}: {exc.strerror or exc}") from exc
            finally:
                os.close(err)
        finally:
            os.close(out)
        track_leader(proc.pid)
        handle = LocalJobHandle(job_id=f"local-{proc.pid}", spec=spec, proc=proc, started_at=time.monotonic())
        handle.token = token
        return handle

    def _environment(self, spec: JobSpec, token: str) -> dict[bytes, bytes]:
        """The job's environment, encoded (as ``Popen`` would encode it): inherited, platform's, job's, marker."""
        base = _INHERITED.get() if self.options.inherit_env else {b"PATH": os.fsencode(os.environ.get("PATH", ""))}
        extra = {**self.platform.environment.env, **spec.env, MARKER_ENV: token}
        return {**base, **{os.fsencode(key): os.fsencode(value) for key, value in extra.items()}}

    def status(self, handle: JobHandle) -> JobState:
        job = narrow_handle(handle, LocalJobHandle)
        if job.state.finished:
            return job.state
        code = job.proc.poll()
        if code is not None:
            forget_leader(job.proc.pid)
            # Whatever the workload left behind (loader workers, daemons, in its group or not) goes with it.
            kill_job(job.proc.pid, job.token, leader=None)  # its pid is free again: not walked from
            return self._settle(job, JobState.COMPLETED if code == 0 else JobState.FAILED)
        if time.monotonic() - job.started_at > job.spec.timeout_s:
            self._end(job)
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
        try:
            self._end(job)
        finally:  # even cut short, the job is over for the session: listed as cancelled
            self._settle(job, JobState.CANCELLED)

    def _end(self, job: LocalJobHandle) -> None:
        """SIGTERM every process of the job, SIGKILL what is left after the grace (or a second Ctrl-C)."""
        seen: set[int] = set()  # found while the leader's pid is still its own: its children, orphaned later
        try:
            leader = job.proc.pid if job.proc.returncode is None else None
            seen = signal_job(job.proc.pid, job.token, signal.SIGTERM, leader=leader)
            deadline = time.monotonic() + self.options.kill_grace_s
            while job.proc.poll() is None and time.monotonic() < deadline and not HURRY.is_set():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    job.proc.wait(timeout=0.05)
        finally:  # the leader may be gone while children linger, in its group or out of it
            leader = job.proc.pid if job.proc.returncode is None else None
            if leader is None:
                forget_leader(job.proc.pid)
            kill_job(job.proc.pid, job.token, leader=leader, known=seen)
            job.proc.wait()
            forget_leader(job.proc.pid)

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
