"""kmock's Kubernetes emulator with the gaps filled that a real API server has.

kmock (PyPI) serves create/get/patch/list/watch/delete over HTTP. What the
backend also relies on, and kmock lacks, is added here (see ../shared/INFRA.md):

* bearer-token authentication (401) and namespaces that must exist (404);
* 404 for undeclared resources on create, 201 Created, uid /
  resourceVersion / creationTimestamp / generateName;
* label selectors (``=``, ``==``, ``!=``, ``k``, ``!k``, ``in``, ``notin``)
  and simple field selectors on list and watch;
* watch resumption: a replayable event history, ``resourceVersion``,
  ``timeoutSeconds``, and ``410 Gone`` after :meth:`ClusterState.compact`;
* pod logs as ``text/plain``, ``GET /version/``;
* a pod-count ResourceQuota (``403 ... exceeded quota``) and injected faults.
"""

from __future__ import annotations

import asyncio
import datetime
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock

Json = dict[str, Any]
Listener = Callable[[str, str, Json], None]
VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-kmock", "platform": "linux/amd64"}
TERMINAL = ("Succeeded", "Failed")


def now_iso() -> str:
    return datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def res_key(resource: Any) -> str:
    """``group/version/plural`` of a kmock resource (``/v1/pods`` for the core group)."""
    return f"{resource.group}/{resource.version}/{resource.plural}"


@dataclass
class Fault:
    """Answer the next ``times`` matching requests with an error Status."""

    action: str
    plural: str
    status: int
    reason: str
    message: str
    times: int = 1


@dataclass
class Event:
    version: int
    resource: str
    namespace: str | None
    type: str
    obj: Json


@dataclass
class ClusterState:
    """What the emulator knows beyond kmock's objects."""

    token: str = field(default_factory=lambda: secrets.token_hex(12))
    logs_dir: Path = Path(".")
    namespaces: set[str] = field(default_factory=lambda: {"default"})
    quotas: dict[str, int] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    history: list[Event] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    version: int = 100
    compacted: int = 0
    changed: asyncio.Condition | None = None

    def next_version(self) -> int:
        self.version += 1
        return self.version

    def compact(self) -> None:
        """Forget history so far: watches resuming from an older version get 410 Gone."""
        self.compacted = self.version

    def take_fault(self, action: str, plural: str | None) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.action == action and fault.plural == plural:
                fault.times -= 1
                return fault
        return None

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        return self.logs_dir / namespace / pod / f"{container}.log"


def error(status: int, reason: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details={"code": status})


# -- selectors --------------------------------------------------------------------
def _terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    return [t for t in [*terms, current.strip()] if t]


def _label_term(term: str, labels: dict[str, str]) -> bool:
    for op in (" notin ", " in "):
        if op in term:
            key, values = term.split(op, 1)
            allowed = {v.strip() for v in values.strip().strip("()").split(",")}
            inside = labels.get(key.strip()) in allowed
            return not inside if op == " notin " else inside
    if "!=" in term:
        key, value = term.split("!=", 1)
        return labels.get(key.strip()) != value.strip()
    if "=" in term:
        key, value = term.replace("==", "=").split("=", 1)
        return labels.get(key.strip()) == value.strip()
    return term[1:] not in labels if term.startswith("!") else term in labels


