"""One exception tree for pytest-hetero.

::

    HeteroError                      every error the plugin raises on purpose
    ├── ConfigError                  bad platforms.yaml / references / marker / option
    │   └── UnknownPlatformError     --platform names nothing in the catalogue
    ├── UnavailableError         an unknown backend/launcher, or its optional dependency missing
    ├── HistoryError                 bad request to the history store (unknown baseline, ...)
    │   └── StoreUnavailableError    the store cannot be opened, read or written
    └── StageError                   a stage of one benchmark failed (carries the stage)
        ├── SubmitError              provision/launch: the job could not be started
        ├── JobFailedError           wait: the job ended FAILED / CANCELLED / node failure
        ├── JobTimeoutError          wait: the job ran past its time limit
        ├── CollectError             collect: output missing or malformed
        ├── CheckError               check: references unreadable or invalid
        └── TeardownError            teardown: a job could not be cancelled or deleted

Third-party errors are translated where they cross into the plugin, with
``raise ... from exc``. Messages say what happened, where, and what to do.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "CheckError",
    "CollectError",
    "ConfigError",
    "HeteroError",
    "HistoryError",
    "JobFailedError",
    "JobTimeoutError",
    "Stage",
    "StageError",
    "StoreUnavailableError",
    "SubmitError",
    "TeardownError",
    "UnavailableError",
    "UnknownPlatformError",
]


class Stage(str, Enum):
    """The named stages of one benchmark; every failure names one."""

    PROVISION = "provision"
    LAUNCH = "launch"
    WAIT = "wait"
    COLLECT = "collect"
    CHECK = "check"
    TEARDOWN = "teardown"


class HeteroError(Exception):
    """Base of every error pytest-hetero raises on purpose."""


class ConfigError(HeteroError):
    """Invalid user input: catalogue, references, markers or options."""


class UnknownPlatformError(ConfigError):
    """A platform selector matched nothing in the catalogue."""


class UnavailableError(HeteroError):
    """A backend or launcher is unknown, or its optional dependency is not installed."""


class HistoryError(HeteroError):
    """A bad request to the history store: unknown baseline or run, bad selection, not a report."""


class StoreUnavailableError(HistoryError):
    """The history store cannot be opened, read or written (an infrastructure problem)."""


class StageError(HeteroError):
    """A stage of one benchmark failed; ``str()`` starts with the stage name."""

    stage: Stage = Stage.WAIT

    def __init__(self, message: str, *, job_id: str | None = None, log_tail: str = "") -> None:
        self.message = message
        self.job_id = job_id
        self.log_tail = log_tail
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.stage.value}: {self.message}"
        if self.job_id:
            text += f" (job {self.job_id})"
        if self.log_tail:
            text += f"\n--- last lines of the workload log ---\n{self.log_tail}"
        return text


class SubmitError(StageError):
    stage = Stage.LAUNCH


class JobFailedError(StageError):
    stage = Stage.WAIT


class JobTimeoutError(StageError):
    stage = Stage.WAIT


class CollectError(StageError):
    stage = Stage.COLLECT


class CheckError(StageError):
    stage = Stage.CHECK


class TeardownError(StageError):
    """A job could not be cancelled or its objects deleted."""

    stage = Stage.TEARDOWN
