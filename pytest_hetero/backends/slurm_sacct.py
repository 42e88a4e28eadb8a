"""Reading ``sacct``: its fields, Slurm's job states as ours, one row per job."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_hetero.backends.base import JobState

__all__ = ["SACCT_FIELDS", "SacctRow", "parse_sacct"]

SACCT_FIELDS = "JobID,State,ExitCode,ElapsedRaw"
_STATES = {
    **dict.fromkeys(("PENDING", "REQUEUED", "RESIZING", "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED"), JobState.PENDING),
    **dict.fromkeys(("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING"), JobState.RUNNING),
    "COMPLETED": JobState.COMPLETED,
    **dict.fromkeys(("FAILED", "OUT_OF_MEMORY", "BOOT_FAIL", "PREEMPTED"), JobState.FAILED),
    **dict.fromkeys(("TIMEOUT", "DEADLINE"), JobState.TIMEOUT),
    **dict.fromkeys(("CANCELLED", "REVOKED"), JobState.CANCELLED),
    "NODE_FAIL": JobState.NODE_FAIL,
}


@dataclass(frozen=True)
class SacctRow:
    """One job's line of ``sacct``."""

    state: JobState
    exit_code: int | None
    elapsed_s: float


def parse_sacct(text: str) -> dict[str, SacctRow]:
    """``sacct -X -n -P -o JobID,State,ExitCode,ElapsedRaw`` output, by job id."""
    rows = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) == 4 and fields[0].isdigit():
            rows[fields[0]] = _row(*fields[1:])
    return rows


def _row(state: str, exit_code: str, elapsed: str) -> SacctRow:
    # State "CANCELLED by 0"; exit code "status:signal", a signal shown as its negative.
    code, _, sig = exit_code.partition(":")
    number = -int(sig) if sig.isdigit() and int(sig) and code in ("", "0") else _int(code)
    return SacctRow(_STATES.get(state.split(" ")[0], JobState.UNKNOWN), number, float(_int(elapsed) or 0))


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None
