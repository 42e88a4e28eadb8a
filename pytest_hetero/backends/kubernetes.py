"""The Kubernetes backend: each job a Pod, a ``batch/v1`` Job, or a custom resource.

Objects are created with the official ``kubernetes`` client, configured once
per kubeconfig and context (or in-cluster). Status comes from one background
watch per resource kind and run (:class:`~pytest_hetero.backends.k8s_client.WatchCache`):
:meth:`KubernetesBackend.status` only reads that cache, so one pytest process
follows hundreds of jobs without polling the API server. When a job ends its
logs are saved to the work directory (``stdout.log``: the ``main`` container;
``stderr.log``: Kubernetes' account of the job) and the object is deleted,
unless it failed and ``keep_failed`` is set. :meth:`KubernetesBackend.close`
deletes whatever this process still has labelled with the run id.

Client errors become stage errors at this boundary: creating is ``launch``,
watching ``wait``, reading logs ``collect``, deleting ``teardown``.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pydantic
import yaml
from kubernetes import client as k8s

from pytest_hetero.backends.base import Backend, JobHandle, JobOutput, JobSpec, JobState
from pytest_hetero.backends.k8s_client import (
    TRANSPORT_ERRORS,
    ResourceApi,
    WatchCache,
    api_error,
    connect,
    is_quota_error,
    save_log,
    status_message,
    warning_events,
)
from pytest_hetero.backends.k8s_manifest import (
    CONTAINER,
    LABEL_JOB,
    LABEL_KEEP,
    LABEL_RUN_ID,
    LABEL_SESSION,
    Identity,
    build_manifest,
    label_value,
    object_name,
    platform_problems,
)
from pytest_hetero.backends.k8s_options import OPTIONS_SCHEMA, K8sOptions
from pytest_hetero.backends.k8s_status import account, exit_code, main_pod, state_of
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import CollectError, ConfigError, JobFailedError, StageError, SubmitError, TeardownError
from pytest_hetero.redact import REDACTED, is_secret_name

__all__ = ["KubernetesBackend", "KubernetesJobHandle"]

Json = dict[str, Any]
T = TypeVar("T")
_CLIENT_ERRORS = (k8s.ApiException, pydantic.ValidationError, *TRANSPORT_ERRORS)
_FATAL_WATCH_STATUSES = (401, 403, 404)
_API_LOST_S = 120.0
_QUOTA_RETRY_S = 2.0
_CREATE_ATTEMPTS = 3


class KubernetesJobHandle(JobHandle):
    """A handle whose deadline counts from the workload's start, not its submission.

    A job may wait in the cluster's queue for a long time; the pending timeout
    bounds that wait, the time limit bounds the run.
    """

    @property
    def deadline(self) -> float:
        started = self.data.get("started")
        if started is None:
            return self.submitted_at + float(self.data["pending_timeout_s"]) + self.spec.timeout_s + 30.0
        return float(started) + self.spec.timeout_s + 30.0


class KubernetesBackend(Backend):
    name = "kubernetes"
    options_schema: ClassVar[dict[str, Any]] = OPTIONS_SCHEMA
    poll_initial_s: ClassVar[float] = 0.05  # status() reads a local cache: cheap

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.options = K8sOptions.parse(platform.backend.options)
        problems = platform_problems(platform)
        if problems:
            raise ConfigError(f"platform {platform.name!r} ({platform.source}): " + "; ".join(problems))
        self.session_id = uuid.uuid4().hex[:12]
        self._fallback_run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{self.session_id[:6]}"
        self._template = _load_template(self.options.template, platform.source)
        self._api: k8s.ApiClient | None = None
        self._namespace = self.options.namespace or ""
        self._watches: dict[tuple[str, str], WatchCache] = {}
        self._run_ids: set[str] = set()

    # -- connection and resources ---------------------------------------------
    @property
    def primary(self) -> str:
        """Plural of the objects this backend creates: pods, jobs, or the template's kind."""
        if self._template is not None:
            return self.options.template_plural or f"{str(self._template['kind']).lower()}s"
        return "pods" if self.options.kind == "pod" else "jobs"

    def _connect(self) -> k8s.ApiClient:
        if self._api is None:
            options = self.options
            self._api, context_namespace = connect(options.kubeconfig, options.context, options.in_cluster)
            self._namespace = self.options.namespace or context_namespace
        return self._api

    def _resource(self, plural: str) -> ResourceApi:
        api = self._connect()
        if plural != self.primary or self._template is None:
            return ResourceApi(plural, self._namespace, api)
        group, _, version = str(self._template["apiVersion"]).rpartition("/")
        return ResourceApi(plural, self._namespace, api, group=group, version=version)

    def _watch(self, plural: str, run_id: str) -> WatchCache:
        key = (plural, run_id)
        if key not in self._watches:
            selector = f"{LABEL_RUN_ID}={label_value(run_id)},{LABEL_SESSION}={self.session_id}"
            self._watches[key] = WatchCache(self._resource(plural), selector, self.options.watch_timeout_s)
        return self._watches[key]

    def _manifest(self, spec: JobSpec, name: str, namespace: str) -> Json:
        ident = Identity(name, namespace, self._run_id(spec), self.session_id, platform=self.platform.name)
        return build_manifest(self.platform, spec, ident, self._template)

    def _run_id(self, spec: JobSpec) -> str:
        return spec.env.get("HETERO_RUN_ID") or self._fallback_run_id

    # -- submit ---------------------------------------------------------------
    def submit(self, spec: JobSpec) -> JobHandle:
        self._connect()
        name = object_name(spec.name, uuid.uuid4().hex[:6])
        handle = KubernetesJobHandle(job_id=f"{self._namespace}/{name}", spec=spec)
        run_id = self._run_id(spec)
        handle.data.update(name=name, run_id=run_id, pending_timeout_s=self.options.pending_timeout_s)
        handle.data["manifest"] = self._manifest(spec, name, self._namespace)
        spec.workdir.mkdir(parents=True, exist_ok=True)
        for plural in {self.primary, "pods"}:
            self._watch(plural, run_id)
        self._create(handle)
        self._run_ids.add(run_id)  # close() cleans up after it
        return handle

    def _create(self, handle: JobHandle) -> None:
        """Create the object; a full quota leaves it pending, to be retried by status()."""
        manifest = handle.data["manifest"]
        try:
            created = _with_retries(lambda: self._resource(self.primary).create(manifest))
        except k8s.ApiException as exc:
            if not is_quota_error(exc):
                raise self._create_error(handle, exc) from exc
            handle.data.update(pending_reason=status_message(exc), retry_at=time.monotonic() + _QUOTA_RETRY_S)
            return
        except _CLIENT_ERRORS as exc:
            raise self._create_error(handle, exc) from exc
        del handle.data["manifest"]
        self._watch(self.primary, handle.data["run_id"]).seed(created if created.get("metadata") else manifest)

    def _create_error(self, handle: JobHandle, exc: Exception) -> StageError:
        doing = f"creating {self.primary[:-1]} {handle.data['name']} in namespace {self._namespace}"
        return api_error(exc, doing, SubmitError, handle.job_id)

    # -- status ---------------------------------------------------------------
    def status(self, handle: JobHandle) -> JobState:
        final: JobState | None = handle.data.get("final")
        if final is not None:
            return final
        state, reason = self._observe(handle)
        if state is JobState.PENDING:
            self._check_pending(handle, reason)
        elif state is JobState.RUNNING:
            handle.data.setdefault("started", time.monotonic())
        elif state.finished:
            self._settle(handle, state, reason)
        return state

    def pending_reason(self, handle: JobHandle) -> str:
        """Why the job has not started ("" once it has, or while nobody says), for progress displays."""
        if handle.data.get("final") is not None:
            return ""
        state, reason = self._observe(handle)
        return reason if state is JobState.PENDING else ""

    def _observe(self, handle: JobHandle) -> tuple[JobState, str]:
        if "manifest" in handle.data and time.monotonic() >= handle.data["retry_at"]:
            self._create(handle)
        if "manifest" in handle.data:
            return JobState.PENDING, str(handle.data["pending_reason"])
        self._raise_for_watches(handle)
        name, cache = handle.data["name"], self._watch(self.primary, handle.data["run_id"])
        obj = cache.get(name)
        if obj is None:
            gone = cache.was_deleted(name)
            return (JobState.CANCELLED, "deleted by someone else") if gone else (JobState.PENDING, "")
        pods = [obj] if self.primary == "pods" else self._watch("pods", handle.data["run_id"]).matching(LABEL_JOB, name)
        return state_of(self.primary, obj, pods)

    def _raise_for_watches(self, handle: JobHandle) -> None:
        for plural in sorted({self.primary, "pods"}):
            cache = self._watch(plural, handle.data["run_id"])
            error, since = cache.error, cache.failing_since
            fatal = isinstance(error, k8s.ApiException) and error.status in _FATAL_WATCH_STATUSES
            if error is not None and (fatal or (since is not None and time.monotonic() - since > _API_LOST_S)):
                doing = f"watching {plural} in namespace {self._namespace}"
                raise api_error(error, doing, JobFailedError, handle.job_id)

    def _check_pending(self, handle: JobHandle, reason: str) -> None:
        waited_s = time.monotonic() - handle.submitted_at
        if waited_s <= self.options.pending_timeout_s:
            return
        reason = reason or self._event_reason(handle) or "Kubernetes reported no reason"
        handle.spec.stderr_path.write_text(f"kubernetes: {handle.data['name']}: still pending ({reason})\n")
        if "manifest" not in handle.data:
            self._dispose(handle, failed=True)
        handle.data.update(final=JobState.FAILED, ended=time.monotonic())
        raise JobFailedError(
            f"the job was still pending {self.options.pending_timeout_s:g} s after submission "
            f"(backend.options.pending_timeout_s): {reason}",
            job_id=handle.job_id,
        )

    def _event_reason(self, handle: JobHandle) -> str:
        try:
            events = warning_events(self._connect(), self._namespace, handle.data["name"])
        except _CLIENT_ERRORS:
            return ""  # the reason is a courtesy; the timeout stands without it
        return events[-1] if events else ""

    # -- finishing --------------------------------------------------------------
    def _settle(self, handle: JobHandle, state: JobState, reason: str) -> None:
        """Save logs and Kubernetes' account, then delete (or keep) the object."""
        name = handle.data["name"]
        try:
            pods = self._resource("pods").items(f"{LABEL_JOB}={name}")
        except _CLIENT_ERRORS as exc:
            raise api_error(exc, f"listing the pods of {name}", CollectError, handle.job_id) from exc
        main = main_pod(pods)
        artifacts = self._save_logs(handle, pods, main)
        obj = self._watch(self.primary, handle.data["run_id"]).get(name)
        handle.spec.stderr_path.write_text(account(self.primary[:-1], obj, pods, state, reason))
        self._dispose(handle, failed=state is not JobState.COMPLETED)
        handle.data.update(final=state, exit_code=exit_code(main), ended=time.monotonic(), artifacts=artifacts)

    def _save_logs(self, handle: JobHandle, pods: list[Json], main: Json | None) -> dict[str, str]:
        artifacts: dict[str, str] = {}
        handle.spec.stdout_path.touch()
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            for container in _container_names(pod):
                is_main = pod is main and container == CONTAINER
                path = handle.spec.stdout_path if is_main else handle.spec.workdir / f"{pod_name}.{container}.log"
                try:
                    saved = save_log(self._connect(), self._namespace, pod_name, container, path)
                except _CLIENT_ERRORS as exc:
                    doing = f"reading the log of {pod_name}/{container}"
                    raise api_error(exc, doing, CollectError, handle.job_id) from exc
                if saved and not is_main:
                    artifacts[f"log:{pod_name}/{container}"] = str(path)
        return artifacts

    def _dispose(self, handle: JobHandle, failed: bool) -> None:
        name, resource = handle.data["name"], self._resource(self.primary)
        try:
            if failed and self.options.keep_failed:
                resource.label(name, {LABEL_KEEP: "true"})
            else:
                resource.delete(name)
        except _CLIENT_ERRORS as exc:
            raise api_error(exc, f"deleting {self.primary[:-1]} {name}", TeardownError, handle.job_id) from exc

    def cancel(self, handle: JobHandle) -> None:
        if handle.data.get("final") is not None:
            return
        handle.data.update(final=JobState.CANCELLED, ended=time.monotonic())
        if "manifest" not in handle.data:
            self._dispose(handle, failed=False)

    def collect(self, handle: JobHandle) -> JobOutput:
        started = handle.data.get("started", handle.submitted_at)
        return JobOutput(
            job_id=handle.job_id,
            state=handle.data.get("final", JobState.UNKNOWN),
            exit_code=handle.data.get("exit_code"),
            stdout_path=handle.spec.stdout_path,
            stderr_path=handle.spec.stderr_path,
            elapsed_s=handle.data.get("ended", time.monotonic()) - started,
            artifacts=handle.data.get("artifacts", {}),
        )

    # -- session end and dry run -------------------------------------------------
    def close(self) -> None:
        """Stop the watches; delete every object of this process's runs not kept on purpose."""
        for cache in self._watches.values():
            cache.stop()
        self._watches.clear()
        for run_id in sorted(self._run_ids):
            self._delete_run(run_id)
        self._run_ids.clear()

    def _delete_run(self, run_id: str) -> None:
        selector = f"{LABEL_RUN_ID}={label_value(run_id)},{LABEL_SESSION}={self.session_id},{LABEL_KEEP}!=true"
        resource = self._resource(self.primary)
        try:
            for item in resource.items(selector):
                resource.delete(item["metadata"]["name"])
        except _CLIENT_ERRORS as exc:
            error = api_error(exc, f"deleting the {self.primary} of run {run_id}", TeardownError)
            hint = f"kubectl delete {self.primary} -n {self._namespace} -l '{selector}'"
            warnings.warn(f"{error}; delete them with: {hint}", stacklevel=2)

    def render(self, spec: JobSpec) -> str:
        if not self._namespace:
            try:
                self._connect()  # reads the kube config for its namespace; no request is sent
            except ConfigError:
                self._namespace = "default"  # a dry run needs no cluster
        manifest = self._manifest(spec, object_name(spec.name, "dryrun"), self._namespace)
        return yaml.safe_dump(_redacted(manifest), sort_keys=False)


