"""Slots across processes, resource groups in the catalogue, windows and what overlapped them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_hetero.backends.base import JobState
from pytest_hetero.backends.fake import FakeBackend
from pytest_hetero.backends.local import LocalBackend
from pytest_hetero.config.loader import parse_catalogue
from pytest_hetero.config.models import Accelerator, BackendConfig, Platform, ResourceGroup
from pytest_hetero.contention import Ledger, Window, overlapping, refresh_contention
from pytest_hetero.errors import ConfigError
from pytest_hetero.isolation import Isolation, Semaphore, group_conflicts

#: Takes a slot of the semaphore in argv[1] (capacity argv[2]), says whether it got one, holds it until stdin closes.
HOLDER = """
import sys
from pathlib import Path
from pytest_hetero.isolation import Semaphore
slot = Semaphore(Path(sys.argv[1]), int(sys.argv[2])).try_acquire()
print("held" if slot else "busy", flush=True)
sys.stdin.read()
"""


def _holder(directory: Path, capacity: int = 1) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), str(capacity)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _answer(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def test_two_processes_contend_for_one_slot(tmp_path: Path) -> None:
    first = _holder(tmp_path)
    try:
        assert _answer(first) == "held"
        second = _holder(tmp_path)
        assert _answer(second) == "busy"
        second.communicate("")
        assert Semaphore(tmp_path, 1).try_acquire() is None, "this process is refused too"
        first.communicate("")  # the holder ends normally: its lock goes with it
        mine = Semaphore(tmp_path, 1).try_acquire()
        assert mine is not None
        third = _holder(tmp_path)
        assert _answer(third) == "busy"
        third.communicate("")
        mine.release()
        mine.release()  # idempotent
        assert Semaphore(tmp_path, 1).try_acquire() is not None
    finally:
        first.kill()


def test_a_killed_holder_frees_its_slot(tmp_path: Path) -> None:
    holders = [_holder(tmp_path, capacity=2) for _ in range(2)]
    try:
        assert sorted(_answer(h) for h in holders) == ["held", "held"]
        assert Semaphore(tmp_path, 2).try_acquire() is None
        holders[0].kill()  # no clean-up runs: the kernel drops its lock
        holders[0].wait()
        assert Semaphore(tmp_path, 2).try_acquire() is not None
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


def test_one_process_counts_its_own_slots(tmp_path: Path) -> None:
    semaphore = Semaphore(tmp_path / "made-on-demand", 2)
    slots = [semaphore.try_acquire(), semaphore.try_acquire()]
    assert all(slots) and semaphore.try_acquire() is None
    assert slots[0] is not None
    slots[0].release()
    assert semaphore.try_acquire() is not None


def _catalogue(group: str) -> dict[str, object]:
    entry = {"name": "a", "accelerator": {"kind": "cpu"}, "backend": {"kind": "local"}}
    return {"version": 1, "platforms": [entry, {**entry, "name": "b", "resource_group": group}]}


def test_resource_group_in_the_catalogue() -> None:
    catalogue = parse_catalogue(_catalogue("cs2"), source="p.yaml")
    assert [p.resource_group for p in catalogue.platforms] == [None, ResourceGroup("cs2", max_jobs=1)]
    wide = _catalogue("x")
    wide["platforms"][1]["resource_group"] = {"name": "cpus", "max_jobs": 3}  # type: ignore[index]
    assert parse_catalogue(wide, source="p.yaml").platforms[1].resource_group == ResourceGroup("cpus", 3)


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"name": "x", "max_jobs": 0}, "$.platforms[1].resource_group.max_jobs: 0 is less than the minimum of 1"),
        ({"max_jobs": 2}, "$.platforms[1].resource_group: 'name' is a required property"),
        ("has space", "$.platforms[1].resource_group: 'has space' does not match"),
    ],
)
def test_bad_resource_group_names_its_path(group: object, message: str) -> None:
    data = _catalogue("x")
    data["platforms"][1]["resource_group"] = group  # type: ignore[index]
    with pytest.raises(ConfigError, match="invalid platform catalogue") as info:
        parse_catalogue(data, source="p.yaml")
    assert message in str(info.value)


def _platform(name: str, kind: str = "local", group: ResourceGroup | None = None) -> Platform:
    return Platform(
        name=name, accelerator=Accelerator(kind="cpu"), backend=BackendConfig(kind=kind), resource_group=group
    )


def test_default_groups_come_from_the_backend() -> None:
    host = LocalBackend(_platform("a")).resource_group
    assert host is not None and host.name.startswith("host:") and host.max_jobs == 1
    assert LocalBackend(_platform("b")).resource_group == host, "one group for every local platform of a host"
    assert FakeBackend(_platform("f", "fake")).resource_group is None
    declared = ResourceGroup("cpus", 2)
    assert LocalBackend(_platform("c", group=declared)).resource_group == declared


def test_one_group_one_max_jobs() -> None:
    assert group_conflicts({"a": ResourceGroup("g"), "b": ResourceGroup("g"), "c": None}) == []
    assert group_conflicts({"a": ResourceGroup("g"), "b": ResourceGroup("g", 2)}) == [
        "resource group 'g' has max_jobs 1 on platform 'a' but 2 on platform 'b': give it one max_jobs"
    ]


def _window(job: str, start: float, end: float | None, group: str | None = "g") -> Window:
    return Window(job=job, platform="p", group=group, start_unix_s=start, end_unix_s=end)


def test_overlap_is_strict_and_per_group() -> None:
    mine = [_window("me#0", 10.0, 20.0), _window("me#1", 30.0, 40.0)]
    others = [
        _window("before", 0.0, 10.0),  # ends as mine starts: no overlap
        _window("inside", 12.0, 13.0),
        _window("open", 39.0, None),  # still running
        _window("elsewhere", 12.0, 13.0, group="other"),
        _window("between", 20.0, 30.0),
        *mine,
    ]
    assert [w.job for w in overlapping(mine, others)] == ["inside", "open"]


@pytest.mark.parametrize("on_disk", [True, False], ids=["file", "memory"])
def test_ledger_beside_finds_what_a_scan_of_every_window_finds(tmp_path: Path, on_disk: bool) -> None:
    """The ledger's index (open windows, closed ones by end) answers like a scan of the whole run."""
    ledger = Ledger(tmp_path / "run" / "windows.jsonl" if on_disk else None)
    everyone = [
        _window(f"j{i}", float(start), None if end is None else float(end), group)
        for i, (start, end, group) in enumerate(
            [(0, 5, "g"), (4, 9, "g"), (8, 30, "g"), (10, 12, "g"), (11, None, "g"), (3, 40, "h"), (20, 21, "g")]
        )
    ]
    for window in reversed(everyone):  # closed out of order
        ledger.write(window)
    moved = _window("late-close", 1.0, None)
    ledger.write(moved)
    moved.end_unix_s = 25.0  # seen open, then closed
    ledger.write(moved)
    everyone.append(moved)
    for start, end in [(0.0, 1.0), (5.0, 8.0), (9.0, 10.0), (12.0, 13.0), (26.0, 50.0), (50.0, 60.0)]:
        query = [_window("me", start, end)]
        assert [w.id for w in ledger.beside(query)] == [w.id for w in overlapping(query, everyone)], (start, end)


