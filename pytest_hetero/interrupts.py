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
from types import FrameType
from typing import Any

__all__ = ["HURRY", "InterruptedSubmission", "Interrupts"]

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