def _with_retries(call: Callable[[], T]) -> T:
    """``call()``, again after 5xx answers and connection failures; 409 on a retry means it got through."""
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            return call()
        except k8s.ApiException as exc:
            if attempt == _CREATE_ATTEMPTS - 1 or int(exc.status or 0) < 500:
                raise
        except TRANSPORT_ERRORS:
            if attempt == _CREATE_ATTEMPTS - 1:
                raise
        time.sleep(0.25 * 2**attempt)
    raise AssertionError("unreachable")


def _container_names(pod: Json) -> list[str]:
    spec = pod.get("spec") or {}
    return [c["name"] for c in [*spec.get("initContainers", []), *spec.get("containers", [])]]


def _load_template(template: str | Mapping[str, Any] | None, source: str) -> Json | None:
    if template is None or isinstance(template, Mapping):
        return dict(template) if template is not None else None
    path = Path(template).expanduser()
    if not path.is_absolute() and not source.startswith("<"):  # relative to the catalogue file
        path = Path(source).parent / path
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"backend.options.template: cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not {"apiVersion", "kind"} <= data.keys():
        raise ConfigError(f"backend.options.template: {path} must be one mapping with apiVersion and kind")
    return data


def _redacted(node: Any) -> Any:
    """The manifest with secret-looking environment values replaced, for printing."""
    if isinstance(node, list):
        return [_redacted(item) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"name", "value"} and is_secret_name(str(node["name"])):
        return {"name": node["name"], "value": REDACTED}
    return {key: _redacted(value) for key, value in node.items()}
