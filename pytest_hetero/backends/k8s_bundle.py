"""The workload bundle on Kubernetes: a ConfigMap, mounted read-only where the job's PYTHONPATH points.

One ConfigMap per distinct bundle (named by its digest, so the jobs of a run
that ship the same code share it), labelled with the run like the jobs, created
before the first job that needs it and deleted at session end. Each file is
one key (ConfigMap keys admit no ``/``); the volume's ``items`` put it back at
its path, so the pod sees the bundle's tree at ``backend.options.bundle_mount_path``
(default :data:`DEFAULT_MOUNT_PATH`), read-only, with files mode 0444: a
non-root pod needs no write access anywhere, and no ``pip install`` runs.

The API server refuses objects over 1 MiB (etcd's request limit), so the
manifest is measured before it is sent (:func:`configmap_manifest`); a bigger
bundle is refused with its size and what made it big.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_hetero.bundle import INDEX_FILE, Bundle
from pytest_hetero.errors import SubmitError

if TYPE_CHECKING:
    from pytest_hetero.backends.base import JobSpec

__all__ = [
    "CONFIGMAP_LIMIT_BYTES",
    "DEFAULT_MOUNT_PATH",
    "VOLUME_NAME",
    "ConfigMaps",
    "bundle_mount",
    "bundle_volume",
    "configmap_manifest",
    "configmap_name",
    "create_configmap",
    "delete_configmap",
]

Json = dict[str, Any]
#: What the API server accepts for one object (etcd's default request size limit).
CONFIGMAP_LIMIT_BYTES = 1024 * 1024
DEFAULT_MOUNT_PATH = "/opt/pytest-hetero/bundle"
VOLUME_NAME = "hetero-bundle"
_KEY_CHARS = re.compile(r"[^-._a-zA-Z0-9]")


def configmap_name(bundle: Bundle) -> str:
    return f"hetero-bundle-{bundle.digest[:16]}"


def _entries(bundle: Bundle) -> list[tuple[str, str, bytes]]:
    """(key, path, content) for every file and the index, in path order; keys unique by position."""
    files = {**bundle.files, INDEX_FILE: bundle.index()}
    return [
        (f"{index:03d}-{_KEY_CHARS.sub('_', path.rsplit('/', 1)[-1])}", path, files[path])
        for index, path in enumerate(sorted(files))
    ]


def configmap_manifest(bundle: Bundle, namespace: str, labels: Mapping[str, str]) -> Json:
    """The ConfigMap holding ``bundle``; :class:`SubmitError` when it is over the API server's limit."""
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, _, content in _entries(bundle):
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
    manifest: Json = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": configmap_name(bundle), "namespace": namespace, "labels": dict(labels)},
        "immutable": True,
        "data": data,
    }
    if binary:
        manifest["binaryData"] = binary
    size_bytes = len(json.dumps(manifest).encode())
    if size_bytes > CONFIGMAP_LIMIT_BYTES:
        raise SubmitError(_too_big(bundle, size_bytes))
    return manifest


def _too_big(bundle: Bundle, size_bytes: int) -> str:
    largest = sorted(bundle.files, key=lambda path: -len(bundle.files[path]))[:3]
    sizes = ", ".join(f"{path} ({len(bundle.files[path]) / 1024:.0f} KiB)" for path in largest)
    return (
        f"the workload bundle would make a ConfigMap of {size_bytes / 1024:.0f} KiB, over the "
        f"{CONFIGMAP_LIMIT_BYTES // 1024} KiB the Kubernetes API server accepts; its largest files: {sizes}. "
        "Put data on a volume (backend.options.pvc / data_roots) instead of naming it in command="
    )


def bundle_volume(bundle: Bundle) -> Json:
    """The pod's volume: every key back at its path, read-only files."""
    items = [{"key": key, "path": path} for key, path, _ in _entries(bundle)]
    return {"name": VOLUME_NAME, "configMap": {"name": configmap_name(bundle), "items": items, "defaultMode": 0o444}}


def bundle_mount(mount_path: str) -> Json:
    return {"name": VOLUME_NAME, "mountPath": mount_path, "readOnly": True}


def create_configmap(api: Any, manifest: Json) -> None:
    """Create it with ``api`` (a ``kubernetes.client.ApiClient``); one that exists already (same name,
    so same content) is fine."""
    from kubernetes import client as k8s  # the renderer above needs no client

    try:
        body: Any = manifest  # the client sends a dict as it is
        k8s.CoreV1Api(api).create_namespaced_config_map(manifest["metadata"]["namespace"], body)
    except k8s.ApiException as exc:
        if exc.status != 409:
            raise


def delete_configmap(api: Any, namespace: str, name: str) -> None:
    """Delete it; gone already is fine."""
    from kubernetes import client as k8s

    try:
        k8s.CoreV1Api(api).delete_namespaced_config_map(name, namespace)
    except k8s.ApiException as exc:
        if exc.status != 404:
            raise


class ConfigMaps:
    """The bundle ConfigMaps one backend created: each made once, all deleted at session end."""

    def __init__(self) -> None:
        self._api: Any = None
        self._created: set[tuple[str, str]] = set()

    def ship(self, spec: JobSpec, api: Any, namespace: str, job_labels: Mapping[str, str]) -> None:
        """Create the ConfigMap of ``spec``'s bundle unless done already (labels: the job's run's)."""
        if spec.bundle is None or (namespace, configmap_name(spec.bundle)) in self._created:
            return
        labels = {k: v for k, v in job_labels.items() if k.startswith(("app.kubernetes.io/", "pytest-hetero/"))}
        labels.pop("pytest-hetero/job", None)  # shared by the run's jobs that ship the same code
        create_configmap(api, configmap_manifest(spec.bundle, namespace, labels))
        self._api = api
        self._created.add((namespace, configmap_name(spec.bundle)))

    def take(self) -> list[tuple[str, str]]:
        """(namespace, name) of every ConfigMap created, forgotten here: the caller deletes them by name."""
        created, self._created = sorted(self._created), set()
        return created

    def delete_all(self) -> None:
        for namespace, name in sorted(self._created):
            delete_configmap(self._api, namespace, name)
        self._created.clear()
