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

After a job that ended by itself the walk is skipped when nothing can have
escaped (:func:`_nothing_escaped`): its process group is empty and the driver
has no child besides the leaders of jobs still running. Any process of the
job that left the group would then be alive under a dead parent, and every
such orphan is re-parented to the driver (the subreaper), so it would show.

Elsewhere (no ``/proc``: macOS, BSD) only the process group is signalled; a
child that leaves the group there escapes, as documented in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Iterator, Set
from pathlib import Path

__all__ = ["MARKER_ENV", "become_subreaper", "forget_leader", "job_processes", "kill_job", "signal_job", "track_leader"]

#: The local backend's marker of one job's processes (not part of the workload protocol: nothing reads it).
MARKER_ENV = "PYTEST_HETERO_LOCAL_JOB"
_PROC = Path("/proc")
_PR_SET_CHILD_SUBREAPER = 36
_subreaper: bool | None = None
#: Leaders of the local jobs this process started and has not yet reaped (expected children of the driver).
_leaders: set[int] = set()


def track_leader(pid: int) -> None:
    """Note a job's leader: a child of this process that is not a stray."""
    _leaders.add(pid)


def forget_leader(pid: int) -> None:
    """The leader's exit status has been collected: its pid may be another process's now."""
    _leaders.discard(pid)


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False where unsupported."""
    global _subreaper
    if _subreaper is None:
        _subreaper = False
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                # The running interpreter's symbols, libc's among them: find_library would run ldconfig.
                libc = ctypes.CDLL(None, use_errno=True)
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
    """SIGKILL the job's processes until none is found (a fork may race a round); reap our orphans.

    A job whose leader has been reaped (``leader`` None), with nothing ``known`` and nothing escaped
    (see :func:`_nothing_escaped`), has nothing left to end: the walk of ``/proc`` is skipped.
    """
    if leader is None and not known and _nothing_escaped(group):
        return
    killed: set[int] = set()
    for _ in range(rounds):
        found = signal_job(group, token, signal.SIGKILL, leader=leader, known=known) - {group}
        killed |= found
        if not found:
            break
        time.sleep(0.01)
    _reap(killed)


def _nothing_escaped(group: int) -> bool:
    """True when no process of the job with this group can be alive (Linux, subreaper; else False).

    The group is empty (a process group's id is not reused while a member, zombie or not, is left,
    and its members' orphans were re-parented before it emptied), and every child of this process
    is the leader of a running job or a zombie. A job process outside the group with a dead parent
    was re-parented here, so a live one would be listed; one with a live parent descends from such
    a process. The children are listed again after their states are read, so one re-parented
    meanwhile (by a child that became a zombie) is not missed.
    """
    if not _subreaper:
        return False
    try:
        os.killpg(group, 0)
        return False  # someone is still in the group
    except ProcessLookupError:
        pass
    except OSError:
        return False
    before = _children()
    if before is None:
        return False
    strays = before - _leaders
    if not strays:
        return True  # no process of the job can be alive without a stray child of ours above it
    if any(_alive(pid) for pid in strays):
        return False
    after = _children()
    return after is not None and after - _leaders <= strays


def _children() -> set[int] | None:
    """This process's children, from every thread's ``children`` list; None where the kernel has none."""
    pids: set[int] = set()
    try:
        for task in os.scandir("/proc/self/task"):
            pids.update(map(int, _read_small(f"{task.path}/children").split()))
    except OSError:
        return None
    return pids


def _read_small(path: str) -> bytes:
    """A small /proc file's bytes, with plain system calls (a polled job reads two: pathlib costs more)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


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
