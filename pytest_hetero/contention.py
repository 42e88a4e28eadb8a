"""What ran beside a job: its measured window, the run's other windows, host load.

A job's *window* is when it may have been running, on the wall clock, as the
scheduler saw it through the backend: from the last moment it was known not to
run yet (just before submission, or the last poll that found it pending) to the
poll that found it ended (or its cancellation). The window may be a little wider
than the run, never narrower, so two jobs that ran at the same time always have
overlapping windows.

Every process of a run (pytest-xdist workers included) appends its windows to one
*ledger* in the run directory (JSON lines: opened, seen running, closed); a run
in one process keeps its ledger in memory. A test
reads it when its jobs are done, so its verdict knows what overlapped it so far;
the controller reads it again at session end, when every window is closed, for
the report.
"""

from __future__ import annotations

import bisect
import json
import os
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from pytest_hetero.config.models import ResourceGroup
from pytest_hetero.flock import exclusive
from pytest_hetero.ids import new_id

_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
#: Lines this process wrote and has not read back, kept to index them without parsing: at most this many.
_MINE_MAX = 4096

__all__ = [
    "Contention",
    "ContentionRecord",
    "Ledger",
    "Window",
    "WindowRecord",
    "load_average",
    "overlapping",
    "refresh_contention",
]


class WindowRecord(TypedDict):
    id: str
    job: str  # the scheduler's job key: node id and repeat
    job_id: str | None
    platform: str
    start_unix_s: float
    end_unix_s: float | None  # None: still running when the record was made
    load_avg_start: list[float] | None  # 1, 5 and 15 minutes; jobs on this host only
    load_avg_end: list[float] | None


class ContentionRecord(TypedDict):
    """The ``contention`` part of a report record."""

    resource_group: str | None
    group_max_jobs: int | None
    windows: list[WindowRecord]  # this test's jobs (one per repeat)
    beside: list[WindowRecord]  # the run's other jobs in the same group whose windows overlap them
    contended: bool


def load_average() -> list[float] | None:
    """This host's load average over 1, 5 and 15 minutes (None where the OS has none)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (OSError, AttributeError):
        return None


@dataclass
class Window:
    """One job's window (see the module docstring); ``group`` is its resource group's name."""

    job: str
    platform: str
    group: str | None
    start_unix_s: float = field(default_factory=time.time)
    end_unix_s: float | None = None
    job_id: str | None = None
    load_avg_start: list[float] | None = None
    load_avg_end: list[float] | None = None
    id: str = field(default_factory=lambda: new_id(16))
    #: Seen past pending once: from then on the start stays where it is.
    seen_running: bool = False

    def overlaps(self, other: Window) -> bool:
        """Open intervals: a window that ends when another starts does not overlap it."""
        inf = float("inf")
        mine_end = inf if self.end_unix_s is None else self.end_unix_s
        other_end = inf if other.end_unix_s is None else other.end_unix_s
        return self.start_unix_s < other_end and other.start_unix_s < mine_end

    def snapshot(self) -> Window:
        """A copy of the window as it is now (its fields are replaced, never changed in place)."""
        copied = object.__new__(Window)
        copied.__dict__.update(self.__dict__)
        return copied

    def as_record(self) -> WindowRecord:
        return {
            "id": self.id,
            "job": self.job,
            "job_id": self.job_id,
            "platform": self.platform,
            "start_unix_s": self.start_unix_s,
            "end_unix_s": self.end_unix_s,
            "load_avg_start": self.load_avg_start,
            "load_avg_end": self.load_avg_end,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], group: str | None = None) -> Window:
        """From a ledger line, or from a record's window (which leaves the group to its record)."""
        fields = {key: data[key] for key in WindowRecord.__annotations__}
        return cls(group=data.get("group", group), **fields)


def overlapping(windows: Sequence[Window], others: Iterable[Window]) -> list[Window]:
    """The ``others`` of the same group as ``windows`` that overlap any of them, by start."""
    own = {window.id for window in windows}
    groups = {window.group for window in windows} - {None}
    found = [
        other
        for other in others
        if other.id not in own and other.group in groups and any(other.overlaps(w) for w in windows)
    ]
    return sorted(found, key=lambda window: window.start_unix_s)


@dataclass
class Contention:
    """What one test's jobs shared their resource group with."""

    group: ResourceGroup | None = None
    windows: list[Window] = field(default_factory=list)
    beside: list[Window] = field(default_factory=list)

    @property
    def contended(self) -> bool:
        return bool(self.beside)

    def as_record(self) -> ContentionRecord:
        return {
            "resource_group": None if self.group is None else self.group.name,
            "group_max_jobs": None if self.group is None else self.group.max_jobs,
            "windows": [window.as_record() for window in self.windows],
            "beside": [window.as_record() for window in self.beside],
            "contended": self.contended,
        }


