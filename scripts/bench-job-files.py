"""What a local job's files cost the kernel: a directory and two log files, per job, in each given directory.

The plugin gives each job a directory holding ``stdout.log`` and ``stderr.log`` (three inodes).
This times creating them (``mkdir``, two ``open(O_CREAT)``) for ``--jobs`` jobs in a fresh
directory under each ``DIR``, three times, and prints the CPU per job. It shows how much the
filesystem's state matters: on a journal-less ext4 the inode allocator checks each free inode's
deletion time (``recently_deleted``), so a tree where thousands of files were just deleted
(``/tmp`` after test runs) costs many times what a quiet one does. The directories are left in
place (removing them is what slows the next allocations down). Usage::

    .venv/bin/python scripts/bench-job-files.py /tmp .hetero /dev/shm
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
from pathlib import Path

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def job_files_us(base: Path, jobs: int) -> float:
    """CPU microseconds per job to create its directory and its two (empty) logs under ``base``."""
    before = _cpu_s()
    for index in range(jobs):
        workdir = base / f"job-{index}"
        os.mkdir(workdir)
        for name in ("stdout.log", "stderr.log"):
            os.close(os.open(workdir / name, _FLAGS, 0o666))
    return (_cpu_s() - before) / jobs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    for root in args.dirs:
        root.mkdir(parents=True, exist_ok=True)
        runs = [job_files_us(Path(tempfile.mkdtemp(dir=root, prefix="job-files-")), args.jobs) for _ in range(3)]
        print(f"{root}: {', '.join(f'{us:.0f}' for us in runs)} µs CPU per job (directory and two logs)")


if __name__ == "__main__":
    main()
