"""The Slurm backend: each benchmark job is one batch job, rendered by submitit.

::

    submit   render the batch script (:mod:`.slurm_script`), keep it in the job's
             work directory, ``sbatch --parsable`` it; a rejection keeps sbatch's message
    status   one ``sacct`` for all of this platform's unfinished jobs per poll round; a running job
             whose script has written its exit status 0 (:data:`.slurm_script.EXIT_FILE`) is
             complete without waiting for sacct (looked for every ``poll_exit_file_s``)
    cancel   ``scancel``
    collect  state, exit code and elapsed time from sacct; the logs in the work directory

The workload runs as a plain command in the batch script, not through
submitit's pickled job runner: its stdout is the job's log, its exit status is
the job's, and the compute nodes need neither submitit nor this Python.

Nothing waits forever. Every Slurm command runs under ``command_timeout_s``
(default 30 s; a stopped controller makes sbatch fail after about 10 s);
``sacct`` failing for longer than ``unreachable_grace_s`` fails the job; and a
job's deadline is its queue allowance (``queue_timeout_min``, default a day)
until it starts, then its time limit plus :data:`DEADLINE_MARGIN_S`.
Accounting (slurmdbd) is required: job states come from ``sacct``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pytest_hetero.backends.base import Backend, JobHandle, JobOutput, JobSpec, JobState, narrow_handle
from pytest_hetero.backends.slurm_sacct import SACCT_FIELDS, SacctRow, parse_sacct
from pytest_hetero.backends.slurm_script import (
    OPTIONS_SCHEMA,
    SlurmOptions,
    exported_env,
    read_exit,
    render_batch_script,
    time_limit_min,
)
from pytest_hetero.bundle import checking_bundle
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import HeteroError, JobFailedError, SubmitError, TeardownError
from pytest_hetero.interrupts import InterruptedSubmission
from pytest_hetero.launchers.base import LaunchContext, Rendezvous

__all__ = ["DEADLINE_MARGIN_S", "SacctRow", "SlurmBackend", "SlurmJobHandle", "parse_sacct"]

#: Slurm enforces a time limit up to a minute late, then waits KillWait: keep polling that long.
DEADLINE_MARGIN_S = 120.0
_MIN_QUERY_INTERVAL_S = 0.2
_UNREACHABLE = "Unable to contact slurm controller"


class _CommandError(Exception):
    """A Slurm command failed to run or answered with an error; the text says which."""


class _CommandTimeout(_CommandError):
    """A Slurm command gave no answer in time."""


class _CommandMissing(_CommandError):
    """A Slurm command is not installed here."""


@dataclass
class SlurmJobHandle(JobHandle):
    """A Slurm job; its deadline counts from when it started running, not from submission."""

    script_path: Path = Path()
    queue_timeout_s: float = 86400.0
    started_at: float | None = None
    state: JobState = JobState.PENDING
    exit_code: int | None = None
    elapsed_s: float = 0.0

    @property
    def deadline(self) -> float:
        if self.started_at is None:
            return self.submitted_at + self.queue_timeout_s
        return self.started_at + time_limit_min(self.spec.timeout_s) * 60.0 + DEADLINE_MARGIN_S


class SlurmBackend(Backend):
    """Runs each job with sbatch; see the module docstring for the life of a job."""

    name = "slurm"
    options_schema: ClassVar[dict[str, Any]] = OPTIONS_SCHEMA
    # Slurm allocates in about a second; sacct costs tens of milliseconds.
    poll_initial_s: ClassVar[float] = 0.25
    poll_factor: ClassVar[float] = 1.3
    poll_max_s: ClassVar[float] = 5.0
    #: While the awaited job runs, sacct is asked every ``poll_running_fraction`` of its running time so far,
    #: at least every ``poll_running_min_s`` and at most the back-off. A job that succeeds is seen ending by its
    #: exit status file (``poll_exit_file_s``); sacct notices any other end: a short job's within about 0.5 s,
    #: a long one's within 5 % of its run time, and a job running for hours one sacct per ``poll_max_s``.
    #: (sacct takes about 0.1 s here, during which the wait loop looks at nothing else.)
    poll_running_min_s: ClassVar[float] = 0.5
    poll_running_fraction: ClassVar[float] = 0.05
    #: How often the work directory of a running job is looked at for its exit status (a stat, no Slurm command).
    poll_exit_file_s: ClassVar[float] = 0.05
    options: SlurmOptions

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self._unfinished: dict[str, SlurmJobHandle] = {}
        self._queried_at = float("-inf")
        # statuses() keeps its own cadence, so a wait loop that looks often (for another backend's job) costs
        # no extra sacct: the back-off, reset by a submission or a change of state, or a running job's cadence.
        self._next_query_at = float("-inf")
        self._interval_s = self.poll_initial_s
        self._failing_since: float | None = None
        self._last_failure = ""

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any]) -> SlurmOptions:
        return SlurmOptions.parse(raw)

    @classmethod
    def platform_problems(cls, platform: Platform) -> list[str]:
        if not platform.environment.container_image:
            return []
        return [
            "the slurm backend does not start containers itself; drop environment.container_image and pass "
            "your site's flags instead (e.g. pyxis: launcher srun with extra_args: ['--container-image=...'])"
        ]

    def launch_context(self) -> LaunchContext:
        """srun reaches every node; the first node of the allocation hosts the rendezvous."""
        rendezvous = Rendezvous(
            per_node=("srun", "--ntasks-per-node=1", "--kill-on-bad-exit=1"),
            nodes="$SLURM_JOB_NUM_NODES",
            job_id="$SLURM_JOB_ID",
            host='$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        )
        return dataclasses.replace(super().launch_context(), rendezvous=rendezvous)

    # -- submit -------------------------------------------------------------
    def bundle_root(self, workdir: Path) -> str:
        """The workload bundle goes into the job's work directory, which the compute nodes must share."""
        return str(workdir / "bundle")

    def render(self, spec: JobSpec) -> str:
        return render_batch_script(checking_bundle(spec, self.bundle_root(spec.workdir)), self.options)

    def submit(self, spec: JobSpec) -> SlurmJobHandle:
        script = self._write_script(spec)
        job_id = self._sbatch(script, exported_env(spec)[1])
        handle = SlurmJobHandle(
            job_id=job_id,
            spec=spec,
            script_path=script,
            queue_timeout_s=self.options.queue_timeout_min * 60.0,
        )
        self._unfinished[job_id] = handle
        self._interval_s = self.poll_initial_s
        self._next_query_at = min(self._next_query_at, time.monotonic() + self.poll_initial_s)
        return handle

    def _write_script(self, spec: JobSpec) -> Path:
        text = self.render(spec)
        spec.workdir.mkdir(parents=True, exist_ok=True)
        if spec.bundle is not None:
            spec.bundle.write(Path(self.bundle_root(spec.workdir)))
        path = spec.workdir / "batch.sh"
        path.write_text(text)
        return path

    def _sbatch(self, script: Path, secret_env: dict[str, str]) -> str:
        argv = ["sbatch", "--parsable", str(script)]
        proc: subprocess.Popen[str] | None = None
        try:
            proc = _start(argv, {**_submission_environ(), **secret_env})
            out = _finish(proc, "sbatch", self.options.command_timeout_s)
        except _CommandError as exc:
            raise SubmitError(_submit_problem(exc, script)) from None
        except KeyboardInterrupt as exc:
            job_id = self._cancel_late_submission(proc)
            raise InterruptedSubmission(str(exc), job_id) from None  # the report lists the job and its case
        return _job_id_from(out, script)

    def _cancel_late_submission(self, proc: subprocess.Popen[str] | None) -> str | None:
        """Interrupted while sbatch ran: let it finish, then cancel what it submitted (its id)."""
        if proc is None:
            return None
        try:
            job_id = _job_id_from(_finish(proc, "sbatch", self.options.command_timeout_s), Path())
            _run(["scancel", job_id], self.options.command_timeout_s)
        except (_CommandError, SubmitError):
            return None  # nothing was submitted, or nothing more can be done
        return job_id

    # -- status -------------------------------------------------------------
    def status(self, handle: JobHandle) -> JobState:
        job = narrow_handle(handle, SlurmJobHandle)
        self._look_for_exit(job)
        if not job.state.finished and time.monotonic() - self._queried_at >= _MIN_QUERY_INTERVAL_S:
            self._refresh()
        if not job.state.finished:
            self._raise_if_unreachable(job)
        return job.state

    def statuses(self, handles: Sequence[JobHandle]) -> list[JobState | HeteroError]:
        """One ``sacct`` for all of this platform's unfinished jobs, then each job's state from it."""
        jobs = [narrow_handle(handle, SlurmJobHandle) for handle in handles]
        for job in jobs:
            self._look_for_exit(job)
        if any(not job.state.finished for job in jobs) and time.monotonic() >= self._next_query_at:
            before = {job_id: job.state for job_id, job in self._unfinished.items()}
            self._refresh()
            self._plan_next_query(before)
            for job in jobs:  # ended while sacct ran (a tenth of a second), or first seen running by it
                self._look_for_exit(job)
        answers: list[JobState | HeteroError] = []
        for job in jobs:
            try:
                if not job.state.finished:
                    self._raise_if_unreachable(job)
                answers.append(job.state)
            except HeteroError as exc:
                answers.append(exc)
        return answers

    def next_poll_s(self, handle: JobHandle | None, interval_s: float) -> float:
        """A running job's exit status file is looked for often; a queued job backs off fully."""
        if isinstance(handle, SlurmJobHandle) and handle.state is JobState.RUNNING:
            return min(interval_s, self.poll_exit_file_s)
        return interval_s

    def _sacct_every_s(self, job: SlurmJobHandle, interval_s: float) -> float:
        """sacct for a running job in proportion to how long it has run; for a queued one, the back-off."""
        if job.state is JobState.RUNNING and job.started_at is not None:
            running_s = time.monotonic() - job.started_at
            return min(interval_s, max(self.poll_running_min_s, running_s * self.poll_running_fraction))
        return interval_s

    def _look_for_exit(self, job: SlurmJobHandle) -> None:
        """A running job whose script exited 0 is complete; any other ending is left to sacct to name."""
        found = read_exit(job.spec.workdir) if job.state is JobState.RUNNING else None
        if found is not None and found[0] == 0:
            self._update(job, SacctRow(state=JobState.COMPLETED, exit_code=0, elapsed_s=found[1]))

    def _plan_next_query(self, before: dict[str, JobState]) -> None:
        changed = before != {job_id: job.state for job_id, job in self._unfinished.items()}
        self._interval_s = self.poll_initial_s if changed else min(self._interval_s * self.poll_factor, self.poll_max_s)
        cadence_s = self._interval_s
        for job in self._unfinished.values():
            cadence_s = self._sacct_every_s(job, cadence_s)
        self._next_query_at = time.monotonic() + max(cadence_s, _MIN_QUERY_INTERVAL_S)

    def _refresh(self) -> None:
        self._queried_at = time.monotonic()
        if not self._unfinished:
            return
        argv = ["sacct", "-X", "-n", "-P", "-o", SACCT_FIELDS, "-j", ",".join(self._unfinished)]
        try:
            rows = parse_sacct(_run(argv, self.options.command_timeout_s))
        except _CommandError as exc:
            self._failing_since = self._failing_since or time.monotonic()
            self._last_failure = str(exc)
            return
        self._failing_since = None
        for job_id, row in rows.items():
            if job_id in self._unfinished:
                self._update(self._unfinished[job_id], row)

    def _update(self, job: SlurmJobHandle, row: SacctRow) -> None:
        if row.state is not JobState.PENDING and job.started_at is None:
            job.started_at = time.monotonic()
        job.state, job.exit_code, job.elapsed_s = row.state, row.exit_code, row.elapsed_s
        if row.state.finished:
            self._unfinished.pop(job.job_id, None)

    def _raise_if_unreachable(self, job: SlurmJobHandle) -> None:
        accounting_off = "accounting storage is disabled" in self._last_failure
        grace_s = self.options.unreachable_grace_s
        if self._failing_since is None or (time.monotonic() - self._failing_since < grace_s and not accounting_off):
            return
        self._try_cancel(job)
        hint = "the slurm backend needs Slurm accounting (slurmdbd)" if accounting_off else "check that slurmdbd is up"
        raise JobFailedError(
            f"cannot read the job's state from Slurm ({self._last_failure}); {hint}. "
            f"If the job still runs, cancel it with: scancel {job.job_id}",
            job_id=job.job_id,
        )

    # -- cancel -------------------------------------------------------------
    def cancel(self, handle: JobHandle) -> None:
        job = narrow_handle(handle, SlurmJobHandle)
        if job.state.finished:
            return
        try:
            _run(["scancel", job.job_id], self.options.command_timeout_s)
        except _CommandError as exc:
            if "already completing or completed" not in str(exc):
                raise TeardownError(
                    f"could not cancel the Slurm job: {exc}; cancel it by hand: scancel {job.job_id}",
                    job_id=job.job_id,
                ) from None
        job.state = JobState.CANCELLED
        self._unfinished.pop(job.job_id, None)

    def _try_cancel(self, job: SlurmJobHandle) -> None:
        with contextlib.suppress(TeardownError):
            self.cancel(job)

    def close(self) -> None:
        """Cancel whatever is still queued or running (the session normally has already)."""
        for job in list(self._unfinished.values()):
            self._try_cancel(job)

    # -- collect ------------------------------------------------------------
    def collect(self, handle: JobHandle) -> JobOutput:
        job = narrow_handle(handle, SlurmJobHandle)
        if not job.state.finished:
            self._refresh()
        return JobOutput(
            job_id=job.job_id,
            state=job.state,
            exit_code=job.exit_code,
            stdout_path=job.spec.stdout_path,
            stderr_path=job.spec.stderr_path,
            elapsed_s=job.elapsed_s,
            artifacts={"batch_script": str(job.script_path)},
        )


