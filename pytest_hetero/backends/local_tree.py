"""Every process a local job started, wherever it went, and how to end them all.

A process group is not enough: a workload's child may start its own session
(``setsid``, a daemonising data loader) and leave the group, and once the
workload itself exits its children are re-parented away from it. So each job
carries a marker in its environment (:data:`MARKER_ENV`, inherited by every
descendant that does not clear its environment) and the clean-up ends, on
Linux, every process that carries the job's marker or descends from it
(through ``/proc``), repeating until none is left, besides signalling the group.
The driver is also made a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``):
orphans of a job become its children rather than init's, so they stay in the
tree it walks and their zombies are reaped here.

Elsewhere (no ``/proc``: macOS, BSD) only the process group is signalled; a
child that leaves the group there escapes, as documented in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import time
from collections.abc import Iterator, Set
from pathlib import Path

__all__ = ["MARKER_ENV", "become_subreaper", "job_processes", "kill_job", "signal_job"]

#: The local backend's marker of one job's processes (not part of the workload protocol: nothing reads it).
MARKER_ENV = "PYTEST_HETERO_LOCAL_JOB"
_PROC = Path("/proc")
_PR_SET_CHILD_SUBREAPER = 36
_subreaper: bool | None = None


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False where unsupported."""
    global _subreaper
    if _subreaper is None:
        _subreaper = False
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
                _subreaper = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return _subreaper


def _processes() -> Iterator[tuple[int, int, str]]:
    """(pid, parent pid, state letter) of every process this host shows in /proc."""
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) S ppid ...": comm may hold spaces and parentheses, so split after the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        yield int(entry.name), int(fields[1]), fields[0]


def _carries(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def job_processes(leader: int | None, token: str) -> set[int]:
    """Live processes of one job: the leader's descendants and whatever carries its marker.

    ``leader`` is None once its exit status has been collected: its pid may then belong to another process.
    """
    if not _PROC.is_dir():
        return set()
    marker = f"{MARKER_ENV}={token}".encode()
    children: dict[int, list[int]] = {}
    found: set[int] = set()
    for pid, ppid, state in _processes():
        if state in "ZX":
            continue
        children.setdefault(ppid, []).append(pid)
        if pid != os.getpid() and _carries(pid, marker):
            found.add(pid)
    todo = [*found] if leader is None else [leader, *found]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    found.discard(os.getpid())
    return found


def signal_job(
    group: int, token: str, sig: signal.Signals, *, leader: int | None, known: Set[int] = frozenset()
) -> set[int]:
    """Send ``sig`` to the job's process group and to every process of it found; return those found.

    Found: the descendants of ``leader`` (see :func:`job_processes`), whatever carries the job's
    marker, and the ``known`` ones (found before the leader's status was collected) still alive.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)
    found = job_processes(leader, token) | {pid for pid in known if _alive(pid)}
    for pid in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return found


def kill_job(group: int, token: str, *, leader: int | None, known: Set[int] = frozenset(), rounds: int = 20) -> None:
    """SIGKILL the job's processes until none is found (a fork may race a round); reap our orphans."""
    killed: set[int] = set()
    for _ in range(rounds):
        found = signal_job(group, token, signal.SIGKILL, leader=leader, known=known) - {group}
        killed |= found
        if not found:
            break
        time.sleep(0.01)
    _reap(killed)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


def _reap(pids: set[int], timeout_s: float = 2.0) -> None:
    """Collect the exit status of the job's orphans re-parented to us (subreaper); others are not ours."""
    deadline = time.monotonic() + timeout_s
    waiting = set(pids)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid  # not our child: its own parent reaps it
            if done:
                waiting.discard(pid)
        if waiting:
            time.sleep(0.01)
