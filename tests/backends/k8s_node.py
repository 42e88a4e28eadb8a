"""The emulated cluster's node agent: kubelet, scheduler and controllers in one.

:class:`NodeAgent` receives every change the API server records (as a watch
would deliver it) and reacts over the HTTP API like the real components:

* pods go to the :class:`~k8s_kubelet.Kubelet` (scheduling, image pulls,
  the container as a local process, deadlines, kills on deletion);
* the Job controller: suspended Jobs wait (nothing plays Kueue: tests resume
  them), one pod per Job with ``FailedCreate`` events while the quota refuses
  it, Complete/Failed conditions from the pod, and the Job's own deadline;
* a generic operator for custom kinds (IPUJob, PyTorchJob): the first pod
  template in the object becomes a pod, whose outcome becomes its conditions;
* the garbage collector: deleting an owner deletes its pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from k8s_apiserver import TERMINAL, ApiServer, now_iso
from k8s_kubelet import Http, Kubelet, Node, path_of

Json = dict[str, Any]
FAILED_JOB = {
    "type": "Failed",
    "status": "True",
    "reason": "BackoffLimitExceeded",
    "message": "Job has reached the specified backoff limit",
}
JOB_DEADLINE = {
    "type": "Failed",
    "status": "True",
    "reason": "DeadlineExceeded",
    "message": "Job was active longer than specified deadline",
}


def owner(obj: Json) -> Json | None:
    refs = obj["metadata"].get("ownerReferences") or []
    return refs[0] if refs else None


def plural_of(obj_or_ref: Json) -> str:
    return str(obj_or_ref["kind"]).lower() + "s"


class NodeAgent:
    def __init__(self, server: ApiServer, url: str, sandbox: Path, node: Node) -> None:
        self.server, self.url, self.sandbox, self.node = server, url, sandbox, node
        self.events: asyncio.Queue[tuple[str, str, Json]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._started: set[str] = set()  # owners whose pod exists or is being created
        self._done: set[str] = set()  # owners whose outcome is written
        self.http: Http | None = None
        self.kubelet: Kubelet | None = None

    @property
    def processes(self) -> dict[str, asyncio.subprocess.Process]:
        return self.kubelet.processes if self.kubelet else {}

    # -- life cycle -----------------------------------------------------------------
    async def start(self) -> None:
        self.http = Http(self.url, self.server.state.token)
        self.kubelet = Kubelet(self.server, self.http, self.node, self.sandbox, self.spawn)
        self.server.state.listeners.append(lambda kind, plural, obj: self.events.put_nowait((kind, plural, obj)))
        self.spawn(self._consume())

    async def stop(self) -> None:
        assert self.kubelet is not None and self.http is not None
        for key in list(self.kubelet.processes):
            await self.kubelet.kill(key)
        for task in list(self._tasks):
            task.cancel()
        await self.http.session.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _consume(self) -> None:
        while True:
            kind, plural, obj = await self.events.get()
            with contextlib.suppress(Exception):  # one odd object must not stop the node
                await self._react(kind, plural, obj)

    async def _react(self, kind: str, plural: str, obj: Json) -> None:
        if plural == "pods":
            await self._react_pod(kind, obj)
        elif plural != "events" and kind == "DELETED":
            await self._collect_garbage(obj)
        elif plural == "jobs":
            await self._sync_job(obj)
        elif plural != "events":
            await self._sync_custom(obj)

    async def _react_pod(self, kind: str, pod: Json) -> None:
        assert self.kubelet is not None
        phase = (pod.get("status") or {}).get("phase")
        if kind == "DELETED":
            await self.kubelet.kill(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
        elif kind == "ADDED" and not phase:
            await self.kubelet.admit(pod)
        elif phase in TERMINAL and owner(pod):
            await self._owner_outcome(pod)

    # -- the Job controller ---------------------------------------------------------
    async def _sync_job(self, job: Json) -> None:
        uid, status = job["metadata"]["uid"], job.get("status") or {}
        if uid in self._started or any(c["type"] in ("Complete", "Failed") for c in status.get("conditions", [])):
            return
        if job["spec"].get("suspend"):
            if not status.get("conditions"):
                suspended = {
                    "type": "Suspended",
                    "status": "True",
                    "reason": "JobSuspended",
                    "message": "Job suspended",
                }
                await self._http().patch_status(job, "jobs", {"conditions": [suspended]})
            return
        self._started.add(uid)
        await self._http().patch_status(job, "jobs", {"startTime": now_iso(), "active": 1, "conditions": []})
        self.spawn(self._create_pod(job, job["spec"]["template"], f"{job['metadata']['name']}-{secrets.token_hex(3)}"))
        if job["spec"].get("activeDeadlineSeconds"):
            self.spawn(self._job_deadline(job, float(job["spec"]["activeDeadlineSeconds"])))

    async def _job_deadline(self, job: Json, deadline_s: float) -> None:
        await asyncio.sleep(deadline_s)
        uid = job["metadata"]["uid"]
        if self._alive(job) and uid not in self._done:
            self._done.add(uid)
            await self._collect_garbage(job)
            await self._http().patch_status(job, "jobs", {"active": 0, "failed": 1, "conditions": [JOB_DEADLINE]})

    # -- shared by the controllers ----------------------------------------------------
    def _http(self) -> Http:
        assert self.http is not None
        return self.http

    def _alive(self, obj: Json) -> bool:
        uid = obj["metadata"]["uid"]
        return any(o["metadata"]["uid"] == uid for o in self.server.current(plural_of(obj)))

    async def _create_pod(self, owner_obj: Json, template: Json, name: str) -> None:
        """Create the owner's pod; while the quota refuses it, say so in an event and retry."""
        meta = owner_obj["metadata"]
        labels = {**(template.get("metadata") or {}).get("labels", {})}
        if owner_obj["kind"] == "Job":
            labels.update({"job-name": meta["name"], "batch.kubernetes.io/job-name": meta["name"]})
        ref = {"apiVersion": owner_obj["apiVersion"], "kind": owner_obj["kind"], "name": meta["name"]}
        ref.update(uid=meta["uid"], controller=True)
        metadata = {"name": name, "namespace": meta["namespace"], "labels": labels, "ownerReferences": [ref]}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}
        while self._alive(owner_obj):
            code, answer = await self._http().request("POST", path_of("v1", "pods", meta["namespace"]), pod)
            if code < 300:
                if not self._alive(owner_obj):  # deleted meanwhile: the garbage collector takes the orphan
                    await self._http().request("DELETE", path_of("v1", "pods", meta["namespace"], name))
                return
            await self._http().warn(owner_obj, "FailedCreate", f"Error creating: {answer.get('message')}")
            await asyncio.sleep(1.0)

    async def _owner_outcome(self, pod: Json) -> None:
        ref = owner(pod)
        assert ref is not None
        owners = [o for o in self.server.current(plural_of(ref)) if o["metadata"]["uid"] == ref["uid"]]
        if owners and ref["uid"] not in self._done:
            self._done.add(ref["uid"])
            succeeded = pod["status"]["phase"] == "Succeeded"
            status = _job_outcome(succeeded) if ref["kind"] == "Job" else _custom_outcome(succeeded, pod["status"])
            await self._http().patch_status(owners[0], plural_of(ref), status)

    async def _collect_garbage(self, owner_obj: Json) -> None:
        uid, namespace = owner_obj["metadata"]["uid"], owner_obj["metadata"]["namespace"]
        for pod in self.server.current("pods", namespace):
            if (owner(pod) or {}).get("uid") == uid:
                await self._http().request("DELETE", path_of("v1", "pods", namespace, pod["metadata"]["name"]))

    # -- a generic operator for custom kinds --------------------------------------------
    async def _sync_custom(self, obj: Json) -> None:
        uid, template = obj["metadata"]["uid"], _pod_template(obj.get("spec"))
        if uid in self._started or template is None:
            return
        self._started.add(uid)
        self.spawn(self._create_pod(obj, template, f"{obj['metadata']['name']}-worker-0"))
        await self._http().patch_status(obj, plural_of(obj), {"conditions": [{"type": "Created", "status": "True"}]})


def _job_outcome(succeeded: bool) -> Json:
    condition = {"type": "Complete", "status": "True"} if succeeded else FAILED_JOB
    counts = {"succeeded": 1} if succeeded else {"failed": 1}
    return {"active": 0, **counts, "conditions": [condition], "completionTime": now_iso()}


def _custom_outcome(succeeded: bool, pod_status: Json) -> Json:
    reason = pod_status.get("reason") or ("PodSucceeded" if succeeded else "PodFailed")
    return {"conditions": [{"type": "Succeeded" if succeeded else "Failed", "status": "True", "reason": reason}]}


def _pod_template(node: Any) -> Json | None:
    """The first pod template (``template: {spec: {containers: ...}}``) inside a custom object."""
    if isinstance(node, dict):
        template = node.get("template")
        if isinstance(template, dict) and "containers" in (template.get("spec") or {}):
            return template
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = _pod_template(item)
            if found is not None:
                return found
    return None
