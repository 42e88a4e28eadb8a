"""An emulated Kubernetes cluster for the backend's tests, as pytest fixtures.

:class:`FakeCluster` runs kmock's API server with the gaps filled
(:mod:`k8s_apiserver`) on 127.0.0.1 at a random port, and a node agent
(:mod:`k8s_node`) that really runs each pod's command as a local process, in
a private event-loop thread, and writes a kubeconfig for the official
``kubernetes`` client. Load it with ``pytest_plugins = ["k8s_harness"]``.

Fixtures: ``k8s_cluster`` (one per test session), ``k8s_target`` (a fresh
namespace per test, as a :class:`k8s_scenarios.Target`).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import kmock
import pytest
import yaml
from k8s_apiserver import ApiServer, ClusterState, Fault
from k8s_kubelet import Node
from k8s_node import NodeAgent
from k8s_scenarios import Target

Json = dict[str, Any]
T = TypeVar("T")

#: What the emulated cluster serves (kmock answers 404 for anything undeclared).
RESOURCES = {
    "v1/pods": kmock.ResourceInfo(kind="Pod", namespaced=True, subresources={"status", "log"}),
    "v1/events": kmock.ResourceInfo(kind="Event", namespaced=True),
    "v1/configmaps": kmock.ResourceInfo(kind="ConfigMap", namespaced=True),
    "v1/secrets": kmock.ResourceInfo(kind="Secret", namespaced=True),
    "batch/v1/jobs": kmock.ResourceInfo(kind="Job", namespaced=True, subresources={"status"}),
    "graphcore.ai/v1alpha1/ipujobs": kmock.ResourceInfo(kind="IPUJob", namespaced=True, subresources={"status"}),
}


class FakeCluster:
    """kmock + node agent on a background event loop; synchronous methods for tests."""

    def __init__(self, root: Path, node: Node | None = None) -> None:
        self.root = root
        self.state = ClusterState(logs_dir=root / "logs")
        self.node = node or Node()
        self.url = ""
        self.kubeconfig = root / "kubeconfig"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-k8s", daemon=True)
        self._server: ApiServer | None = None
        self._http: kmock.Server | None = None
        self.agent: NodeAgent | None = None

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> FakeCluster:
        self._thread.start()
        self.call(self._start())
        self.write_kubeconfig(self.kubeconfig)
        return self

    async def _start(self) -> None:
        self.state.changed = asyncio.Condition()
        self._server = ApiServer(state=self.state)
        for key, info in RESOURCES.items():
            self._server.resources[key] = info
        await self._server.__aenter__()
        self._http = kmock.Server(self._server)
        await self._http.__aenter__()
        self.url = str(self._http.url).rstrip("/")
        self.agent = NodeAgent(self._server, self.url, self.root / "sandbox", self.node)
        await self.agent.start()

    def stop(self) -> None:
        self.call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _stop(self) -> None:
        assert self.agent is not None and self._http is not None and self._server is not None
        await self.agent.stop()
        await self._http.__aexit__(None, None, None)
        await self._server.__aexit__(None, None, None)

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 15.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    # -- knobs for tests ------------------------------------------------------------------
    def add_namespace(self, name: str) -> None:
        self.state.namespaces.add(name)

    def fail(self, action: str, plural: str, status: int, reason: str, message: str, times: int = 1) -> None:
        """Answer the next ``times`` requests (create/list/watch/fetch/update/delete) with an error."""
        self.state.faults.append(Fault(action, plural, status, reason, message, times))

    def set_quota(self, namespace: str, pods: int | None) -> None:
        if pods is None:
            self.state.quotas.pop(namespace, None)
        else:
            self.state.quotas[namespace] = pods

    def compact(self) -> None:
        self._loop.call_soon_threadsafe(self.state.compact)

    def write_kubeconfig(self, path: Path, token: str | None = None, server: str | None = None) -> Path:
        """A kubeconfig for this cluster; a wrong ``token`` or ``server`` for error tests."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": server or self.url}}],
            "users": [{"name": "tester", "user": {"token": token or self.state.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester", "namespace": "default"}}],
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # -- observation ----------------------------------------------------------------------
    def objects(self, plural: str, namespace: str | None = None) -> list[Json]:
        assert self._server is not None
        server = self._server

        async def snapshot() -> list[Json]:
            return server.current(plural, namespace)

        return self.call(snapshot())

    def processes(self, namespace: str | None = None) -> list[str]:
        """``namespace/pod`` of the containers still running as local processes."""
        assert self.agent is not None
        running = [k for k, p in list(self.agent.processes.items()) if p.returncode is None]
        return [k for k in running if namespace is None or k.startswith(f"{namespace}/")]

    def kill(self, keys: list[str]) -> None:
        assert self.agent is not None and self.agent.kubelet is not None
        for key in keys:
            self.call(self.agent.kubelet.kill(key))

    def requests(self, action: str, plural: str) -> list[dict[str, str]]:
        """Query parameters of the requests served so far with that action on that plural."""
        assert self._server is not None
        return [
            dict(r.params)
            for r in list(self._server)
            if r.action is not None
            and r.action.value.lower() == action
            and r.resource is not None
            and r.resource.plural == plural
        ]


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    cluster = FakeCluster(tmp_path_factory.mktemp("k8s")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def k8s_target(k8s_cluster: FakeCluster, tmp_path: Path) -> Iterator[Target]:
    """A fresh namespace on the emulated cluster; short watches so resumption is exercised."""
    namespace = f"t-{secrets.token_hex(4)}"
    k8s_cluster.add_namespace(namespace)
    yield Target(k8s_cluster.kubeconfig, namespace, tmp_path, options={"watch_timeout_s": 2})
    leaked = k8s_cluster.processes(namespace)
    k8s_cluster.kill(leaked)  # so one failing test does not leave work for the next
    assert not leaked, f"containers still running after the test: {leaked}"
