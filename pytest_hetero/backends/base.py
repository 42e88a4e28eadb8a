"""The backend contract: *where* a benchmark job runs.

A backend implements four primitives — :meth:`Backend.submit`,
:meth:`Backend.status`, :meth:`Backend.cancel`, :meth:`Backend.collect` —
on its own :class:`JobHandle` subclass; :meth:`Backend.statuses` answers for
many jobs at once (by default one :meth:`~Backend.status` each; a backend
that can ask its scheduler once for all of them overrides it). Waiting is
not its business: the scheduler (:mod:`pytest_hetero.scheduler`) is the one loop that polls jobs,
for a whole session or for one job (``run_job``). *How* processes start
inside the allocation is the launcher's business (:mod:`pytest_hetero.launchers`).

Each backend types its ``backend.options`` as a frozen :class:`BackendOptions`
subclass: :meth:`Backend.parse_options` checks them against
:attr:`Backend.options_schema` and builds it (the catalogue loader calls it for
every platform), and the instance reads its options only from ``self.options``.
"""

from __future__ import annotations

import functools
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from pytest_hetero.bundle import Bundle
from pytest_hetero.config.models import Platform, ResourceGroup
from pytest_hetero.diskspace import full_disk_note
from pytest_hetero.errors import ConfigError, HeteroError, JobFailedError, JobTimeoutError, StageError
from pytest_hetero.launchers.base import LaunchContext
from pytest_hetero.schemas import schema_errors

__all__ = [
    "Backend",
    "BackendOptions",
    "JobHandle",
    "JobOutput",
    "JobSpec",
    "JobState",
    "check_options",
    "narrow_handle",
    "raise_for_state",
    "tail_of",
]

HandleT = TypeVar("HandleT", bound="JobHandle")
OptionsT = TypeVar("OptionsT", bound="BackendOptions")


class JobState(str, Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    NODE_FAIL = "NODE_FAIL"
    UNKNOWN = "UNKNOWN"

    @property
    def finished(self) -> bool:
        return self not in (JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN)


@dataclass(frozen=True)
class JobSpec:
    """Everything a backend needs to start one benchmark job."""

    name: str
    argv: tuple[str, ...]
    workdir: Path
    platform: Platform
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout_s: float = 3600.0
    #: Working directory of the workload (the test file's directory); logs go to ``workdir``.
    cwd: Path | None = None
    #: The workload's code, for a backend that ships it (:meth:`Backend.bundle_root`); None: not shipped.
    bundle: Bundle | None = None
    #: The test's bound on the workload (its ``timeout_min``) when its command runs under ``timeout``; None: none.
    workload_timeout_s: float | None = None

    @functools.cached_property
    def stdout_path(self) -> Path:
        return self.workdir / "stdout.log"

    @functools.cached_property
    def stderr_path(self) -> Path:
        return self.workdir / "stderr.log"


@dataclass
class JobHandle:
    """A submitted job. Each backend subclasses it with typed fields for its own state."""

    job_id: str
    spec: JobSpec
    submitted_at: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        """Monotonic time after which waiting gives up (time limit plus a margin)."""
        return self.submitted_at + self.spec.timeout_s + 30.0


@dataclass(frozen=True)
class JobOutput:
    """What a finished job left behind."""

    job_id: str
    state: JobState
    exit_code: int | None
    stdout_path: Path
    stderr_path: Path
    elapsed_s: float
    artifacts: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def log_tail(self, lines: int = 20) -> str:
        return tail_of(self.stdout_path, self.stderr_path, lines=lines)


def narrow_handle(handle: JobHandle, handle_type: type[HandleT]) -> HandleT:
    """``handle`` as the backend's own handle type; :class:`TypeError` for another backend's handle."""
    if not isinstance(handle, handle_type):
        raise TypeError(f"not a {handle_type.__name__}: {handle!r}")
    return handle


@dataclass(frozen=True)
class BackendOptions:
    """Typed ``backend.options``: each backend subclasses it with one field per key of its schema."""

    @classmethod
    def from_mapping(cls: type[OptionsT], raw: Mapping[str, Any]) -> OptionsT:
        """Build from options already checked against the schema; lists become tuples."""
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in raw.items()}
        try:
            return cls(**values)
        except TypeError:  # the schema admits a key the dataclass lacks: a bug in the backend
            unknown = sorted(set(raw) - {f.name for f in fields(cls)})
            raise ConfigError(f"{cls.__name__} has no field for option(s) {unknown}") from None


