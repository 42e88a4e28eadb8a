"""``backend.options`` of the kubernetes backend: the JSON Schema and its typed form.

The catalogue loader validates the options against :data:`OPTIONS_SCHEMA`
(unknown keys are rejected with the list of valid ones);
:meth:`K8sOptions.parse` (``KubernetesBackend.parse_options``) then gives the
backend typed values with defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_hetero.backends.base import BackendOptions, check_options
from pytest_hetero.backends.k8s_names import name_problems
from pytest_hetero.errors import ConfigError

__all__ = ["OPTIONS_SCHEMA", "K8sOptions"]

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_OBJECTS = {"type": "array", "items": {"type": "object"}}
_NAME = {"type": "string", "minLength": 1}

#: JSON Schema of ``backend.options`` for ``backend: kubernetes``.
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "namespace": _NAME,
        "context": _NAME,
        "kubeconfig": _NAME,
        "in_cluster": {"type": "boolean"},
        "kind": {"enum": ["pod", "job"]},
        "template": {"type": ["string", "object"], "description": "YAML file (relative to the catalogue) or mapping"},
        "template_plural": _NAME,
        "node_selector": _STR_MAP,
        "tolerations": _OBJECTS,
        "affinity": {"type": "object"},
        "priority_class": _NAME,
        "service_account": _NAME,
        "image_pull_secrets": {"type": "array", "items": _NAME},
        "image_pull_policy": {"enum": ["Always", "IfNotPresent", "Never"]},
        "accelerator_resource": {
            "type": ["string", "boolean"],
            "minLength": 1,
            "description": "device-plugin resource; false when an operator allocates them",
        },
        "pvc": {**_STR_MAP, "description": "dataset name (a data_roots key) -> PersistentVolumeClaim"},
        "pvc_read_only": {"type": "boolean"},
        "shm_gb": {"type": "number", "exclusiveMinimum": 0},
        "volumes": _OBJECTS,
        "volume_mounts": _OBJECTS,
        "working_dir": _NAME,
        "bundle_mount_path": {
            "type": "string",
            "pattern": "^/",
            "description": "where the pod mounts the workload bundle (its PYTHONPATH)",
        },
        "run_as_user": {"type": "integer", "minimum": 0, "description": "0 drops the non-root default"},
        "capabilities": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[A-Z_]+$"},
            "description": "Linux capabilities the container adds (IPC_LOCK for Graphcore IPUs)",
        },
        "security_context": {"type": "object", "description": "pod securityContext replacing the default"},
        "labels": _STR_MAP,
        "annotations": _STR_MAP,
        "queue_name": _NAME,
        "keep_failed": {"type": "boolean"},
        "pending_timeout_s": {"type": "number", "exclusiveMinimum": 0},
        "ttl_after_finished_s": {"type": "integer", "minimum": 0},
        "watch_timeout_s": {"type": "integer", "minimum": 1},
    },
}


@dataclass(frozen=True)
class K8sOptions(BackendOptions):
    """``backend.options`` of the kubernetes backend, with defaults."""

    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    in_cluster: bool = False
    kind: Literal["pod", "job"] = "job"
    template: str | Mapping[str, Any] | None = None
    template_plural: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] = field(default_factory=dict)
    priority_class: str | None = None
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    image_pull_policy: str | None = None
    accelerator_resource: str | bool | None = None
    pvc: Mapping[str, str] = field(default_factory=dict)
    pvc_read_only: bool = True
    shm_gb: float | None = None
    volumes: tuple[Mapping[str, Any], ...] = ()
    volume_mounts: tuple[Mapping[str, Any], ...] = ()
    working_dir: str | None = None
    #: Where the workload bundle's ConfigMap is mounted (:mod:`.k8s_bundle`).
    bundle_mount_path: str = "/opt/pytest-hetero/bundle"
    run_as_user: int = 1000
    #: Added to the container's capabilities (after dropping ALL when non-root): IPC_LOCK for IPUs.
    capabilities: tuple[str, ...] = ()
    security_context: Mapping[str, Any] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    queue_name: str | None = None
    keep_failed: bool = False
    pending_timeout_s: float = 600.0
    ttl_after_finished_s: int = 3600
    watch_timeout_s: int = 60

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> K8sOptions:
        """``raw`` checked against :data:`OPTIONS_SCHEMA` and the API's naming rules, typed; or ConfigError."""
        problems = list(name_problems(check_options(OPTIONS_SCHEMA, raw)))
        if problems:
            raise ConfigError("; ".join(problems))
        return cls.from_mapping(raw)
