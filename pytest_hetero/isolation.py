"""Isolation: jobs that share a resource never run at once beyond what the catalogue allows.

Two limits gate every submission, and both hold across processes::

    limit                 lock files (one per slot) in             shared by
    platform max_jobs     <run dir>/slots/<platform>/              the run's xdist workers
    resource_group        <tmp>/pytest-hetero-locks/groups/<name>/  every pytest run on this host

A slot is an operating-system file lock (:mod:`pytest_hetero.flock`: ``flock`` on Unix) tried
without waiting. The scheduler takes one slot of each just before it submits a
job and gives them back once it has seen the job end, or cancelled it; the
locks of a process that dies are released by the kernel. While it holds them it
records the job's window (:mod:`pytest_hetero.contention`).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from pytest_hetero.backends.base import JobState
from pytest_hetero.config.models import Platform, ResourceGroup
from pytest_hetero.contention import Contention, Ledger, Window, load_average
from pytest_hetero.errors import SubmitError
from pytest_hetero.flock import Held, try_lock

__all__ = ["Hold", "Isolation", "Semaphore", "Slot", "group_conflicts", "host_locks_dir"]


def host_locks_dir() -> Path:
    """Where resource groups lock, for every run on this host (``$TMPDIR`` moves it)."""
    return Path(tempfile.gettempdir()) / "pytest-hetero-locks"


def _dirname(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


#: Slot indexes this process holds, per semaphore directory: a new attempt skips them
#: (they would fail anyway), so taking a slot costs about one lock attempt, not ``capacity``.
_HELD: dict[Path, set[int]] = {}


class Slot:
    """One held slot of a :class:`Semaphore`; :meth:`release` is idempotent."""

    def __init__(self, lock: Held, held: set[int] | None = None, index: int = 0) -> None:
        self._lock: Held | None = lock
        self._held = held
        self._index = index

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
            if self._held is not None:
                self._held.discard(self._index)


class Semaphore:
    """``capacity`` slots shared by processes: lock files ``slot-0.lock`` … in ``directory``."""

    def __init__(self, directory: Path, capacity: int) -> None:
        self.directory = directory
        self.capacity = capacity
        self._paths = [directory / f"slot-{index}.lock" for index in range(capacity)]

    def try_acquire(self) -> Slot | None:
        """A free slot, or None when every slot is held (by any process, this one included).

        Never waits. :class:`OSError` if the directory cannot be made or a lock file opened.
        """
        held = _HELD.get(self.directory)
        if held is None:
            _shared_dir(self.directory)
            held = _HELD.setdefault(self.directory, set())
        for index in range(self.capacity):
            if index in held:
                continue
            # A fresh open file each time: a second open file on the same path conflicts even within
            # this process, as two xdist workers' would.
            lock = try_lock(self._paths[index])
            if lock is None:
                continue
            held.add(index)
            return Slot(lock, held, index)
        return None


def _shared_dir(path: Path) -> None:
    """Make ``path``; one under the host-wide lock directory is writable by every user's runs."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    host = host_locks_dir()
    for made in (path, *path.parents):
        if made == host or host in made.parents:
            with suppress(OSError):  # made by another user: theirs to set
                os.chmod(made, 0o1777)  # noqa: S103  # like /tmp: sticky, shared by the host's users
        else:
            break


@dataclass
class Hold:
    """The slots one job holds while it is in flight."""

    slots: list[Slot] = field(default_factory=list)

    def release(self) -> None:
        for slot in self.slots:
            slot.release()
        self.slots.clear()


