"""A full disk, for real (issue 14): a small tmpfs filled up, as root.

Each report that cannot be written is named with the reason (ENOSPC) and the others are still
written; a failed JSON write leaves no temporary file; a full output directory makes a job's
failure say so instead of only "exited with status 1". Mounting needs root: elsewhere these
tests are skipped, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_hetero.reporting.json_report import write_report

TEST = """
import pytest

@pytest.mark.hetero(command=["python", "work.py"])
def test_b(hetero_result):
    pass
"""


class FullDisk:
    """A 1 MiB tmpfs at ``path``; :meth:`fill` leaves it exactly ``free_bytes`` free."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fill(self, free_bytes: int = 0) -> Path:
        stat = os.statvfs(self.path)
        filler = self.path / f"filler-{uuid.uuid4().hex}"
        with filler.open("wb") as stream:
            stream.write(b"\0" * max(stat.f_bavail * stat.f_frsize - free_bytes, 0))
        return self.path


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[FullDisk]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        reason = f"cannot mount a small tmpfs (root needed): {done.stderr.decode().strip()}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so the full-disk checks must run")
        pytest.skip(reason)
    try:
        yield FullDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_json_write_failure_leaves_no_temporary_file(full_disk: FullDisk) -> None:
    target = full_disk.fill(0) / "report.json"
    with pytest.raises(OSError, match="No space left on device"):
        write_report(target, {"payload": "x" * 100_000})  # fill(0) left no space
    assert [p.name for p in full_disk.path.iterdir() if not p.name.startswith("filler-")] == []


def test_junit_on_a_full_disk_is_named_and_the_json_report_still_written(
    bench_dir: pytest.Pytester, full_disk: FullDisk
) -> None:
    bench_dir.makepyfile(test_b=TEST)
    junit = full_disk.fill(0) / "junit.xml"
    result = bench_dir.runpytest_subprocess(f"--junitxml={junit}", "--hetero-json=report.json")
    result.stdout.fnmatch_lines([f"pytest-hetero: could not write the JUnit report {junit}: No space left on device*"])
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR  # a requested report is missing
    assert json.loads((bench_dir.path / "report.json").read_text())["results"][0]["outcome"] == "passed"
    assert not junit.exists() and "Traceback" not in result.stdout.str() + result.stderr.str()


def test_json_on_a_full_disk_is_named_and_junit_still_written(bench_dir: pytest.Pytester, full_disk: FullDisk) -> None:
    bench_dir.makepyfile(test_b=TEST)
    report = full_disk.fill(0) / "report.json"
    result = bench_dir.runpytest_subprocess("--junitxml=junit.xml", f"--hetero-json={report}")
    result.stdout.fnmatch_lines([f"pytest-hetero: could not write the JSON report {report}: No space left on device*"])
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    assert 'tests="1"' in (bench_dir.path / "junit.xml").read_text()
    assert [p.name for p in full_disk.path.iterdir() if not p.name.startswith("filler-")] == []  # no .tmp


def test_full_output_dir_gives_the_reason(bench_dir: pytest.Pytester, full_disk: FullDisk) -> None:
    """Room for the run's directories and empty files but not for the workload's output: the failure says so."""
    bench_dir.makepyfile(test_b=TEST)
    out = full_disk.fill(0)  # a tmpfs: directories and empty files take no block, the first byte of output does
    result = bench_dir.runpytest_subprocess(f"--hetero-output-dir={out}")
    result.assert_outcomes(failed=1)
    failure = result.stdout.str()
    assert "is on a full filesystem (" in failure and "No space left on device, ENOSPC" in failure, failure
    assert "Traceback" not in failure
