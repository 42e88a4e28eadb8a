"""The Kubernetes API as the backend needs it: one client, typed verbs, watches.

* :func:`connect` loads the kube config once per (kubeconfig, context) or
  in-cluster, and returns the client with the context's namespace.
* :class:`ResourceApi` gives one resource kind (pods, jobs, a custom kind)
  the same five verbs, with objects as plain dicts.
* :class:`WatchCache` keeps our objects of one kind in memory: list, then
  watch from the list's ``resourceVersion``; when the server ends the stream
  it resumes from the last version seen, and relists after ``410 Gone``.
* :func:`api_error` turns client errors into stage errors that say what to do.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException
from kubernetes.watch.watch import iter_resp_lines

from pytest_hetero.errors import ConfigError, StageError

__all__ = [
    "TRANSPORT_ERRORS",
    "ResourceApi",
    "WatchCache",
    "api_error",
    "connect",
    "is_quota_error",
    "save_log",
    "warning_events",
    "with_retries",
]

Json = dict[str, Any]
T = TypeVar("T")
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)
_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_CLIENTS: dict[tuple[str, str | None, bool], tuple[k8s.ApiClient, str]] = {}
_CLIENTS_LOCK = threading.Lock()
#: (connect, read) limits of a delete: clean-up after Ctrl-C must not hang on a silent server.
_DELETE_TIMEOUT_S = (5.0, 20.0)
#: Core (v1) kinds the backend handles, and their names in the client's methods.
_CORE = {"pods": "pod", "configmaps": "config_map", "secrets": "secret"}


# -- configuration ------------------------------------------------------------
def connect(kubeconfig: str | None, context: str | None, in_cluster: bool) -> tuple[k8s.ApiClient, str]:
    """The API client and the default namespace, loaded once per process and config."""
    path = os.path.expanduser(kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config")
    use_cluster = in_cluster or (not kubeconfig and not _exists(path) and "KUBERNETES_SERVICE_HOST" in os.environ)
    key = (path, context, use_cluster)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = _load_in_cluster() if use_cluster else _load(path, context)
        return _CLIENTS[key]


def _exists(paths: str) -> bool:
    return any(Path(p).expanduser().exists() for p in paths.split(os.pathsep) if p)


def _load(path: str, context: str | None) -> tuple[k8s.ApiClient, str]:
    try:
        api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, persist_config=False
        )
        contexts, active = k8s_config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot load the kube config {path} (context {context or 'current'}): {exc}; "
            "set KUBECONFIG, or backend.options.kubeconfig / context"
        ) from exc
    chosen = next((c for c in contexts if c.get("name") == context), active) if context else active
    return api, ((chosen or {}).get("context") or {}).get("namespace") or "default"


def _load_in_cluster() -> tuple[k8s.ApiClient, str]:
    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise ConfigError(f"cannot load the in-cluster Kubernetes configuration: {exc}") from exc
    namespace = _IN_CLUSTER_NAMESPACE.read_text().strip() if _IN_CLUSTER_NAMESPACE.exists() else "default"
    return k8s.ApiClient(configuration), namespace


# -- errors ---------------------------------------------------------------------
_HINTS = {
    401: "the credentials were rejected; renew the token or certificate in the kube config",
    403: "the account may not do this; it needs create/get/list/watch/delete/patch on pods and jobs "
    "(and the template's kind) and list on events in the namespace",
    404: "check that the namespace exists and, for a template, that its CustomResourceDefinition is installed",
    409: "an object of that name already exists; delete it (kubectl delete) and run again",
    422: "the API server found the manifest invalid; inspect it with --hetero-dry-run",
}


def api_error(exc: Exception, doing: str, error: type[StageError], job_id: str | None = None) -> StageError:
    """A stage error for ``exc`` raised while ``doing`` something (\"creating pod x\")."""
    if isinstance(exc, k8s.ApiException):
        status = int(exc.status or 0)
        return error(
            f"{doing}: the API server answered {status} {exc.reason}: {status_message(exc)}; {_hint(status, exc)}",
            job_id=job_id,
        )
    if isinstance(exc, pydantic.ValidationError):
        return error(f"{doing}: the kubernetes client rejected the manifest: {exc}", job_id=job_id)
    return error(
        f"{doing}: cannot reach the Kubernetes API server ({_root_cause(exc)}); "
        "check KUBECONFIG / the context and that the cluster is up",
        job_id=job_id,
    )


def _hint(status: int, exc: k8s.ApiException) -> str:
    if is_quota_error(exc):
        return "the namespace's ResourceQuota is used up; wait, ask for fewer resources, or raise the quota"
    if status >= 500:
        return "the API server failed; try again later"
    return _HINTS.get(status, "see the message above")


def status_message(exc: k8s.ApiException) -> str:
    """The ``message`` of the Status the server sent, else its raw body."""
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return str(exc.body or exc.reason or "").strip()[:500]
    return str(body.get("message", "")) if isinstance(body, dict) else str(body)[:500]


def is_quota_error(exc: Exception) -> bool:
    return isinstance(exc, k8s.ApiException) and exc.status == 403 and "exceeded quota" in status_message(exc)


def _root_cause(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if isinstance(reason, BaseException) else exc)


# -- verbs ----------------------------------------------------------------------
@dataclass(frozen=True)
class ResourceApi:
    """create/list/delete/patch/logs for one resource kind in one namespace, on dicts."""

    plural: str
    namespace: str
    api: k8s.ApiClient
    group: str = ""
    version: str = "v1"

    def _call(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        """A core or batch verb: ``create`` -> ``create_namespaced_pod``, ``_config_map`` or ``_job``."""
        api: Any = k8s.CoreV1Api(self.api) if self.plural in _CORE else k8s.BatchV1Api(self.api)
        return getattr(api, f"{verb}_namespaced_{_CORE.get(self.plural, self.plural[:-1])}")(*args, **kwargs)

    def create(self, body: Json) -> Json:
        if self.group:
            created = k8s.CustomObjectsApi(self.api).create_namespaced_custom_object(
                self.group, self.version, self.namespace, self.plural, body
            )
            return dict(created) if isinstance(created, dict) else body  # some servers answer 200, not 201
        created = self._call("create", self.namespace, body)
        return dict(self.api.sanitize_for_serialization(created))  # type: ignore[no-untyped-call]

    def query(self, **params: Any) -> Any:
        """The raw (streamable) response of a list or watch request."""
        if self.group:
            return k8s.CustomObjectsApi(self.api).list_namespaced_custom_object(
                self.group, self.version, self.namespace, self.plural, _preload_content=False, **params
            )
        return self._call("list", self.namespace, _preload_content=False, **params)

    def items(self, selector: str) -> list[Json]:
        response = self.query(label_selector=selector)
        return list(json.loads(response.data).get("items", []))

    def delete(self, name: str) -> None:
        """Delete ``name`` and let the garbage collector take its pods; gone already is fine."""
        try:
            if self.group:
                k8s.CustomObjectsApi(self.api).delete_namespaced_custom_object(
                    self.group,
                    self.version,
                    self.namespace,
                    self.plural,
                    name,
                    propagation_policy="Background",
                    _request_timeout=_DELETE_TIMEOUT_S,
                )
            else:
                self._call(
                    "delete", name, self.namespace, propagation_policy="Background", _request_timeout=_DELETE_TIMEOUT_S
                )
        except k8s.ApiException as exc:
            if exc.status != 404:
                raise

    def label(self, name: str, labels: dict[str, str]) -> None:
        body = {"metadata": {"labels": labels}}
        if self.group:
            k8s.CustomObjectsApi(self.api).patch_namespaced_custom_object(
                self.group, self.version, self.namespace, self.plural, name, body
            )
        else:
            self._call("patch", name, self.namespace, body)


def save_log(api: k8s.ApiClient, namespace: str, pod: str, container: str, path: Path) -> bool:
    """Stream one container's log into ``path``; False when it never started."""
    try:
        response: Any = k8s.CoreV1Api(api).read_namespaced_pod_log(
            pod, namespace, container=container, _preload_content=False, _request_timeout=(10, 120)
        )
    except k8s.ApiException as exc:
        if exc.status in (400, 404):  # waiting to start, or gone: no log to keep
            return False
        raise
    with open(path, "wb") as out:
        for chunk in response.stream(1 << 16):
            out.write(chunk)
    response.release_conn()
    return True


def warning_events(api: k8s.ApiClient, namespace: str, name: str) -> list[str]:
    """``reason: message`` of the Warning events about object ``name``, oldest first."""
    response: Any = k8s.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}", _preload_content=False
    )
    events = json.loads(response.data).get("items", [])
    return [f"{e.get('reason')}: {e.get('message')}" for e in events if e.get("type") == "Warning"]


