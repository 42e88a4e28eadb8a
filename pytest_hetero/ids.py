"""Identifiers unique within a run, drawn without a system call each.

``uuid.uuid4()`` reads ``os.urandom`` and builds a ``UUID`` for every job (twice: its marker and its
window). Here a process draws a random prefix once (again in a forked child) and counts after it:
fixed length, so one identifier is never a prefix of another (the local backend finds a job's
processes by searching their environment for its marker).
"""

from __future__ import annotations

import itertools
import os

__all__ = ["new_id"]

_COUNTER_HEX = 8  # four billion identifiers a process before the width grows


class _Source:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def next(self, length: int) -> str:
        """``length`` - 8 hex digits of this process's prefix, then the counter's 8."""
        return f"{self.prefix[: length - _COUNTER_HEX]}{next(self.counter):0{_COUNTER_HEX}x}"


_SOURCE = _Source()
if hasattr(os, "register_at_fork"):  # a forked child must not repeat its parent's identifiers
    os.register_at_fork(after_in_child=_SOURCE.reset)


def new_id(length: int = 24) -> str:
    """A hex identifier of ``length`` (16 to 24) characters, unique among this run's processes.

    16 leaves 32 random bits to tell processes apart: enough for the workers of one run.
    """
    if not 16 <= length <= 24:
        raise ValueError(f"an identifier has 16 to 24 characters, not {length}")
    return _SOURCE.next(length)