def test_ledger_reads_every_process_lines_latest_state(tmp_path: Path) -> None:
    path = tmp_path / "run" / "windows.jsonl"
    ledger = Ledger(path)
    window = _window("a#0", 1.0, None)
    ledger.write(window)
    assert [(w.id, w.end_unix_s) for w in ledger.windows()] == [(window.id, None)]
    window.end_unix_s = 2.0
    Ledger(path).write(window)  # another process, same file
    with path.open("a") as out:
        out.write('{"partial": ')  # a line being written: read once it is whole
    assert [(w.id, w.end_unix_s) for w in ledger.windows()] == [(window.id, 2.0)]


def test_ledger_kept_open_sees_appends_of_others_and_survives_close(tmp_path: Path) -> None:
    """The descriptors kept open between calls read what other writers appended, also after close()."""
    path = tmp_path / "run" / "windows.jsonl"
    ledger, other = Ledger(path), Ledger(path)
    ledger.write(_window("a#0", 1.0, None))
    other.write(_window("b#0", 2.0, 3.0))
    assert sorted(w.job for w in ledger.windows()) == ["a#0", "b#0"]
    ledger.close()
    other.write(_window("c#0", 4.0, None))
    ledger.write(_window("d#0", 5.0, None))
    assert sorted(w.job for w in ledger.windows()) == ["a#0", "b#0", "c#0", "d#0"]
    assert len(path.read_text().splitlines()) == 4  # every line whole, none read twice