# -- Slurm commands -----------------------------------------------------------


def _start(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    # A session of its own: a Ctrl-C at the terminal reaches pytest only, so an sbatch
    # in flight finishes (and its job is then cancelled) and a scancel is not cut short.
    try:
        return subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
        )
    except OSError as exc:
        raise _CommandMissing(f"cannot run {argv[0]}: {exc.strerror or exc}; is this a Slurm login node?") from exc


def _finish(proc: subprocess.Popen[str], name: str, timeout_s: float) -> str:
    """stdout of a finished command; :class:`_CommandError` with its stderr if it failed."""
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise _CommandTimeout(f"{name} did not answer within {timeout_s:g} s") from None
    if proc.returncode != 0:
        raise _CommandError(err.strip() or out.strip() or f"{name} exited with status {proc.returncode}")
    return out


def _run(argv: list[str], timeout_s: float) -> str:
    proc = _start(argv)
    try:
        return _finish(proc, argv[0], timeout_s)
    except BaseException:
        _kill(proc)
        raise


def _kill(proc: subprocess.Popen[str]) -> None:
    """Kill the command and anything it started (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def _submission_environ() -> dict[str, str]:
    """This environment minus an enclosing job's SLURM_* variables, which would confuse sbatch."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") or k == "SLURM_CONF"}


def _submit_problem(exc: _CommandError, script: Path) -> str:
    if isinstance(exc, _CommandMissing):
        return f"{exc} (batch script: {script})"
    if isinstance(exc, _CommandTimeout) or _UNREACHABLE in str(exc):
        return (
            f"the Slurm controller is unreachable: {exc} (is slurmctld running? try `scontrol ping`; "
            f"batch script: {script})"
        )
    return f"sbatch rejected the job: {exc} (batch script: {script})"


def _job_id_from(out: str, script: Path) -> str:
    job_id = out.strip().split(";")[0]
    if not job_id.isdigit():
        raise SubmitError(f"sbatch answered {out.strip()!r}, which holds no job id (batch script: {script})")
    return job_id
