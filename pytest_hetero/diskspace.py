"""A full filesystem named as the reason, instead of the symptom it causes.

A workload whose log or result cannot be written usually just exits with status 1, and the
log that would say why is empty; a report that cannot be written raises ENOSPC. Both are
reported with the directory and ``No space left on device (ENOSPC)``.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

__all__ = ["FULL_BELOW_BYTES", "full_disk_note", "no_space_message"]

#: Less free space than this, for a job's directory, counts as full: a log line or a result no longer fits.
FULL_BELOW_BYTES = 64 * 1024


def full_disk_note(directory: Path) -> str:
    """``''``, or a sentence saying that ``directory`` is on a full filesystem."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return ""
    if free >= FULL_BELOW_BYTES:
        return ""
    return (
        f"; its directory {directory} is on a full filesystem ({free} bytes free: "
        f"{os.strerror(errno.ENOSPC)}, ENOSPC), so its logs and results could not be written; free some space "
        "or point --hetero-output-dir elsewhere"
    )


def no_space_message(exc: OSError) -> str:
    """``exc`` in words, ENOSPC spelled out as the full disk it is."""
    if exc.errno == errno.ENOSPC:
        return f"{os.strerror(errno.ENOSPC)} (ENOSPC): the filesystem is full"
    return exc.strerror or str(exc)