def test_isolation_records_windows_and_what_was_beside(tmp_path: Path) -> None:
    isolation = Isolation(tmp_path / "run", host_dir=tmp_path / "locks")
    group = ResourceGroup("g", max_jobs=2)
    platform = _platform("a", group=group)
    first = isolation.open("t1#0", platform, group, on_this_host=True)
    isolation.seen(first, JobState.RUNNING)
    second = isolation.open("t2#0", platform, group, on_this_host=False)
    isolation.seen(second, JobState.PENDING)  # not running yet: its start moves
    isolation.close(first, None)
    assert first.load_avg_start is not None and first.load_avg_end is not None
    assert second.load_avg_start is None
    seen = isolation.contention(group, [first])
    assert [w.job for w in seen.beside] == ["t2#0"] and seen.contended
    isolation.close(second, None)
    record = seen.as_record()
    assert record["resource_group"] == "g" and record["group_max_jobs"] == 2
    assert [w["end_unix_s"] for w in record["beside"]] == [None], "still open when the test ended"
    refresh_contention([record], isolation.ledger)
    assert record["beside"][0]["end_unix_s"] is not None and record["contended"]


def test_a_run_in_one_process_keeps_windows_in_memory_and_only_the_group_slot_on_disk(tmp_path: Path) -> None:
    """Nobody else uses a lone process's run directory: no ledger file, no platform slots; the group still locks."""
    isolation = Isolation(tmp_path / "run", host_dir=tmp_path / "locks", shared=False)
    group = ResourceGroup("g", max_jobs=1)
    platform = _platform("a", group=group)
    hold = isolation.try_hold(platform, group, set())
    assert hold is not None and len(hold.slots) == 1, "the group's slot only: max_jobs is the scheduler's count"
    assert isolation.try_hold(platform, group, set()) is None, "the group is full"
    other = _holder(tmp_path / "locks" / "groups" / "g")
    try:
        assert _answer(other) == "busy", "another process on this host still waits for the group"
    finally:
        other.communicate("")
    first = isolation.open("t1#0", platform, group, on_this_host=True)
    isolation.open("t2#0", platform, group, on_this_host=False)  # still running beside the first
    isolation.close(first, hold)
    assert [w.job for w in isolation.contention(group, [first]).beside] == ["t2#0"]
    assert isolation.ledger is not None and isolation.ledger.path is None
    assert sorted(w.job for w in isolation.ledger.windows()) == ["t1#0", "t2#0"]
    assert not (tmp_path / "run").exists()
    assert isolation.try_hold(platform, group, set()) is not None, "given back"


def test_a_pending_job_starts_later_than_its_submission(tmp_path: Path) -> None:
    isolation = Isolation(tmp_path / "run", host_dir=tmp_path / "locks")
    platform = _platform("a")
    window = isolation.open("t#0", platform, None, on_this_host=False)
    opened = window.start_unix_s
    isolation.seen(window, JobState.PENDING)
    moved = window.start_unix_s
    isolation.seen(window, JobState.RUNNING)
    isolation.seen(window, JobState.PENDING)  # requeued after running: the start stays
    assert opened <= moved == window.start_unix_s
    assert isolation.ledger is not None
    assert [w.start_unix_s for w in isolation.ledger.windows()] == [moved]


def test_ledger_reads_its_own_lines_back_as_written_even_past_its_memory_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own lines are indexed without parsing while remembered, parsed once forgotten: the same windows."""
    monkeypatch.setattr("pytest_hetero.contention._MINE_MAX", 3)
    ledger = Ledger(tmp_path / "run" / "windows.jsonl")
    written = []
    for i in range(8):  # more than it remembers, none read back meanwhile
        window = _window(f"j{i}#0", float(i), None)
        ledger.write(window)
        window.end_unix_s = i + 0.5
        ledger.write(window)
        written.append((window.id, window.job, window.start_unix_s, window.end_unix_s))
    window.end_unix_s = 99.0  # changed after its last write: the ledger keeps what was written
    seen = sorted((w.id, w.job, w.start_unix_s, w.end_unix_s) for w in ledger.windows())
    assert seen == sorted(written)
    assert Ledger(ledger.path).windows() == ledger.windows()  # a process that parses every line agrees
