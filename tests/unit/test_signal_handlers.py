"""The signal handlers of a run: the first Ctrl-C/SIGTERM unwinds, later ones only hurry the clean-up."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_hetero.interrupts import HURRY, InterruptedSubmission, Interrupts


@pytest.fixture
def interrupts() -> Iterator[Interrupts]:
    installed = Interrupts()
    # The handlers replace only Python's defaults; the test's own runner may have changed SIGTERM's.
    previous = {sig: signal.signal(sig, default) for sig, default in _DEFAULTS.items()}
    installed.install()
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # not the main thread: a SIGTERM would end the run
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        pytest.skip("signal handlers can be installed from the main thread only")
    yield installed
    installed.restore()
    for sig, handler in previous.items():
        signal.signal(sig, handler)


_DEFAULTS: dict[signal.Signals, Any] = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_first_signal_unwinds_and_later_ones_only_hurry(interrupts: Interrupts, first: signal.Signals) -> None:
    with pytest.raises(KeyboardInterrupt, match=f"signal {int(first)}"):
        os.kill(os.getpid(), first)
    assert not HURRY.is_set()
    for sig in [signal.SIGINT, signal.SIGTERM, signal.SIGINT]:
        os.kill(os.getpid(), sig)  # no KeyboardInterrupt: the clean-up runs to its end
    assert HURRY.is_set() and interrupts.received == 4


def test_in_a_run_with_nothing_to_clean_up_every_signal_raises(interrupts: Interrupts) -> None:
    busy = False
    interrupts._busy = lambda: busy  # a run that never opened a backend (no benchmark selected)
    for sig in [signal.SIGINT, signal.SIGINT, signal.SIGTERM]:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), sig)
    busy = True  # it opens one: a later signal only hurries its clean-up
    os.kill(os.getpid(), signal.SIGINT)
    assert HURRY.is_set() and interrupts.received == 4


def test_no_signal_raises_once_the_run_is_cleaning_up(interrupts: Interrupts) -> None:
    interrupts.cleaning_up()
    os.kill(os.getpid(), signal.SIGTERM)
    assert HURRY.is_set()


def test_restore_puts_the_previous_handlers_back_and_install_clears_the_hurry(interrupts: Interrupts) -> None:
    HURRY.set()
    again = Interrupts()
    again.install()  # over a handler that is not Python's default: left alone
    assert HURRY.is_set() is False
    again.restore()
    interrupts.restore()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_ignored_sigint_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        installed = Interrupts()
        installed.install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        installed.restore()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_interrupted_submission_is_a_keyboard_interrupt_with_the_job_it_cancelled() -> None:
    error = InterruptedSubmission("signal 2", "4242")
    assert isinstance(error, KeyboardInterrupt) and error.job_id == "4242"


#: A test that is interrupted the way a signal can interrupt it on Python 3.11: the KeyboardInterrupt's
#: traceback ends at an instruction with no line (the clean-up code of a ``with``), its ``tb_lineno`` None.
_INTERRUPTED_AT_NO_LINE = """
import sys
import types


def _frame():
    frame = sys._getframe()
    with open(__file__) as handle:
        handle.read(1)
    return frame


def test_interrupted():
    frame = _frame()
    at = next(start for start, _end, line in frame.f_code.co_lines() if line is None)
    entry = types.TracebackType(None, frame, at, -1)
    assert entry.tb_lineno is None
    raise KeyboardInterrupt("signal 2").with_traceback(entry)
"""


def test_an_interrupt_raised_where_no_line_is_known_ends_the_run_as_interrupted(pytester: pytest.Pytester) -> None:
    """Not exit 1 with pytest's own TypeError traceback (it subtracts 1 from the None line number)."""
    pytester.makepyfile(test_interrupted=_INTERRUPTED_AT_NO_LINE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output and "TypeError" not in output
