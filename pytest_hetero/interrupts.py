"""Ctrl-C and SIGTERM: the first one unwinds the run, every later one only hurries the clean-up.

The first SIGINT or SIGTERM raises :class:`KeyboardInterrupt`, so pytest stops,
the jobs in flight are cancelled and the reports are written. A second signal
used to raise again in the middle of that clean-up (while the local backend
waited out its kill grace, while ``scancel`` or a Kubernetes delete ran): the
workload survived, no report listed what was cancelled, and Python printed a
traceback. So from the first signal on, further signals only set :data:`HURRY`
(the local backend then sends SIGKILL at once instead of waiting out the
grace) and say so on stderr; the clean-up itself is bounded by each backend's
timeouts. That holds only in runs that opened a backend (``busy``): in any other
run, such as one without benchmarks, every signal raises as without the plugin.
The handlers are installed only over Python's defaults (a SIGINT
ignored by the parent stays ignored) and put back at the end of the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

__all__ = ["HURRY", "InterruptedSubmission", "Interrupts", "mend_traceback"]

#: Set by the second and later signals: clean-up should not wait out grace periods.
HURRY = threading.Event()

_DEFAULTS: dict[int, Any] = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


class Interrupts:
    """Owns this run's SIGINT/SIGTERM handlers between :meth:`install` and :meth:`restore`."""

    def __init__(self, busy: Callable[[], bool] = lambda: True) -> None:
        #: Whether the run has jobs or objects to clean up; if not, later signals raise as usual.
        self._busy = busy
        self._previous: dict[int, Any] = {}
        self.received = 0
        self._unwinding = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals are delivered to the main thread only
        HURRY.clear()
        for signum, default in _DEFAULTS.items():
            if signal.getsignal(signum) is default:
                self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, previous)
        self._previous.clear()

    def cleaning_up(self) -> None:
        """The run is ending anyway: from now on no signal raises, so the clean-up runs to its end."""
        self._unwinding = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        if not self._unwinding or not self._busy():
            self._unwinding = True
            raise KeyboardInterrupt(f"signal {signum}")  # unwind like Ctrl-C: cancel jobs, write reports
        HURRY.set()
        message = f"\npytest-hetero: {signal.Signals(signum).name} again: cleaning up now, jobs are being ended\n"
        with contextlib.suppress(OSError):
            os.write(2, message.encode())  # no buffered print inside a signal handler


class InterruptedSubmission(KeyboardInterrupt):
    """Ctrl-C while a backend submitted a job: it cancelled what got submitted (``job_id``; None: nothing).

    The scheduler lists that job as cancelled, and the session the case it was for.
    """

    def __init__(self, message: str, job_id: str | None) -> None:
        super().__init__(message)
        self.job_id = job_id


def mend_traceback(exc: BaseException) -> None:
    """Give every entry of ``exc``'s tracebacks (its causes' and contexts' too) a line number.

    A signal handler raises at whatever instruction the main thread was at, and on Python 3.11 some
    instructions (the clean-up code of a ``with`` or ``try``) map to no line: that entry's ``tb_lineno``
    is None, and pytest, formatting the KeyboardInterrupt, fails on it with a TypeError (exit 1, a
    traceback, instead of "interrupted"). Such an entry is replaced by one that names the nearest line
    before it. The first entry (the frame that caught the exception) is never one of them.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        entry = exc.__traceback__
        while entry is not None and entry.tb_next is not None:
            following = entry.tb_next
            if following.tb_lineno is None:
                entry.tb_next = TracebackType(
                    following.tb_next, following.tb_frame, following.tb_lasti, _line_before(following)
                )
            entry = entry.tb_next
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]


def _line_before(entry: TracebackType) -> int:
    """The line of the last instruction at or before ``entry``'s that has one (else the code's first)."""
    code = entry.tb_frame.f_code
    line = code.co_firstlineno
    for start, _end, number in code.co_lines():
        if start > entry.tb_lasti:
            break
        if number is not None:
            line = number
    return line