# -- watches --------------------------------------------------------------------
class WatchCache:
    """Our objects of one kind, kept current by a background list + watch."""

    def __init__(
        self, resource: ResourceApi, selector: str, timeout_s: int, changed: threading.Event | None = None
    ) -> None:
        self.resource, self.selector, self.timeout_s = resource, selector, timeout_s
        self.changed = changed or threading.Event()  # set on every change seen: wakes a waiting poll loop
        self.error: Exception | None = None
        self.failing_since: float | None = None
        self._objects: dict[str, Json] = {}
        self._deleted: set[str] = set()
        self._seeded: set[str] = set()  # created by us, not yet reported by the server
        self._version: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        name = f"hetero-watch-{resource.plural}-{resource.namespace}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def get(self, name: str) -> Json | None:
        with self._lock:
            return self._objects.get(name)

    def was_deleted(self, name: str) -> bool:
        with self._lock:
            return name in self._deleted

    def matching(self, label: str, value: str) -> list[Json]:
        with self._lock:
            return [o for o in self._objects.values() if (o["metadata"].get("labels") or {}).get(label) == value]

    def seed(self, obj: Json) -> None:
        """Remember a just-created object until the watch reports it."""
        with self._lock:
            if obj["metadata"]["name"] not in self._objects:
                self._objects[obj["metadata"]["name"]] = obj
                self._seeded.add(obj["metadata"]["name"])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=0.2)  # a daemon blocked on a quiet stream ends with it

    def _run(self) -> None:
        backoff_s = 0.2
        while not self._stop.is_set():
            try:
                if self._version is None:
                    self._relist()
                self._follow()
                backoff_s = 0.2
                continue
            except k8s.ApiException as exc:
                if exc.status == 410:  # our version was compacted away: start over
                    self._version = None
                    continue
                self._failed(exc)
            except (*TRANSPORT_ERRORS, ValueError) as exc:
                self._failed(exc)
            self._stop.wait(backoff_s)
            backoff_s = min(backoff_s * 2, 10.0)

    def _failed(self, exc: Exception) -> None:
        self.error = exc
        self.failing_since = self.failing_since or time.monotonic()

    def _healthy(self) -> None:
        self.error = self.failing_since = None

    def _relist(self) -> None:
        listing = json.loads(self.resource.query(label_selector=self.selector).data)
        with self._lock:
            fresh = {item["metadata"]["name"]: item for item in listing.get("items", [])}
            # A listing may predate an object we just created: the watch will report it.
            self._seeded -= set(fresh)
            self._deleted |= set(self._objects) - set(fresh) - self._seeded
            self._objects = {**{n: self._objects[n] for n in self._seeded}, **fresh}
        self.changed.set()
        self._version = str(listing.get("metadata", {}).get("resourceVersion") or "") or None
        self._healthy()

    def _follow(self) -> None:
        response = self.resource.query(
            label_selector=self.selector,
            watch=True,
            resource_version=self._version,
            timeout_seconds=self.timeout_s,
            allow_watch_bookmarks=True,
            _request_timeout=(10, self.timeout_s + 15),
        )
        self._healthy()  # the server answered; a quiet stream is not an outage
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if self._stop.is_set():
                    return
                if line:
                    self._apply(json.loads(line))
        finally:
            response.release_conn()

    def _apply(self, event: Json) -> None:
        obj, kind = event.get("object") or {}, event.get("type")
        if kind == "ERROR":
            raise k8s.ApiException(status=int(obj.get("code", 500)), reason=obj.get("message", "watch error"))
        self._healthy()
        self._version = obj.get("metadata", {}).get("resourceVersion") or self._version
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._store(kind, obj)

    def _store(self, kind: str, obj: Json) -> None:
        name = obj["metadata"]["name"]
        with self._lock:
            self._seeded.discard(name)
            if kind == "DELETED":
                self._objects.pop(name, None)
                self._deleted.add(name)
            else:
                self._objects[name] = obj
                self._deleted.discard(name)
        self.changed.set()


def wait_for_change(changed: threading.Event, timeout_s: float) -> float:
    """Wait until a watch sees a change (or ``timeout_s`` passes); 0.0: the loop's next poll is due now.

    A change that comes between the wait and the clear is read by that poll, which follows at once.
    """
    if changed.wait(timeout_s):
        changed.clear()
    return 0.0


def with_retries(call: Callable[[], T], attempts: int = 3) -> T:
    """``call()``, again after 5xx answers and connection failures; 409 on a retry means it got through."""
    for attempt in range(attempts):
        try:
            return call()
        except k8s.ApiException as exc:
            if attempt == attempts - 1 or int(exc.status or 0) < 500:
                raise
        except TRANSPORT_ERRORS:
            if attempt == attempts - 1:
                raise
        time.sleep(0.25 * 2**attempt)
    raise AssertionError("unreachable")
