"""A fault-injecting HTTP proxy between the ``kubernetes`` client and the emulated API server.

Every request is forwarded to the upstream server (watch streams chunk by
chunk), unless a :class:`Rule` matches it first: then the proxy answers with
an error status (a Kubernetes ``Status`` body), drops the connection before
forwarding, forwards it but drops the answer (the request took effect, the
client never hears so), or delays it. Rules match on the method, a regular
expression searched in the path, and whether the request is a list, a watch or
names one object; each fires a number of times or for ever. Requests seen are
recorded with what the proxy did to them.

Runs on its own event loop in a daemon thread; :meth:`FaultProxy.kubeconfig`
writes a kubeconfig that reaches the cluster through it.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import yaml
from aiohttp import web

__all__ = ["FaultProxy", "Rule"]

Kind = Literal["list", "watch", "object", "any"]
Action = Literal["status", "drop", "lose_answer", "delay"]
_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class Rule:
    """What to do to the requests it matches; ``times=None``: every one."""

    method: str
    path: str = ""
    kind: Kind = "any"
    action: Action = "status"
    status: int = 500
    delay_s: float = 0.0
    times: int | None = None
    hits: int = field(default=0, init=False)

    def matches(self, method: str, path: str, kind: Kind) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        same_kind = self.kind in ("any", kind)
        return method == self.method and same_kind and re.search(self.path, path) is not None


def _kind(request: web.Request) -> Kind:
    if request.query.get("watch") in ("true", "1"):
        return "watch"
    # /api/v1/namespaces/NS/pods or /apis/batch/v1/namespaces/NS/jobs: a collection; one more segment names an object.
    parts = request.path.strip("/").split("/")
    if "namespaces" in parts and len(parts) - parts.index("namespaces") == 3 and request.method == "GET":
        return "list"
    return "object"


class FaultProxy:
    def __init__(self, upstream: str, add_headers: dict[str, str] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        #: Sent upstream with every request (credentials for a client that sends none over plain HTTP: kubectl).
        self.add_headers = add_headers or {}
        self.rules: list[Rule] = []
        #: (method, path, what happened: "forwarded" or the rule's action).
        self.seen: list[tuple[str, str, str]] = []
        self.url = ""
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="k8s-fault-proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _stop(self) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    def kubeconfig(self, cluster_kubeconfig: Path, path: Path) -> Path:
        """A copy of the cluster's kubeconfig whose server is this proxy."""
        config: dict[str, Any] = yaml.safe_load(cluster_kubeconfig.read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = self.url
        path.write_text(yaml.safe_dump(config))
        return path

    # -- rules ------------------------------------------------------------------------
    def add(self, *rules: Rule) -> None:
        with self._lock:
            self.rules.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def count(self, method: str, path: str, what: str) -> int:
        """How many requests matching ``method`` and ``path`` (a regex) the proxy treated with ``what``."""
        with self._lock:
            return sum(1 for m, p, w in self.seen if m == method and re.search(path, p) and w == what)

    def _match(self, request: web.Request) -> Rule | None:
        kind = _kind(request)
        with self._lock:
            for rule in self.rules:
                if rule.matches(request.method, request.path, kind):
                    rule.hits += 1
                    return rule
        return None

    def _note(self, request: web.Request, what: str) -> None:
        with self._lock:
            self.seen.append((request.method, request.path, what))

    # -- serving ----------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rule = self._match(request)
        self._note(request, rule.action if rule else "forwarded")
        if rule is not None and rule.action == "delay":
            await asyncio.sleep(rule.delay_s)
        elif rule is not None and rule.action == "status":
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": rule.status}
            body |= {"reason": "InjectedFault", "message": f"fault injected by the test proxy ({rule.status})"}
            return web.json_response(body, status=rule.status)
        elif rule is not None and rule.action == "drop":
            return self._drop(request)
        return await self._forward(request, lose_answer=rule is not None and rule.action == "lose_answer")

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()  # the client sees the connection reset, no answer
        return web.Response(status=500)

    async def _forward(self, request: web.Request, lose_answer: bool) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS} | self.add_headers
        body = await request.read()
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body or None
        ) as upstream:
            if lose_answer:
                await upstream.read()  # it took effect upstream; the client never hears so
                return self._drop(request)
            response = web.StreamResponse(status=upstream.status)
            response.headers.update({k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
