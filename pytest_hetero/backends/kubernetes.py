"""The Kubernetes backend: each job a Pod, a ``batch/v1`` Job, or a custom resource.

Objects are created with the official ``kubernetes`` client, configured once
per kubeconfig and context (or in-cluster). Status comes from one background
watch per resource kind and run (:class:`~pytest_hetero.backends.k8s_client.WatchCache`):
:meth:`KubernetesBackend.status` only reads that cache, so one pytest process
follows hundreds of jobs without polling the API server. When a job ends its
logs are saved to the work directory (``stdout.log``: the ``main`` container;
``stderr.log``: Kubernetes' account of the job) and the object is deleted,
unless it failed and ``keep_failed`` is set; secret values reach the job
through a Secret object created with it (:mod:`.k8s_secrets`). Every object is deleted by its
name (:mod:`.k8s_cleanup`), never through a listing, so a failing list or
watch cannot leave one behind; :meth:`KubernetesBackend.close` retries what
could not be deleted, and :meth:`KubernetesBackend.leftovers` says what is
still there, with the ``kubectl`` command that deletes it.

Client errors become stage errors at this boundary: creating is ``launch``,
watching ``wait``, reading logs ``collect``, deleting ``teardown``.

A Pod or Job runs on one node. With a template (a Kubeflow ``PyTorchJob``,
...) the operator starts one replica per node and tells each where the
master is (``MASTER_ADDR``); :meth:`KubernetesBackend.launch_context` hands
that rendezvous to the launcher, so torchrun renders a multi-node command.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pydantic
import yaml
from kubernetes import client as k8s

from pytest_hetero.backends.base import Backend, JobHandle, JobOutput, JobSpec, JobState, narrow_handle
from pytest_hetero.backends.k8s_bundle import ConfigMaps
from pytest_hetero.backends.k8s_cleanup import Cleanup
from pytest_hetero.backends.k8s_client import (
    TRANSPORT_ERRORS,
    ResourceApi,
    WatchCache,
    api_error,
    connect,
    is_quota_error,
    status_message,
    wait_for_change,
    warning_events,
    with_retries,
)
from pytest_hetero.backends.k8s_logs import finished_pods, save_logs
from pytest_hetero.backends.k8s_manifest import (
    CONTAINER,
    LABEL_JOB,
    LABEL_KEEP,
    LABEL_RUN_ID,
    LABEL_SESSION,
    Identity,
    build_manifest,
    label_value,
    load_template,
    object_name,
    platform_problems,
    redacted,
)
from pytest_hetero.backends.k8s_options import OPTIONS_SCHEMA, K8sOptions
from pytest_hetero.backends.k8s_secrets import create_secret, described, secret_manifest
from pytest_hetero.backends.k8s_status import account, exit_code, main_pod, state_of
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import ConfigError, JobFailedError, StageError, SubmitError, TeardownError
from pytest_hetero.launchers.base import LaunchContext, Rendezvous

__all__ = ["KubernetesBackend", "KubernetesJobHandle"]

Json = dict[str, Any]
_CLIENT_ERRORS = (k8s.ApiException, pydantic.ValidationError, *TRANSPORT_ERRORS)
_FATAL_WATCH_STATUSES = (401, 403, 404)
_API_LOST_S = 120.0
_QUOTA_RETRY_S = 2.0


@dataclass(kw_only=True)
class KubernetesJobHandle(JobHandle):
    """An object this process created; its deadline counts from the workload's start, not its submission.

    A job may wait in the cluster's queue for a long time; the pending timeout
    bounds that wait, the time limit bounds the run.
    """

    name: str
    run_id: str
    pending_timeout_s: float
    #: The object still to create: a full quota defers creation (``status`` retries at ``retry_at``).
    manifest: Json | None = None
    #: The job's Secret (its secret env values), to create before the object; its name once created.
    secret: Json | None = None
    secret_name: str = ""
    deferred_reason: str = ""
    retry_at: float = 0.0
    started_at: float | None = None
    #: Set when the job is over: from Kubernetes' account, by ``cancel``, or by the pending timeout.
    final_state: JobState | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def deadline(self) -> float:
        if self.started_at is None:
            return self.submitted_at + self.pending_timeout_s + self.spec.timeout_s + 30.0
        return self.started_at + self.spec.timeout_s + 30.0


class KubernetesBackend(Backend):
    name = "kubernetes"
    options_schema: ClassVar[dict[str, Any]] = OPTIONS_SCHEMA
    poll_initial_s: ClassVar[float] = 0.05  # status() reads a local cache: cheap
    options: K8sOptions

    def next_poll_s(self, handle: JobHandle | None, interval_s: float) -> float:
        """status() reads the watch cache: the wait ends when a watch sees a change (or at the cadence)."""
        return wait_for_change(self._changed, min(interval_s, self.poll_initial_s))

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.session_id = uuid.uuid4().hex[:12]
        self._fallback_run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{self.session_id[:6]}"
        self._template = load_template(self.options.template, platform.source)
        self._api: k8s.ApiClient | None = None
        self._namespace = self.options.namespace or ""
        self._watches: dict[tuple[str, str], WatchCache] = {}
        self._changed = threading.Event()  # shared by the watches: wakes the wait loop (next_poll_s)
        self._cleanup = Cleanup()
        self._bundles = ConfigMaps()

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any]) -> K8sOptions:
        return K8sOptions.parse(raw)

    @classmethod
    def platform_problems(cls, platform: Platform) -> list[str]:
        """What keeps ``platform`` from running on Kubernetes at all (checked at start-up)."""
        return platform_problems(platform, cls.parse_options(platform.backend.options))

    def bundle_root(self, workdir: Path) -> str:
        return self.options.bundle_mount_path  # a ConfigMap (.k8s_bundle)

    def launch_context(self) -> LaunchContext:
        """One node for a Pod or Job; with a template, one replica per node meeting at the operator's master.

        The operator (Kubeflow's PyTorchJob, ...) starts the command on every replica itself
        and sets ``MASTER_ADDR`` to the first one, which is the same on all of them and
        names this job alone: the rendezvous host and id.
        """
        context = super().launch_context()
        if self._template is None:
            return context
        nodes = str(context.nodes)
        rendezvous = Rendezvous(per_node=(), nodes=nodes, job_id="$MASTER_ADDR", host="$MASTER_ADDR")
        return dataclasses.replace(context, rendezvous=rendezvous)

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
            timeout_s = self.options.watch_timeout_s
            self._watches[key] = WatchCache(self._resource(plural), selector, timeout_s, self._changed)
        return self._watches[key]

    def _manifest(self, spec: JobSpec, name: str, namespace: str) -> Json:
        ident = Identity(name, namespace, self._run_id(spec), self.session_id, platform=self.platform.name)
        return build_manifest(self.platform, spec, ident, self._template, options=self.options)

    def _run_id(self, spec: JobSpec) -> str:
        return spec.env.get("HETERO_RUN_ID") or self._fallback_run_id

    # -- submit ---------------------------------------------------------------
    def submit(self, spec: JobSpec) -> KubernetesJobHandle:
        self._connect()
        name = object_name(spec.name, uuid.uuid4().hex[:6])
        run_id = self._run_id(spec)
        job = KubernetesJobHandle(
            job_id=f"{self._namespace}/{name}",
            spec=spec,
            name=name,
            run_id=run_id,
            pending_timeout_s=self.options.pending_timeout_s,
        )
        manifest = self._manifest(spec, name, self._namespace)
        job.secret = secret_manifest(self.platform, spec, name, self._namespace, manifest["metadata"]["labels"])
        spec.workdir.mkdir(parents=True, exist_ok=True)
        self._bundles.ship(spec, self._connect(), self._namespace, manifest["metadata"]["labels"])
        for plural in {self.primary, "pods"}:
            self._watch(plural, run_id)
        self._create(job, manifest)
        return job

    def _create(self, job: KubernetesJobHandle, manifest: Json) -> None:
        """Create the object; a full quota leaves it pending, to be retried by status()."""
        self._cleanup.created(self._resource(self.primary), job.name)  # an answer lost may hide a success
        try:
            if job.secret is not None:  # first: the object's pods read it (registered for deletion too)
                job.secret_name = job.secret["metadata"]["name"]
                create_secret(self._resource("secrets"), self._cleanup, job.secret, job.job_id)
                job.secret = None
            created = with_retries(lambda: self._resource(self.primary).create(manifest))
        except k8s.ApiException as exc:
            if not is_quota_error(exc):
                raise self._create_error(job, exc) from exc
            job.manifest, job.deferred_reason = manifest, status_message(exc)
            job.retry_at = time.monotonic() + _QUOTA_RETRY_S
            return
        except _CLIENT_ERRORS as exc:
            raise self._create_error(job, exc) from exc
        job.manifest = None
        self._watch(self.primary, job.run_id).seed(created if created.get("metadata") else manifest)

    def _create_error(self, job: KubernetesJobHandle, exc: Exception) -> StageError:
        doing = f"creating {self.primary[:-1]} {job.name} in namespace {self._namespace}"
        return api_error(exc, doing, SubmitError, job.job_id)

    # -- status ---------------------------------------------------------------
    def status(self, handle: JobHandle) -> JobState:
        job = narrow_handle(handle, KubernetesJobHandle)
        if job.final_state is not None:
            return job.final_state
        state, reason = self._observe(job)
        if state is JobState.PENDING:
            self._check_pending(job, reason)
        elif state is JobState.RUNNING and job.started_at is None:
            job.started_at = time.monotonic()
        elif state.finished:
            self._settle(job, state, reason)
        return state

    def pending_reason(self, handle: JobHandle) -> str:
        """Why the job has not started ("" once it has, or while nobody says), for progress displays."""
        job = narrow_handle(handle, KubernetesJobHandle)
        if job.final_state is not None:
            return ""
        state, reason = self._observe(job)
        return reason if state is JobState.PENDING else ""

    def _observe(self, job: KubernetesJobHandle) -> tuple[JobState, str]:
        if job.manifest is not None and time.monotonic() >= job.retry_at:
            self._create(job, job.manifest)
        if job.manifest is not None:
            return JobState.PENDING, job.deferred_reason
        self._raise_for_watches(job)
        cache = self._watch(self.primary, job.run_id)
        obj = cache.get(job.name)
        if obj is None:
            gone = cache.was_deleted(job.name)
            return (JobState.CANCELLED, "deleted by someone else") if gone else (JobState.PENDING, "")
        pods = [obj] if self.primary == "pods" else self._watch("pods", job.run_id).matching(LABEL_JOB, job.name)
        return state_of(self.primary, obj, pods)

    def _raise_for_watches(self, job: KubernetesJobHandle) -> None:
        for plural in sorted({self.primary, "pods"}):
            cache = self._watch(plural, job.run_id)
            error, since = cache.error, cache.failing_since
            fatal = isinstance(error, k8s.ApiException) and error.status in _FATAL_WATCH_STATUSES
            if error is not None and (fatal or (since is not None and time.monotonic() - since > _API_LOST_S)):
                doing = f"watching {plural} in namespace {self._namespace}"
                raise api_error(error, doing, JobFailedError, job.job_id)

    def _check_pending(self, job: KubernetesJobHandle, reason: str) -> None:
        waited_s = time.monotonic() - job.submitted_at
        if waited_s <= self.options.pending_timeout_s:
            return
        reason = reason or self._event_reason(job) or "Kubernetes reported no reason"
        job.spec.stderr_path.write_text(f"kubernetes: {job.name}: still pending ({reason})\n")
        if job.manifest is None:
            self._dispose(job, failed=True)
        else:
            self._delete_secret(job)
        job.final_state, job.ended_at = JobState.FAILED, time.monotonic()
        raise JobFailedError(
            f"the job was still pending {self.options.pending_timeout_s:g} s after submission "
            f"(backend.options.pending_timeout_s): {reason}",
            job_id=job.job_id,
        )

    def _event_reason(self, job: KubernetesJobHandle) -> str:
        try:
            events = warning_events(self._connect(), self._namespace, job.name)
        except _CLIENT_ERRORS:
            return ""  # the reason is a courtesy; the timeout stands without it
        return events[-1] if events else ""

    # -- finishing --------------------------------------------------------------
    def _settle(self, job: KubernetesJobHandle, state: JobState, reason: str) -> None:
        """Save logs and Kubernetes' account, then delete (or keep) the object."""
        watched = self._watch("pods", job.run_id)
        pods = finished_pods(self._resource("pods"), watched, self.primary, job.name, job.job_id)
        main = main_pod(pods)
        artifacts = save_logs(self._connect(), self._namespace, job.spec, pods, (main, CONTAINER), job.job_id)
        obj = self._watch(self.primary, job.run_id).get(job.name)
        job.spec.stderr_path.write_text(account(self.primary[:-1], obj, pods, state, reason))
        self._dispose(job, failed=state is not JobState.COMPLETED)
        job.exit_code, job.artifacts = exit_code(main), artifacts
        job.final_state, job.ended_at = state, time.monotonic()

    def _dispose(self, job: KubernetesJobHandle, failed: bool) -> None:
        """Delete the object by name (or keep it labelled); a delete that fails is retried at close, not raised."""
        resource = self._resource(self.primary)
        if failed and self.options.keep_failed:
            try:
                resource.label(job.name, {LABEL_KEEP: "true"})
            except _CLIENT_ERRORS as exc:
                raise api_error(exc, f"labelling {self.primary[:-1]} {job.name}", TeardownError, job.job_id) from exc
            self._cleanup.kept(resource, job.name)
        else:
            self._cleanup.delete(resource, job.name)
        self._delete_secret(job)

    def _delete_secret(self, job: KubernetesJobHandle) -> None:
        if job.secret_name:  # by name, like the rest; a failure is retried at close, then a leftover
            self._cleanup.delete(self._resource("secrets"), job.secret_name)

    def cancel(self, handle: JobHandle) -> None:
        job = narrow_handle(handle, KubernetesJobHandle)
        if job.final_state is not None:
            return
        job.final_state, job.ended_at = JobState.CANCELLED, time.monotonic()
        if job.manifest is None:
            self._dispose(job, failed=False)
        else:
            self._delete_secret(job)  # created for a job a full quota deferred

    def collect(self, handle: JobHandle) -> JobOutput:
        job = narrow_handle(handle, KubernetesJobHandle)
        started_at = job.submitted_at if job.started_at is None else job.started_at
        ended_at = time.monotonic() if job.ended_at is None else job.ended_at
        return JobOutput(
            job_id=job.job_id,
            state=job.final_state or JobState.UNKNOWN,
            exit_code=job.exit_code,
            stdout_path=job.spec.stdout_path,
            stderr_path=job.spec.stderr_path,
            elapsed_s=ended_at - started_at,
            artifacts=job.artifacts,
        )

    # -- session end and dry run -------------------------------------------------
    def close(self) -> None:
        """Stop the watches; delete every object this process created and did not keep on purpose, by name."""
        for cache in self._watches.values():
            cache.stop()
        self._watches.clear()
        for namespace, name in self._bundles.take():  # deleted by name with the rest; a failure is a leftover
            self._cleanup.created(ResourceApi("configmaps", namespace, self._connect()), name)
        self._cleanup.delete_all()

    def leftovers(self) -> list[str]:
        """The objects :meth:`close` could not delete, each with the ``kubectl`` command that does."""
        return self._cleanup.leftovers()

    def render(self, spec: JobSpec) -> str:
        if not self._namespace:
            try:
                self._connect()  # reads the kube config for its namespace; no request is sent
            except ConfigError:
                self._namespace = "default"  # a dry run needs no cluster
        name = object_name(spec.name, "dryrun")
        manifest = self._manifest(spec, name, self._namespace)
        secret = secret_manifest(self.platform, spec, name, self._namespace, manifest["metadata"]["labels"])
        return described(secret) + yaml.safe_dump(redacted(manifest), sort_keys=False)
