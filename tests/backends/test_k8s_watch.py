"""The watch cache of the kubernetes backend, against a scripted API (no server).

Each answer the fake API gives is scripted; the tests check what the cache
believes afterwards and which requests it made: list first, then watches
resumed from the last resourceVersion, a relist after 410 Gone, errors kept
until the server answers again, and objects we just created never mistaken
for deleted ones by a listing that predates them.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from pytest_hetero.backends.k8s_client import WatchCache, wait_for_change

Json = dict[str, Any]


def obj(name: str, version: int) -> Json:
    return {"metadata": {"name": name, "resourceVersion": str(version)}}


class Stream:
    """A watch response: JSON lines, then the end of the stream."""

    def __init__(self, events: list[Json]) -> None:
        self.body = b"".join(json.dumps(e).encode() + b"\n" for e in events)

    def stream(self, amt: int | None = None, decode_content: bool = False) -> Iterator[bytes]:
        yield self.body

    def release_conn(self) -> None:
        pass


class Listing:
    def __init__(self, items: list[Json], version: int) -> None:
        self.data = json.dumps({"metadata": {"resourceVersion": str(version)}, "items": items}).encode()


class ScriptedApi:
    """Answers requests from a script; once it runs out, blocks until released."""

    plural, namespace = "jobs", "ns"

    def __init__(self, *answers: Any) -> None:
        self.answers: queue.Queue[Any] = queue.Queue()
        for answer in answers:
            self.answers.put(answer)
        self.requests: list[dict[str, Any]] = []
        self.released = threading.Event()

    def query(self, **params: Any) -> Any:
        self.requests.append(params)
        try:
            answer = self.answers.get(timeout=0.01)
        except queue.Empty:
            self.released.wait(5)
            return Stream([])
        if isinstance(answer, Exception):
            raise answer
        return answer

    def settled(self, count: int) -> None:
        deadline = time.monotonic() + 5
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)


@pytest.fixture
def run_cache() -> Iterator[Any]:
    caches: list[tuple[WatchCache, ScriptedApi]] = []

    def start(api: ScriptedApi) -> WatchCache:
        cache = WatchCache(api, "pytest-hetero/run-id=r", timeout_s=5)  # type: ignore[arg-type]
        caches.append((cache, api))
        return cache

    yield start
    for cache, api in caches:
        api.released.set()
        cache.stop()


def test_list_then_watch_from_its_version_then_resume_from_the_last_event(run_cache: Any) -> None:
    api = ScriptedApi(
        Listing([obj("a", 5)], 7),
        Stream([{"type": "MODIFIED", "object": obj("a", 9)}, {"type": "ADDED", "object": obj("b", 10)}]),
        Stream([{"type": "DELETED", "object": obj("a", 12)}]),
    )
    cache = run_cache(api)
    api.settled(4)
    assert [r.get("resource_version") for r in api.requests[:4]] == [None, "7", "10", "12"]
    assert cache.get("a") is None and cache.was_deleted("a")
    assert cache.get("b") == obj("b", 10)
    assert all(r["label_selector"] == "pytest-hetero/run-id=r" for r in api.requests)


def test_gone_means_list_again(run_cache: Any) -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}}
    api = ScriptedApi(Listing([], 3), Stream([gone]), Listing([obj("c", 20)], 21))
    cache = run_cache(api)
    api.settled(4)
    assert [("watch" in r, r.get("resource_version")) for r in api.requests[:4]] == [
        (False, None),
        (True, "3"),
        (False, None),
        (True, "21"),
    ]
    assert cache.get("c") == obj("c", 20) and cache.error is None


def test_an_error_is_kept_until_the_server_answers_again(run_cache: Any) -> None:
    api = ScriptedApi(k8s.ApiException(status=403, reason="Forbidden"))
    cache = run_cache(api)
    api.settled(1)
    assert isinstance(cache.error, k8s.ApiException) and cache.error.status == 403
    assert cache.failing_since is not None
    api.answers.put(Listing([], 1))
    api.settled(3)
    assert cache.error is None and cache.failing_since is None


def test_a_listing_older_than_our_create_does_not_make_it_deleted(run_cache: Any) -> None:
    listed = threading.Event()

    class SlowListing(ScriptedApi):
        def query(self, **params: Any) -> Any:
            if not self.requests:
                listed.wait(5)  # the listing is answered after our create
            return super().query(**params)

    api = SlowListing(Listing([], 1))  # then a quiet watch: the object's ADDED event is still on its way
    cache = run_cache(api)
    cache.seed(obj("new", 2))
    listed.set()
    api.settled(2)
    assert not cache.was_deleted("new")
    assert cache.get("new") == obj("new", 2)


def test_a_change_the_watch_sees_wakes_the_wait_loop_through_the_shared_event() -> None:
    changed = threading.Event()
    api = ScriptedApi(Listing([], 3), Stream([{"type": "ADDED", "object": obj("d", 4)}]))
    cache = WatchCache(api, "pytest-hetero/run-id=r", timeout_s=5, changed=changed)  # type: ignore[arg-type]
    try:
        api.settled(3)  # list, the watch with its event, then the next watch (blocked)
        assert cache.get("d") == obj("d", 4)
        assert changed.is_set()  # the listing and the event set it; nothing has cleared it
        assert wait_for_change(changed, 5.0) == 0.0  # set: no wait, and the next poll is due now
        assert not changed.is_set()  # cleared, so the next wait waits for the next change
        assert wait_for_change(changed, 0.01) == 0.0 and not changed.is_set()  # no change: waited its time
    finally:
        api.released.set()
        cache.stop()
