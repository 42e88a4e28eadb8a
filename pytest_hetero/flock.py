"""Operating-system file locks for :mod:`.isolation`'s slots and :mod:`.contention`'s ledger.

``flock`` directly where the platform has it: taking and giving back a slot
costs a few microseconds (``filelock``'s objects cost about 100 µs, several
times per job). Elsewhere (Windows) ``filelock`` does the same (imported only there). Either way the
lock belongs to an open file, so the kernel drops it when the process dies.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from filelock import FileLock

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Held", "exclusive", "try_lock"]

_MODE = 0o666  # lock files in a shared directory are usable by every user's runs


class Held:
    """A lock held on a file; :meth:`release` is idempotent."""

    def __init__(self, fd: int | None = None, lock: FileLock | None = None) -> None:
        self._fd, self._lock = fd, lock

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor of the open file drops its flock
            self._fd = None
        if self._lock is not None:
            self._lock.release(force=True)
            self._lock = None


def try_lock(path: Path) -> Held | None:
    """An exclusive lock on ``path`` (created if missing), or None if another open file holds it. Never waits.

    :class:`OSError` if the file cannot be opened.
    """
    if fcntl is None:  # pragma: no cover - Windows
        from filelock import FileLock, Timeout  # only where flock is missing

        lock = FileLock(path, mode=_MODE, thread_local=False)
        try:
            lock.acquire(blocking=False)
        except Timeout:
            return None
        return Held(lock=lock)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, _MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    if os.fstat(fd).st_mode & 0o777 != _MODE:
        with suppress(PermissionError):  # made by another user: theirs to set
            os.fchmod(fd, _MODE)
    return Held(fd=fd)


class exclusive:  # lower case: used as a function: ``with exclusive(fd, path):``
    """Hold an exclusive lock on the open descriptor ``fd`` (``lock_path`` where flock is missing), waiting.

    A class, not a generator context manager: the window ledger takes it for every line it appends.
    """

    __slots__ = ("_fd", "_lock", "_lock_path")

    def __init__(self, fd: int, lock_path: Path) -> None:
        self._fd, self._lock_path = fd, lock_path
        self._lock: FileLock | None = None

    def __enter__(self) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            from filelock import FileLock  # only where flock is missing

            self._lock = FileLock(self._lock_path, thread_local=False)
            self._lock.acquire()
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        if self._lock is not None:  # pragma: no cover - Windows
            self._lock.release()
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)