def _field(obj: Json, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def selects(params: Mapping[str, str], obj: Json) -> bool:
    """Whether ``obj`` matches the request's labelSelector and fieldSelector."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if not all(_label_term(t, labels) for t in _terms(params.get("labelSelector", ""))):
        return False
    for term in _terms(params.get("fieldSelector", "")):
        negate = "!=" in term
        path, value = term.replace("!=", "=").replace("==", "=").split("=", 1)
        if (_field(obj, path.strip()) == value.strip()) == negate:
            return False
    return True


def _action(request: kmock.Request) -> str:
    """kmock's action in lower case: list watch fetch create update delete (or "")."""
    return request.action.value.lower() if request.action else ""


def _resource(request: kmock.Request) -> kmock.resource:
    """The resource of a request that :meth:`ApiServer._handle` routed past its no-resource case."""
    assert request.resource is not None
    return request.resource


def _plural(request: kmock.Request) -> str:
    """The plural of a request naming one object (create, update, delete, watch of one kind)."""
    plural = _resource(request).plural
    assert plural is not None
    return plural


# -- the server ---------------------------------------------------------------------
@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    state: ClusterState = attrs.field(factory=ClusterState)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.state.token}":
            raise error(401, "Unauthorized", "Unauthorized")
        if request.url.path.rstrip("/") == "/version":
            return aiohttp.web.json_response(VERSION)
        if request.resource is None:
            return await super()._handle(request)
        fault = self.state.take_fault(_action(request), request.resource.plural)
        if fault is not None:
            raise error(fault.status, fault.reason, fault.message)
        if request.subresource == "log":
            return self._log(request)
        return await self._change(request)

    async def _change(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        action = _action(request)
        if action == "create":
            self._before_create(request)
        elif action == "update" and isinstance(request.data, dict):
            request.data.setdefault("metadata", {})["resourceVersion"] = str(self.state.next_version())
        response = await super()._handle(request)
        if action in ("create", "update", "delete") and 200 <= response.status < 300:
            await self._record(request, action)
        if action == "create" and response.status == 200:
            response.set_status(201)
        return response

    def _declared(self, resource: Any) -> bool:
        return any(res_key(r) == res_key(resource) for r in list(self.resources))

    def _before_create(self, request: kmock.Request) -> None:
        meta = request.data.setdefault("metadata", {})
        namespace = request.namespace or meta.get("namespace")
        if namespace not in self.state.namespaces:
            raise error(404, "NotFound", f'namespaces "{namespace}" not found')
        if not self._declared(request.resource):
            raise error(404, "NotFound", "the server could not find the requested resource")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)
        if _resource(request).plural == "pods":
            self._check_quota(namespace, meta.get("name", ""))
        meta.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=now_iso())
        meta["resourceVersion"] = str(self.state.next_version())

    def _check_quota(self, namespace: str, name: str) -> None:
        limit = self.state.quotas.get(namespace)
        if limit is None:
            return
        used = sum(1 for pod in self.current("pods", namespace) if pod.get("status", {}).get("phase") not in TERMINAL)
        if used >= limit:
            raise error(
                403,
                "Forbidden",
                f'pods "{name}" is forbidden: exceeded quota: hetero-quota, '
                f"requested: pods=1, used: pods={used}, limited: pods={limit}",
            )

    def current(self, plural: str, namespace: str | None = None) -> list[Json]:
        """Live objects of one plural (any group), optionally in one namespace."""
        found = []
        for (resource, ns, _), obj in list(self.objects.items()):
            if resource.plural == plural and not obj.deleted and namespace in (None, ns):
                found.append(obj.raw)
        return found

    async def _record(self, request: kmock.Request, action: str) -> None:
        name = request.name or request.data["metadata"]["name"]
        namespace = request.namespace or request.data["metadata"].get("namespace")
        stored = self.objects[_resource(request), namespace, name]
        if stored.deleted:
            obj, kind = dict(stored.last.raw), "DELETED"
            obj["metadata"] = {**obj["metadata"], "resourceVersion": str(self.state.next_version())}
        else:
            obj, kind = stored.raw, "ADDED" if action == "create" else "MODIFIED"
        version = int(obj["metadata"].get("resourceVersion") or self.state.version)
        event = Event(version, res_key(request.resource), namespace, kind, obj)
        assert self.state.changed is not None
        async with self.state.changed:
            self.state.history.append(event)
            self.state.changed.notify_all()
        for listener in self.state.listeners:
            listener(kind, _plural(request), obj)

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        result: Json = await super()._serve_list(request)  # type: ignore[assignment]
        items = [item for item in result["items"] if selects(request.params, item)]
        return {
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": str(self.state.version)},
            "items": items,
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        yield b""  # send the headers now, as kmock does
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(request.params.get("timeoutSeconds") or 3600)
        since = request.params.get("resourceVersion") or "0"
        if since != "0" and int(since) < self.state.compacted:
            gone = f"too old resource version: {since} ({self.state.compacted})"
            yield {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": gone}}
            return
        index = 0 if since != "0" else len(self.state.history)
        for initial in self._initial(request, since):
            yield initial
        while True:
            for event in self.state.history[index:]:
                if self._wanted(request, event, since):
                    yield {"type": event.type, "object": event.obj}
            index = len(self.state.history)
            if not await self._wait_change(index, deadline - loop.time()):
                return

    def _initial(self, request: kmock.Request, since: str) -> list[Json]:
        if since != "0":
            return []
        plural = _plural(request)
        objs = [o for o in self.current(plural, request.namespace) if selects(request.params, o)]
        return [{"type": "ADDED", "object": o} for o in objs if self._same_group(request, o)]

    def _same_group(self, request: kmock.Request, obj: Json) -> bool:
        group = _resource(request).group
        return str(obj.get("apiVersion", "")).rpartition("/")[0] == group

    def _wanted(self, request: kmock.Request, event: Event, since: str) -> bool:
        return (
            event.resource == res_key(request.resource)
            and event.version > int(since)
            and request.namespace in (None, event.namespace)
            and selects(request.params, event.obj)
        )

    async def _wait_change(self, index: int, remaining_s: float) -> bool:
        if remaining_s <= 0:
            return False
        assert self.state.changed is not None
        async with self.state.changed:
            try:
                await asyncio.wait_for(
                    self.state.changed.wait_for(lambda: len(self.state.history) > index), remaining_s
                )
            except TimeoutError:
                return False
        return True

    def _log(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        pods = [p for p in self.current("pods", request.namespace) if p["metadata"]["name"] == request.name]
        if not pods:
            raise error(404, "NotFound", f'pods "{request.name}" not found')
        container = request.params.get("container") or pods[0]["spec"]["containers"][0]["name"]
        path = self.state.log_path(str(request.namespace), str(request.name), container)
        if not path.exists():
            raise error(
                400,
                "BadRequest",
                f'container "{container}" in pod "{request.name}" is waiting to start: ContainerCreating',
            )
        return aiohttp.web.Response(body=path.read_bytes(), content_type="text/plain")
