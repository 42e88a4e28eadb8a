"""Kubernetes manifests for benchmark jobs: pure functions of platform + job spec.

:func:`build_manifest` turns a :class:`~pytest_hetero.config.models.Platform`
(with its options typed as :class:`~pytest_hetero.backends.k8s_options.K8sOptions`)
and a :class:`~pytest_hetero.backends.base.JobSpec` into the object the
backend creates: a Pod, a ``batch/v1`` Job, or the platform's own template (a
Graphcore ``IPUJob``, a Kubeflow ``PyTorchJob``, ...) with its placeholders
filled in. Nothing here talks to a cluster, so the same function feeds
``--hetero-dry-run`` and the golden-manifest tests.

Template placeholders: a string that is exactly ``${hetero.NAME}`` becomes the
value itself (a list, a mapping, a number); inside longer strings it is
interpolated as text. Names: ``name namespace run_id image accelerators
(a string) deadline_s nodes command env resources volume_mounts volumes
labels container pod_spec``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_hetero.accelerators import accelerator_kind
from pytest_hetero.backends.base import JobSpec
from pytest_hetero.backends.k8s_bundle import bundle_mount, bundle_volume
from pytest_hetero.backends.k8s_options import K8sOptions
from pytest_hetero.backends.k8s_secrets import container_command, container_env
from pytest_hetero.config.models import Platform
from pytest_hetero.config.safe_yaml import load_yaml
from pytest_hetero.errors import ConfigError
from pytest_hetero.redact import REDACTED, is_secret

__all__ = [
    "CONTAINER",
    "LABEL_JOB",
    "LABEL_KEEP",
    "LABEL_RUN_ID",
    "LABEL_SESSION",
    "QUEUE_LABEL",
    "Identity",
    "build_manifest",
    "label_value",
    "load_template",
    "object_name",
    "platform_problems",
    "redacted",
]

LABEL_RUN_ID = "pytest-hetero/run-id"
LABEL_SESSION = "pytest-hetero/session"
LABEL_JOB = "pytest-hetero/job"
LABEL_PLATFORM = "pytest-hetero/platform"
LABEL_KEEP = "pytest-hetero/keep"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
CONTAINER = "main"

#: Extended resource each accelerator kind asks the device plugin for.

_PLACEHOLDER = re.compile(r"\$\{hetero\.([a-z_]+)\}")
Json = dict[str, Any]


@dataclass(frozen=True)
class Identity:
    """Who an object belongs to: its name, namespace, the run and this process."""

    name: str
    namespace: str
    run_id: str
    session: str
    platform: str = ""
    extra_labels: Mapping[str, str] = field(default_factory=dict)


def label_value(text: str) -> str:
    """``text`` made a valid label value (63 characters, alphanumeric ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    return cleaned.strip("-_.") or "x"


def object_name(test_name: str, suffix: str) -> str:
    """A DNS-1123 name from a test name; short enough for a Job's pod names too."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"hetero-{slug}-{suffix}" if slug else f"hetero-{suffix}"


def platform_problems(platform: Platform, options: K8sOptions) -> list[str]:
    """What keeps ``platform`` from running on Kubernetes at all (checked at start-up)."""
    problems = []
    if not platform.environment.container_image:
        problems.append("backend kubernetes needs environment.container_image")
    if platform.resources.nodes > 1 and options.template is None:
        problems.append(
            f"a Pod or Job runs on one node; nodes: {platform.resources.nodes} needs "
            "backend.options.template (e.g. a Kubeflow PyTorchJob)"
        )
    known = sorted(platform.data_roots)
    problems += [
        f"backend.options.pvc names dataset {name!r}, which is not in data_roots {known}"
        for name in sorted(set(options.pvc) - set(platform.data_roots))
    ]
    return problems


def build_manifest(
    platform: Platform, spec: JobSpec, ident: Identity, template: Json | None = None, options: K8sOptions | None = None
) -> Json:
    """The object to create for ``spec`` on ``platform``; ``template`` for custom kinds.

    ``options`` are the platform's ``backend.options``, typed (read from the platform if not given).
    """
    options = K8sOptions.parse(platform.backend.options) if options is None else options
    pod_spec = _pod_spec(platform, spec, options, ident.name)
    if template is not None:
        return _from_template(template, platform, spec, ident, options, pod_spec)
    if options.kind == "pod":
        pod_spec["activeDeadlineSeconds"] = _deadline_s(spec)
        return {"apiVersion": "v1", "kind": "Pod", "metadata": _metadata(spec, ident, options), "spec": pod_spec}
    return _job(spec, ident, options, pod_spec)


def _job(spec: JobSpec, ident: Identity, options: K8sOptions, pod_spec: Json) -> Json:
    # The pod's deadline stops the workload at the time limit and keeps its log; the Job's is
    # a backstop. A Job created suspended (for Kueue) starts its deadline's clock only when it is
    # resumed (admitted), so its backstop is the limit; otherwise the time spent pending counts too.
    pod_spec["activeDeadlineSeconds"] = _deadline_s(spec)
    pending_s = 0 if options.queue_name else math.ceil(options.pending_timeout_s)
    job_spec: Json = {
        "backoffLimit": 0,
        "activeDeadlineSeconds": _deadline_s(spec) + pending_s,
        "ttlSecondsAfterFinished": options.ttl_after_finished_s,
        "template": {"metadata": {"labels": _labels(ident, options)}, "spec": pod_spec},
    }
    if options.queue_name:
        job_spec["suspend"] = True  # Kueue admits the Job by resuming it
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(spec, ident, options), "spec": job_spec}


def _deadline_s(spec: JobSpec) -> int:
    return max(1, math.ceil(spec.timeout_s))


def _labels(ident: Identity, options: K8sOptions) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "pytest-hetero",
        LABEL_RUN_ID: label_value(ident.run_id),
        LABEL_SESSION: label_value(ident.session),
        LABEL_JOB: ident.name,
        LABEL_PLATFORM: label_value(ident.platform),
        **ident.extra_labels,
        **options.labels,
    }


def _metadata(spec: JobSpec, ident: Identity, options: K8sOptions) -> Json:
    labels = _labels(ident, options)
    if options.queue_name:
        labels[QUEUE_LABEL] = options.queue_name
    annotations = {"pytest-hetero/test": spec.name, **options.annotations}
    return {"name": ident.name, "namespace": ident.namespace, "labels": labels, "annotations": annotations}


def _pod_spec(platform: Platform, spec: JobSpec, options: K8sOptions, job_name: str) -> Json:
    pod: Json = {"restartPolicy": "Never", "containers": [_container(platform, spec, options, job_name)]}
    pod.update(_scheduling(options))
    if options.service_account:
        pod["serviceAccountName"] = options.service_account
    else:
        pod["automountServiceAccountToken"] = False  # a benchmark has no business with the API
    if options.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in options.image_pull_secrets]
    security = _pod_security(options)
    if security:
        pod["securityContext"] = security
    volumes = _volumes(platform, options) + ([bundle_volume(spec.bundle)] if spec.bundle else [])
    if volumes:
        pod["volumes"] = volumes
    return pod


def _scheduling(options: K8sOptions) -> Json:
    placement: Json = {
        "nodeSelector": dict(options.node_selector),
        "tolerations": [dict(t) for t in options.tolerations],
        "affinity": dict(options.affinity),
        "priorityClassName": options.priority_class,
    }
    return {key: value for key, value in placement.items() if value}


def _pod_security(options: K8sOptions) -> Json:
    if options.security_context is not None:
        return dict(options.security_context)
    if options.run_as_user == 0:
        return {}
    uid = options.run_as_user
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container(platform: Platform, spec: JobSpec, options: K8sOptions, job_name: str) -> Json:
    """The ``main`` container; secret values are ``secretKeyRef``'s to the job's Secret (:mod:`.k8s_secrets`)."""
    container: Json = {
        "name": CONTAINER,
        "image": platform.environment.container_image,
        "command": container_command(platform, spec),
        "env": container_env(platform, spec, job_name),
        "resources": _resources(platform, options),
    }
    if options.image_pull_policy:
        container["imagePullPolicy"] = options.image_pull_policy
    if options.working_dir:
        container["workingDir"] = options.working_dir
    mounts = _mounts(platform, options) + ([bundle_mount(options.bundle_mount_path)] if spec.bundle else [])
    if mounts:
        container["volumeMounts"] = mounts
    if options.security_context is None and options.run_as_user != 0:
        container["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if options.capabilities:  # IPC_LOCK for Graphcore IPUs (pinned host memory), ...
        capabilities = container.setdefault("securityContext", {}).setdefault("capabilities", {})
        capabilities["add"] = list(options.capabilities)
    return container


def _resources(platform: Platform, options: K8sOptions) -> Json:
    # requests == limits: a Guaranteed pod is not squeezed by its neighbours,
    # which is what makes two runs of a benchmark comparable.
    limits: dict[str, str] = {}
    if platform.resources.cpus_per_task:
        limits["cpu"] = str(platform.resources.cpus_per_task)
    if platform.resources.mem_gb:
        limits["memory"] = _quantity_gi(platform.resources.mem_gb)
    accelerators = platform.accelerators_per_node
    resource = options.accelerator_resource
    if resource is None or resource is True:
        resource = accelerator_kind(platform.accelerator.kind).kubernetes_resource
    if accelerators and resource:
        limits[resource] = str(accelerators)
    return {"requests": dict(limits), "limits": limits} if limits else {}


def _quantity_gi(size_gb: float) -> str:
    return f"{size_gb:g}Gi" if float(size_gb).is_integer() else f"{math.ceil(size_gb * 1024)}Mi"


def _volumes(platform: Platform, options: K8sOptions) -> list[Json]:
    volumes: list[Json] = [
        {"name": _volume_name(name), "persistentVolumeClaim": {"claimName": claim, "readOnly": options.pvc_read_only}}
        for name, claim in sorted(options.pvc.items())
    ]
    if options.shm_gb:
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": _quantity_gi(options.shm_gb)}})
    return volumes + [dict(v) for v in options.volumes]


def _mounts(platform: Platform, options: K8sOptions) -> list[Json]:
    mounts: list[Json] = []
    for dataset in sorted(options.pvc):
        path = platform.data_roots[dataset]  # platform_problems() vouches for the key
        mounts.append({"name": _volume_name(dataset), "mountPath": path, "readOnly": options.pvc_read_only})
    if options.shm_gb:
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})  # noqa: S108 - the container's own shm
    return mounts + [dict(m) for m in options.volume_mounts]


def _volume_name(dataset: str) -> str:
    return "data-" + re.sub(r"[^a-z0-9]+", "-", dataset.lower()).strip("-")


# -- templates --------------------------------------------------------------
def _from_template(
    template: Json, platform: Platform, spec: JobSpec, ident: Identity, options: K8sOptions, pod_spec: Json
) -> Json:
    values = _template_values(platform, spec, ident, options, pod_spec)
    filled: Json = _fill(template, values, path="$")
    metadata, own = _metadata(spec, ident, options), filled.pop("metadata", None) or {}
    metadata["labels"] = {**own.get("labels", {}), **metadata["labels"]}
    metadata["annotations"] = {**own.get("annotations", {}), **metadata["annotations"]}
    filled = {"apiVersion": filled.pop("apiVersion"), "kind": filled.pop("kind"), "metadata": metadata, **filled}
    _label_pod_templates(filled, _labels(ident, options))
    return filled


def _template_values(platform: Platform, spec: JobSpec, ident: Identity, options: K8sOptions, pod: Json) -> Json:
    container: Json = pod["containers"][0]
    return {
        "name": ident.name,
        "namespace": ident.namespace,
        "run_id": ident.run_id,
        "image": container["image"],
        "accelerators": str(platform.accelerators_per_node),
        "deadline_s": _deadline_s(spec),
        "nodes": platform.resources.nodes,
        "command": container["command"],
        "env": container["env"],
        "resources": container["resources"],
        "volume_mounts": container.get("volumeMounts", []),
        "volumes": pod.get("volumes", []),
        "labels": _labels(ident, options),
        "container": container,
        "pod_spec": pod,
    }


def _fill(node: Any, values: Json, path: str) -> Any:
    if isinstance(node, dict):
        return {key: _fill(value, values, f"{path}.{key}") for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(item, values, f"{path}[{index}]") for index, item in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node
    whole = _PLACEHOLDER.fullmatch(node)
    if whole:
        return _value(whole.group(1), values, path)
    return _PLACEHOLDER.sub(lambda m: str(_value(m.group(1), values, path)), node)


def _value(name: str, values: Json, path: str) -> Any:
    if name not in values:
        raise ConfigError(
            f"backend.options.template: {path}: unknown placeholder ${{hetero.{name}}} "
            f"(known: {', '.join(sorted(values))})"
        )
    return values[name]


def _label_pod_templates(node: Any, labels: Mapping[str, str]) -> None:
    """Give every pod template in a custom object our labels, so its pods are found."""
    if isinstance(node, list):
        for item in node:
            _label_pod_templates(item, labels)
    if not isinstance(node, dict):
        return
    template = node.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict) and "containers" in template["spec"]:
        meta = template.setdefault("metadata", {})
        meta["labels"] = {**meta.get("labels", {}), **labels}
    for value in node.values():
        _label_pod_templates(value, labels)


def load_template(template: str | Mapping[str, Any] | None, source: str) -> Json | None:
    """The template as a mapping: inline, or read from a file (relative to the catalogue ``source``)."""
    if template is None or isinstance(template, Mapping):
        return dict(template) if template is not None else None
    path = Path(template).expanduser()
    if not path.is_absolute() and not source.startswith("<"):  # relative to the catalogue file
        path = Path(source).parent / path
    try:  # bounded like the catalogue: strict UTF-8, no alias bombs or endless nesting
        data = load_yaml(path, "Kubernetes template")
    except ConfigError as exc:
        raise ConfigError(f"backend.options.template: cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not {"apiVersion", "kind"} <= data.keys():
        raise ConfigError(f"backend.options.template: {path} must be one mapping with apiVersion and kind")
    return data


def redacted(node: Any) -> Any:
    """The manifest with secret environment values (marked, or secret-looking names) replaced, for printing."""
    if isinstance(node, list):
        return [redacted(item) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"name", "value"} and is_secret(str(node["name"]), str(node["value"])):
        return {"name": node["name"], "value": REDACTED}
    return {key: redacted(value) for key, value in node.items()}