#: Keywords of an object schema that cannot reject an empty object: ``{}`` against a schema of only
#: these is valid without running a validator (and importing jsonschema) for the usual no-options platform.
_VACUOUS_FOR_EMPTY = frozenset(
    {"$schema", "$id", "title", "description"}
    | {"properties", "additionalProperties", "patternProperties", "propertyNames"}
)


def check_options(schema: Mapping[str, Any], raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """``raw`` if it satisfies ``schema``; else :class:`ConfigError` listing every problem with its path."""
    if not raw and schema.get("type") == "object" and set(schema) - {"type"} <= _VACUOUS_FOR_EMPTY:
        return raw
    problems = schema_errors(dict(raw), schema, prefix="backend.options")
    if problems:
        raise ConfigError("; ".join(problems))
    return raw


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def tail_of(*paths: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of the given logs, each under its file name."""
    parts = []
    for path in paths:
        text = _read(path).rstrip("\n")
        if text:
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"[{path.name}]\n{tail}")
    return "\n".join(parts)


@functools.cache
def _host_group() -> ResourceGroup:
    """This host's resource group (asked for each job: looked up once)."""
    import socket  # only for backends on this host

    return ResourceGroup(f"host:{socket.gethostname()}")


class Backend(ABC):
    """Where a job runs. One instance per platform and session.

    The constructor types the platform's ``backend.options`` (:meth:`parse_options`)
    and refuses settings the backend cannot honour (:meth:`platform_problems`),
    both as :class:`~pytest_hetero.errors.ConfigError` naming the platform.
    Subclasses return their own :class:`JobHandle` subclass from :meth:`submit`
    and narrow the handles they are given with :func:`narrow_handle`.
    """

    name: ClassVar[str]
    #: JSON Schema of ``backend.options`` in platforms.yaml: the first check, with JSON paths.
    options_schema: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}
    #: Back-off of the scheduler's wait loop: first interval, factor, ceiling (seconds).
    poll_initial_s: ClassVar[float] = 0.02
    poll_factor: ClassVar[float] = 1.5
    poll_max_s: ClassVar[float] = 2.0
    #: Jobs run on the host that runs pytest: they share it (see :meth:`default_resource_group`),
    #: and its load average is recorded beside them.
    runs_on_this_host: ClassVar[bool] = False
    #: ``backend.options``, typed; subclasses narrow the type.
    options: BackendOptions

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        where = f"platform {platform.name!r} ({platform.source})"
        try:
            self.options = self.parse_options(platform.backend.options)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        problems = self.platform_problems(platform)
        if problems:
            raise ConfigError(f"{where}: " + "; ".join(problems))

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any]) -> BackendOptions:
        """``backend.options`` checked against :attr:`options_schema` and typed; :class:`ConfigError` if invalid.

        Backends override it to return their own :class:`BackendOptions` subclass.
        """
        return BackendOptions.from_mapping(check_options(cls.options_schema, raw))

    @classmethod
    def platform_problems(cls, platform: Platform) -> list[str]:
        """Settings of ``platform`` this backend cannot honour (none by default)."""
        return []

    @classmethod
    def default_resource_group(cls) -> ResourceGroup | None:
        """The group of a platform whose catalogue entry declares none.

        Backends whose jobs run on this host share it: one group per host, one job at a time.
        Others share nothing unless the catalogue says so.
        """
        return _host_group() if cls.runs_on_this_host else None

    @property
    def resource_group(self) -> ResourceGroup | None:
        """The physical resource this platform's jobs share with other platforms' (None: nothing)."""
        return self.platform.resource_group or self.default_resource_group()

    @abstractmethod
    def submit(self, spec: JobSpec) -> JobHandle:
        """Start the job; raise :class:`~pytest_hetero.errors.SubmitError` if refused."""

    @abstractmethod
    def status(self, handle: JobHandle) -> JobState:
        """Current state, without blocking; raise a :class:`StageError` when the job cannot go on."""

    def statuses(self, handles: Sequence[JobHandle]) -> list[JobState | HeteroError]:
        """The state of each job, in order, or the error of one that cannot go on; never blocks.

        The scheduler calls it once per poll with all of this backend's active jobs.
        The default asks :meth:`status` for each; backends whose scheduler can answer
        for many jobs in one query (``sacct -j a,b,c``, a watch) override it.
        """
        answers: list[JobState | HeteroError] = []
        for handle in handles:
            try:
                answers.append(self.status(handle))
            except HeteroError as exc:
                answers.append(exc)
        return answers

    def next_poll_s(self, handle: JobHandle | None, interval_s: float) -> float:
        """How long the wait loop sleeps before its next poll, given its back-off ``interval_s``.

        Backends that know when a job is likely to end (or that it is running and
        an end costs a round trip to notice) shorten it; the default keeps the back-off.
        """
        return interval_s

    @abstractmethod
    def cancel(self, handle: JobHandle) -> None:
        """Stop the job and everything it started; idempotent."""

    @abstractmethod
    def collect(self, handle: JobHandle) -> JobOutput:
        """Output of a finished job."""

    def launch_context(self) -> LaunchContext:
        """The allocation's shape for the launcher: nodes, ranks per node, interpreter, rendezvous.

        The default offers no multi-node fan-out; backends that can reach every node override it.
        """
        return LaunchContext(
            nodes=self.platform.resources.nodes,
            ranks_per_node=max(self.platform.accelerators_per_node, 1),
        )

    def bundle_root(self, workdir: Path) -> str | None:
        """Where the job of work directory ``workdir`` finds the workload bundle; None: not shipped.

        The default ships nothing: the job runs with the Python that runs pytest. Backends whose
        jobs run elsewhere (Slurm, Kubernetes) ship :mod:`pytest_hetero.bundle` and say where.
        """
        return None

    def pending_reason(self, handle: JobHandle) -> str:
        """Why a queued job does not start yet, if the backend knows ("" otherwise); never blocks."""
        return ""

    def render(self, spec: JobSpec) -> str:
        """What would be submitted, for ``--hetero-dry-run``."""
        return " ".join(spec.argv)

    def close(self) -> None:
        """Release connections at session end."""

    def leftovers(self) -> list[str]:
        """What :meth:`close` could not remove (objects on a cluster), each with the command that removes it."""
        return []