class Isolation:
    """What the scheduler asks before it submits a job, and tells when the job ends.

    ``run_dir``: the platforms' slots and the run's window ledger, shared by the run's
    xdist workers. ``max_jobs`` is the scheduler's own count, with no slot files, without
    ``run_dir`` (one job outside a session: no ledger either) and with ``shared=False``
    (a run in one process: the ledger kept in memory). Resource groups always lock in
    ``host_dir``.
    """

    def __init__(self, run_dir: Path | None = None, *, host_dir: Path | None = None, shared: bool = True) -> None:
        self._slots_dir = None if run_dir is None or not shared else run_dir / "slots"
        self._groups_dir = (host_dir or host_locks_dir()) / "groups"
        self.ledger = None if run_dir is None else Ledger(run_dir / "windows.jsonl" if shared else None)
        self._wanted: dict[tuple[str, int, ResourceGroup | None], list[tuple[str, Semaphore]]] = {}

    def try_hold(self, platform: Platform, group: ResourceGroup | None, busy: set[str]) -> Hold | None:
        """A slot of the platform and one of its group, or None (nothing held) if either is full.

        ``busy`` carries what was found full earlier in the same pass over the queue, so a
        pass costs a few lock attempts per platform and group, not per queued job.
        """
        hold = Hold()
        for key, semaphore in self._semaphores(platform, group):
            slot = None if key in busy else self._acquire(key, semaphore)
            if slot is None:
                busy.add(key)
                hold.release()
                return None
            hold.slots.append(slot)
        return hold

    def _semaphores(self, platform: Platform, group: ResourceGroup | None) -> list[tuple[str, Semaphore]]:
        """The platform's and its group's semaphores, made once per platform and group (a job asks each time)."""
        cache_key = (platform.name, platform.max_jobs, group)
        found = self._wanted.get(cache_key)
        if found is None:
            found = []
            if self._slots_dir is not None:
                directory = self._slots_dir / _dirname(platform.name)
                found.append((f"platform {platform.name}", Semaphore(directory, platform.max_jobs)))
            if group is not None:
                directory = self._groups_dir / _dirname(group.name)
                found.append((f"group {group.name}", Semaphore(directory, group.max_jobs)))
            self._wanted[cache_key] = found
        return found

    @staticmethod
    def _acquire(key: str, semaphore: Semaphore) -> Slot | None:
        try:
            return semaphore.try_acquire()
        except OSError as exc:
            where = semaphore.directory
            raise SubmitError(f"cannot take a slot of {key} in {where}: {exc.strerror or exc}") from exc

    # -- windows ----------------------------------------------------------
    def open(self, key: str, platform: Platform, group: ResourceGroup | None, on_this_host: bool) -> Window:
        """A job is about to be submitted: its window starts now (written to the ledger first)."""
        window = Window(job=key, platform=platform.name, group=None if group is None else group.name)
        if on_this_host:
            window.load_avg_start = load_average()
        if self.ledger is not None:
            try:
                self.ledger.write(window)
            except OSError as exc:
                raise SubmitError(f"cannot record the job's window in {self.ledger.path}: {exc}") from exc
        return window

    def seen(self, window: Window | None, state: JobState) -> None:
        """A poll's answer: while the job has never been seen past pending, its run starts later."""
        if window is None or window.seen_running or window.end_unix_s is not None:
            return
        if state is JobState.PENDING:
            window.start_unix_s = time.time()
        elif state is not JobState.UNKNOWN:
            window.seen_running = True
            if not state.finished:  # else close() writes it
                self._write(window)

    def close(self, window: Window | None, hold: Hold | None) -> None:
        """The job ended or was cancelled: close its window, then give its slots back."""
        if window is not None and window.end_unix_s is None:
            window.end_unix_s = time.time()
            if window.load_avg_start is not None:
                window.load_avg_end = load_average()
            self._write(window)
        if hold is not None:
            hold.release()

    def _write(self, window: Window) -> None:
        if self.ledger is not None:
            with suppress(OSError):  # others then see the window open: they count it as beside them
                self.ledger.write(window)

    def contention(self, group: ResourceGroup | None, windows: list[Window]) -> Contention:
        """What ran beside these windows so far, from the ledger (all of the run's processes)."""
        if group is None or self.ledger is None or not windows:
            return Contention(group, windows)
        return Contention(group, windows, self.ledger.beside(windows))


def group_conflicts(groups: dict[str, ResourceGroup | None]) -> list[str]:
    """Platforms (name → group) that give one group different ``max_jobs``."""
    seen: dict[str, tuple[str, int]] = {}
    problems = []
    for platform, group in groups.items():
        if group is None:
            continue
        first = seen.setdefault(group.name, (platform, group.max_jobs))
        if first[1] != group.max_jobs:
            problems.append(
                f"resource group {group.name!r} has max_jobs {first[1]} on platform {first[0]!r} but "
                f"{group.max_jobs} on platform {platform!r}: give it one max_jobs"
            )
    return problems