class Ledger:
    """The run's windows, one JSON line per change, appended by every process of the run.

    Without a path (a run in one process) the windows are kept in memory only: no file, lock or parse.
    Reading is incremental: each call parses only the lines added since the last one.
    Closed windows are kept by group in the order they ended, so :meth:`beside` looks
    only at the windows still open and those that ended after the earliest start asked
    about but before the latest end plus the group's longest window (any later one
    started after it), not at the whole run's.
    """

    def __init__(self, path: Path | None) -> None:
        #: None: this process's windows only, kept in memory (a run in one process: nobody else writes).
        self.path = path
        self._lock_path = None if path is None else path.with_name(f"{path.name}.lock")  # where flock is missing
        self._offset = 0
        self._out: int | None = None  # kept open (O_APPEND) for the process's appends
        self._in: int | None = None  # kept open for the incremental reads
        self._windows: dict[str, Window] = {}
        self._open: dict[str, Window] = {}
        self._closed: dict[str | None, tuple[list[float], list[Window]]] = {}  # group -> ends (sorted), windows
        self._longest_s: dict[str | None, float] = {}  # group -> its longest closed window
        self._mine: dict[bytes, Window] = {}  # lines written by this process and not read back yet

    def write(self, window: Window) -> None:
        """Append the window's current state; :class:`OSError` if the run directory is not writable."""
        path, lock_path = self.path, self._lock_path
        if path is None or lock_path is None:
            self._index(window.snapshot())  # in memory: as it is now
            return
        line = (json.dumps(vars(window)) + "\n").encode()  # its fields; asdict would deep-copy
        if self._out is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _BINARY, 0o666)
        # One lock around the append: whole lines, even where O_APPEND is not atomic (NFS).
        with exclusive(self._out, lock_path):
            written = 0
            while written < len(line):  # unbuffered: on disk before the lock is let go
                written += os.write(self._out, line[written:])
        if len(self._mine) >= _MINE_MAX:  # a run that never reads back (no resource group): parsed if it does
            self._mine.clear()
        self._mine[line[:-1]] = window.snapshot()  # as written, read back without parsing (see _read)

    def close(self) -> None:
        """Let go of the ledger's descriptors (reopened by the next write or read)."""
        for fd in (getattr(self, "_out", None), getattr(self, "_in", None)):  # also after a failed __init__
            if fd is not None:
                with suppress(OSError):
                    os.close(fd)
        self._out = self._in = None

    def __del__(self) -> None:
        self.close()

    def windows(self) -> list[Window]:
        """Every window written so far, each in its latest state."""
        self._read()
        return list(self._windows.values())

    def beside(self, windows: Sequence[Window]) -> list[Window]:
        """The run's other windows of the same group as ``windows`` that overlap any of them, by start."""
        self._read()
        if not windows:
            return []
        earliest = min(window.start_unix_s for window in windows)
        latest = max(float("inf") if window.end_unix_s is None else window.end_unix_s for window in windows)
        candidates = list(self._open.values())
        for group in {window.group for window in windows} - {None}:
            ends, closed = self._closed.get(group, ([], []))
            # Ended after the earliest start, and not so late that it started after the latest end.
            last = bisect.bisect_right(ends, latest + self._longest_s.get(group, 0.0))
            candidates += closed[bisect.bisect_right(ends, earliest) : last]
        return overlapping(windows, candidates)

    def _read(self) -> None:
        if self.path is None:
            return  # in memory: indexed as written
        try:
            if self._in is None:
                self._in = os.open(self.path, os.O_RDONLY | _BINARY)
            os.lseek(self._in, self._offset, os.SEEK_SET)
            chunks = []
            while chunk := os.read(self._in, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        except OSError:  # not written yet (or unreadable): what was read before
            data = b""
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self._offset += len(complete)
        for line in complete.splitlines():
            mine = self._mine.pop(line, None)  # a line this process wrote: its window as written
            if mine is not None:
                self._index(mine)
                continue
            with suppress(ValueError, KeyError, TypeError):
                self._index(Window.from_dict(json.loads(line)))

    def _index(self, window: Window) -> None:
        previous = self._windows.get(window.id)
        if previous is not None and previous.end_unix_s is not None:
            return  # closed already: its last state stands
        self._windows[window.id] = window
        if window.end_unix_s is None:
            self._open[window.id] = window
            return
        self._open.pop(window.id, None)
        ends, closed = self._closed.setdefault(window.group, ([], []))
        at = bisect.bisect_right(ends, window.end_unix_s)  # windows close about in order: mostly appended
        ends.insert(at, window.end_unix_s)
        closed.insert(at, window)
        longest_s = max(self._longest_s.get(window.group, 0.0), window.end_unix_s - window.start_unix_s)
        self._longest_s[window.group] = longest_s


def refresh_contention(contentions: Iterable[ContentionRecord], ledger: Ledger | None) -> None:
    """Recompute ``beside`` and ``contended`` of records from the ledger, once every window is closed."""
    if ledger is None:
        return
    for contention in contentions:
        group = contention["resource_group"]
        if group is None or not contention["windows"]:
            continue
        windows = [Window.from_dict(dict(record), group) for record in contention["windows"]]
        beside = ledger.beside(windows)
        contention["beside"] = [window.as_record() for window in beside]
        contention["contended"] = bool(beside)