#: How a workload stopped by coreutils ``timeout`` ends: 124 (SIGTERM sufficed), or killed by SIGKILL after
#: ``--kill-after`` (137 from a shell, signal 9 seen directly, 9 where Slurm reports the signal as the code).
_TIMEOUT_CODES = frozenset({124, 137, 9, -9})


def raise_for_state(output: JobOutput, workload_timeout_s: float | None = None) -> None:
    """Raise the stage error matching a job's end state; return on success.

    ``workload_timeout_s``: the test's bound on the workload (:attr:`JobSpec.workload_timeout_s`); a job that
    ended as ``timeout`` ends a command, once that time had passed, is a timeout, not a crash.
    """
    if output.state is JobState.COMPLETED and output.exit_code in (0, None):
        return
    if _ran_out_its_timeout(output, workload_timeout_s):
        assert workload_timeout_s is not None
        described = (
            f"the workload ran past the test's timeout_min ({workload_timeout_s:g} s) and was stopped"
            f" (exit {output.exit_code}) after {output.elapsed_s:.1f} s"
        )
        raise JobTimeoutError(described, job_id=output.job_id, log_tail=output.log_tail())
    error: type[StageError] = JobTimeoutError if output.state is JobState.TIMEOUT else JobFailedError
    described = _describe(output) + full_disk_note(output.stdout_path.parent)
    raise error(described, job_id=output.job_id, log_tail=output.log_tail())


def _ran_out_its_timeout(output: JobOutput, workload_timeout_s: float | None) -> bool:
    return (
        workload_timeout_s is not None
        and output.state in (JobState.COMPLETED, JobState.FAILED)
        and output.exit_code in _TIMEOUT_CODES
        and output.elapsed_s >= workload_timeout_s
    )


def _describe(output: JobOutput) -> str:
    if output.state is JobState.TIMEOUT:
        return f"the job ran past its time limit after {output.elapsed_s:.1f} s and was stopped"
    if output.state is JobState.CANCELLED:
        return "the job was cancelled"
    if output.state is JobState.NODE_FAIL:
        return "the node running the job failed"
    code = output.exit_code
    if code is not None and code < 0:
        name = _signal_name(-code)
        hint = " (out of memory?)" if -code == 9 else ""
        return f"the workload was killed by signal {-code} ({name}){hint} after {output.elapsed_s:.1f} s"
    return f"the workload exited with status {code} after {output.elapsed_s:.1f} s"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"
