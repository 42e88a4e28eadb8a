"""Identifiers of jobs and windows: fixed length, unique within a process and across processes."""

from __future__ import annotations

import os

import pytest

from pytest_hetero.ids import new_id


def test_identifiers_have_a_fixed_length_and_never_repeat() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert {len(i) for i in ids} == {24}
    assert all(int(i, 16) >= 0 for i in ids[:10])  # hex
    short = [new_id(16) for _ in range(100)]
    assert {len(i) for i in short} == {16}
    assert not any(a != b and b.startswith(a) for a in short[:10] for b in short)  # no marker is another's prefix


@pytest.mark.parametrize("length", [8, 15, 25])
def test_a_length_outside_16_to_24_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="16 to 24"):
        new_id(length)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_its_own_identifiers() -> None:
    before = new_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next identifier and leave at once
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent_next = new_id()
    assert child[:16] != before[:16]  # another prefix: the counters may meet, the identifiers do not
    assert child != parent_next
