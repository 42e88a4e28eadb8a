"""Saving a finished job's container logs to its work directory.

The main container of the main pod becomes the job's ``stdout.log``; every other
container (init containers, other replicas of a template) is saved beside it as
``<pod>.<container>.log`` and listed as an artifact.
"""

from __future__ import annotations

from typing import Any

import pydantic
from kubernetes import client as k8s

from pytest_hetero.backends.base import JobSpec
from pytest_hetero.backends.k8s_client import TRANSPORT_ERRORS, ResourceApi, WatchCache, api_error, save_log
from pytest_hetero.backends.k8s_manifest import LABEL_JOB
from pytest_hetero.errors import CollectError

__all__ = ["container_names", "finished_pods", "save_logs"]

Json = dict[str, Any]
_CLIENT_ERRORS = (k8s.ApiException, pydantic.ValidationError, *TRANSPORT_ERRORS)


def container_names(pod: Json) -> list[str]:
    """A pod's init containers and containers, in order."""
    spec = pod.get("spec") or {}
    return [c["name"] for c in [*spec.get("initContainers", []), *spec.get("containers", [])]]


def finished_pods(pods: ResourceApi, cache: WatchCache, primary: str, name: str, job_id: str) -> list[Json]:
    """The pods of finished job ``name``, whose logs and account are saved.

    A bare pod (``primary`` is pods) is the watch's latest copy, the one that said it had
    ended: no request. A Job's (or template's) pods are listed, for the watch may lag
    behind its object; when the listing fails, they are the pods as last watched.
    """
    if primary == "pods" and (pod := cache.get(name)) is not None:
        return [pod]
    try:
        return pods.items(f"{LABEL_JOB}={name}")
    except _CLIENT_ERRORS as exc:
        watched = [cache.get(name) or {}] if primary == "pods" else cache.matching(LABEL_JOB, name)
        if not (found := [pod for pod in watched if pod]):
            raise api_error(exc, f"listing the pods of {name}", CollectError, job_id) from exc
        return found


def save_logs(
    api: k8s.ApiClient, namespace: str, spec: JobSpec, pods: list[Json], main: tuple[Json | None, str], job_id: str
) -> dict[str, str]:
    """Save every container's log; ``main``: the pod and container whose log is stdout.log.

    Returns the other logs as artifacts (``log:<pod>/<container>`` -> path); a log that
    cannot be read is a :class:`CollectError` of job ``job_id``.
    """
    main_pod, main_container = main
    artifacts: dict[str, str] = {}
    spec.stdout_path.touch()
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        for container in container_names(pod):
            is_main = pod is main_pod and container == main_container
            path = spec.stdout_path if is_main else spec.workdir / f"{pod_name}.{container}.log"
            try:
                saved = save_log(api, namespace, pod_name, container, path)
            except _CLIENT_ERRORS as exc:
                raise api_error(exc, f"reading the log of {pod_name}/{container}", CollectError, job_id) from exc
            if saved and not is_main:
                artifacts[f"log:{pod_name}/{container}"] = str(path)
    return artifacts
