"""Reading Kubernetes objects back: job state, pending reason, exit code.

Pure functions of the objects as the API server returns them (plain dicts),
so they are tested without a cluster. A Pod speaks for itself; a Job or a
custom resource speaks through its conditions, and its pods tell why it is
still pending (Unschedulable, ImagePullBackOff, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pytest_hetero.backends.base import JobState
from pytest_hetero.backends.k8s_manifest import CONTAINER, QUEUE_LABEL

__all__ = ["account", "exit_code", "main_pod", "state_of"]

Json = dict[str, Any]
Observation = tuple[JobState, str]

_DONE = {"Succeeded", "Complete", "Completed"}
_FAILED = {"Failed", "Error"}
#: Waiting reasons that are ordinary steps of starting a container.
_STARTING = {"ContainerCreating", "PodInitializing"}


def state_of(resource: str, obj: Json, pods: Sequence[Json]) -> Observation:
    """State and reason of a ``pods``, ``jobs`` or custom object, given its pods."""
    if resource == "pods":
        return pod_state(obj)
    if resource == "jobs":
        return job_state(obj, pods)
    return custom_state(obj, pods)


def pod_state(pod: Json) -> Observation:
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase == "Succeeded":
        return JobState.COMPLETED, ""
    if phase == "Failed":
        reason = status.get("reason") or ""
        state = JobState.TIMEOUT if reason == "DeadlineExceeded" else JobState.FAILED
        return state, _join(reason, status.get("message"))
    if phase == "Running":
        return JobState.RUNNING, ""
    if phase == "Unknown":
        return JobState.UNKNOWN, "the node stopped reporting the pod's state"
    return JobState.PENDING, pending_reason(pod)


def pending_reason(pod: Json) -> str:
    """Why a pod has not started: a container's waiting reason, else the scheduler's."""
    status = pod.get("status") or {}
    for container in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") and waiting["reason"] not in _STARTING:
            return _join(waiting["reason"], waiting.get("message"))
    for condition in status.get("conditions", []):
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return _join(condition.get("reason"), condition.get("message"))
    gates = [gate.get("name", "") for gate in (pod.get("spec") or {}).get("schedulingGates", [])]
    return f"SchedulingGated: waiting for {', '.join(gates)}" if gates else ""


def job_state(job: Json, pods: Sequence[Json]) -> Observation:
    conditions = _true_conditions(job)
    if "Complete" in conditions:
        return JobState.COMPLETED, ""
    if "Failed" in conditions:
        return _failed(conditions["Failed"], pods)
    if (job.get("spec") or {}).get("suspend") or "Suspended" in conditions:
        queue = ((job.get("metadata") or {}).get("labels") or {}).get(QUEUE_LABEL)
        if queue:
            return JobState.PENDING, f"not admitted by Kueue: the Job is suspended, waiting in queue {queue!r}"
        return JobState.PENDING, "the Job is suspended"
    return _from_pods(pods)


def custom_state(obj: Json, pods: Sequence[Json]) -> Observation:
    """A custom resource (IPUJob, PyTorchJob, ...): conditions or a phase/state field."""
    status = obj.get("status") or {}
    conditions = _true_conditions(obj)
    marks = set(conditions) | {status.get("phase"), status.get("state")}
    if marks & _DONE:
        return JobState.COMPLETED, ""
    if marks & _FAILED:
        failed = next((conditions[t] for t in _FAILED if t in conditions), {"reason": status.get("message", "")})
        return _failed(failed, pods)
    return _from_pods(pods)


def _failed(condition: Json, pods: Sequence[Json]) -> Observation:
    reason = condition.get("reason") or ""
    timed_out = reason == "DeadlineExceeded" or any(pod_state(p)[0] is JobState.TIMEOUT for p in pods)
    pod_reasons = [pod_state(p)[1] for p in pods if pod_state(p)[1]]
    detail = _join(reason, condition.get("message"))
    if pod_reasons:
        detail = f"{detail}; pod: {pod_reasons[0]}" if detail else pod_reasons[0]
    return (JobState.TIMEOUT if timed_out else JobState.FAILED), detail


def _from_pods(pods: Sequence[Json]) -> Observation:
    states = [pod_state(pod) for pod in pods]
    if any(state is not JobState.PENDING for state, _ in states):
        return JobState.RUNNING, ""  # ran; the controller has not written the outcome yet
    reasons = [reason for _, reason in states if reason]
    return JobState.PENDING, reasons[0] if reasons else ""


def _true_conditions(obj: Json) -> dict[str, Json]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {c.get("type", ""): c for c in conditions if str(c.get("status")) == "True"}


def _join(reason: str | None, message: str | None) -> str:
    return ": ".join(part for part in (reason, message) if part)


def main_pod(pods: Iterable[Json]) -> Json | None:
    """The pod whose ``main`` container runs the workload (a launcher beats workers)."""
    ordered = sorted(pods, key=lambda p: (p["metadata"]["name"].find("launcher") < 0, p["metadata"]["name"]))
    with_main = [p for p in ordered if any(c.get("name") == CONTAINER for c in _containers(p))]
    candidates = with_main or ordered
    return candidates[0] if candidates else None


def _containers(pod: Json) -> list[Json]:
    return list((pod.get("spec") or {}).get("containers", []))


def exit_code(pod: Json | None) -> int | None:
    """Exit status of the workload container, once it terminated."""
    for status in ((pod or {}).get("status") or {}).get("containerStatuses", []):
        terminated = (status.get("state") or {}).get("terminated")
        if status.get("name") == CONTAINER and terminated:
            return int(terminated.get("exitCode", 0))
    return None


def account(kind: str, obj: Json | None, pods: Sequence[Json], state: JobState, reason: str) -> str:
    """Kubernetes' side of the story, for ``stderr.log`` and failure messages."""
    name = ((obj or {}).get("metadata") or {}).get("name", "?")
    lines = [f"kubernetes: {kind} {name}: {state.value}" + (f" ({reason})" if reason else "")]
    for pod in pods:
        lines.extend(_pod_lines(pod))
    return "\n".join(lines) + "\n"


def _pod_lines(pod: Json) -> list[str]:
    status = pod.get("status") or {}
    head = f"  pod {pod['metadata']['name']}: {status.get('phase', 'Pending')}"
    lines = [head + (f" ({_join(status.get('reason'), status.get('message'))})" if status.get("reason") else "")]
    for container in status.get("containerStatuses", []):
        state = container.get("state") or {}
        for what, detail in state.items():
            if detail:
                lines.append(f"    container {container.get('name')}: {what} {_container_detail(detail)}".rstrip())
    return lines


def _container_detail(detail: Json) -> str:
    parts = [f"exit code {detail['exitCode']}" if "exitCode" in detail else "", detail.get("reason", "")]
    text = ", ".join(p for p in parts if p)
    return f"({text})" if text else ""
