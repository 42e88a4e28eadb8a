"""The scheduler and the kubelet of the emulated one-node cluster.

They talk to the kmock API server over HTTP, as the real components do:

* scheduling: node selectors and resource requests against the node's
  capacity (``Unschedulable`` in the scheduler's words), scheduling gates;
* image "pulls": an image on a ``.invalid`` registry fails with
  ``ErrImagePull`` then ``ImagePullBackOff``; any other image "pulls" at once;
* the container: its command runs as a local process (the image is ignored),
  stdout and stderr go to its log, the exit code and phase are written back,
  ``activeDeadlineSeconds`` is enforced (``DeadlineExceeded``), and deleting
  the pod kills the process group;
* ConfigMap volumes: their items are written at the mount path (when that is
  under the temporary directory: the process shares the host's filesystem);
* the environment: ``valueFrom.secretKeyRef`` read from the Secret (a missing
  Secret or key: ``CreateContainerConfigError``, the pod stays pending), and
  ``$(VAR)`` references in the command expanded from it (``$$`` escapes).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import signal
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from k8s_apiserver import ApiServer, now_iso

Json = dict[str, Any]
Spawn = Callable[[Coroutine[Any, Any, None]], None]
_UNITS = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
KILL_GRACE_S = 1.0
DEADLINE = {"reason": "DeadlineExceeded", "message": "Pod was active on the node longer than the specified deadline"}


@dataclass
class Node:
    name: str = "node-1"
    labels: dict[str, str] = field(default_factory=lambda: {"kubernetes.io/hostname": "node-1"})
    capacity: dict[str, str] = field(default_factory=lambda: {"cpu": "64", "memory": "256Gi", "pods": "110"})


def quantity(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    if not match:
        raise ValueError(f"bad quantity {text!r}")
    return float(match.group(1)) * _UNITS.get(match.group(2), 1.0)


def path_of(api_version: str, plural: str, namespace: str, name: str = "") -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")


class Http:
    """The components' client: JSON over aiohttp with the cluster's token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})

    async def request(self, method: str, path: str, body: Json | None = None) -> tuple[int, Json]:
        async with self.session.request(method, self.url + path, json=body) as response:
            data = await response.json(content_type=None)
            return response.status, data if isinstance(data, dict) else {}

    async def patch_status(self, obj: Json, plural: str, status: Json) -> None:
        meta = obj["metadata"]
        path = path_of(obj["apiVersion"], plural, meta["namespace"], meta["name"]) + "/status"
        await self.request("PATCH", path, {"status": status})

    async def warn(self, obj: Json, reason: str, message: str) -> None:
        """Record a Warning event about ``obj``, as controllers do."""
        meta = obj["metadata"]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}."},
            "involvedObject": {"kind": obj["kind"], "name": meta["name"], "namespace": meta["namespace"]},
            "reason": reason,
            "message": message,
            "type": "Warning",
            "lastTimestamp": now_iso(),
        }
        await self.request("POST", path_of("v1", "events", meta["namespace"]), event)


class Kubelet:
    def __init__(self, server: ApiServer, http: Http, node: Node, sandbox: Path, spawn: Spawn) -> None:
        self.server, self.http, self.node, self.sandbox, self.spawn = server, http, node, sandbox, spawn
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    async def admit(self, pod: Json) -> None:
        """Schedule a new pod, pull its image, start its container."""
        spec = pod["spec"]
        if spec.get("schedulingGates"):
            message = "Scheduling is blocked due to non-empty scheduling gates"
            return await self.http.patch_status(pod, "pods", _unscheduled("SchedulingGated", message))
        problem = self.unschedulable(spec)
        if problem:
            return await self.http.patch_status(pod, "pods", _unscheduled("Unschedulable", problem))
        bad_images = [c for c in spec["containers"] if c["image"].split("/", 1)[0].endswith(".invalid")]
        if bad_images:
            return await self._fail_pull(pod, bad_images[0])
        self.spawn(self._run(pod))

    def unschedulable(self, spec: Json) -> str:
        """The scheduler's message when the pod fits nowhere, else ""."""
        capacity = self.node.capacity
        reasons = [
            f"1 Insufficient {resource}"
            for resource, amount in sorted(_requests(spec).items())
            if quantity(amount) > quantity(capacity.get(resource, "0"))
        ]
        if any(self.node.labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
            reasons.append("1 node(s) didn't match Pod's node affinity/selector")
        if not reasons:
            return ""
        return (
            f"0/1 nodes are available: {', '.join(reasons)}. preemption: 0/1 nodes are available: "
            "1 Preemption is not helpful for scheduling."
        )

    async def _fail_pull(self, pod: Json, container: Json) -> None:
        image = container["image"]
        for reason, message in (
            ("ErrImagePull", f'failed to pull and unpack image "{image}": not found'),
            ("ImagePullBackOff", f'Back-off pulling image "{image}"'),
        ):
            state = {"waiting": {"reason": reason, "message": message}}
            status = {
                "phase": "Pending",
                "startTime": now_iso(),
                "containerStatuses": [_container_status(container, state, ready=False)],
                "conditions": [{"type": "PodScheduled", "status": "True"}],
            }
            await self.http.patch_status(pod, "pods", status)
            await asyncio.sleep(0.2)

    async def _run(self, pod: Json) -> None:
        key, container, started = _key(pod), pod["spec"]["containers"][0], now_iso()
        await self._mount_config_maps(pod, container)
        try:
            env = await self._environment(pod, container)
        except LookupError as exc:
            state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc.args[0])}}
            status = {"phase": "Pending", "containerStatuses": [_container_status(container, state, ready=False)]}
            return await self.http.patch_status(pod, "pods", status)
        if not self._exists(pod):  # deleted while being set up: no container starts
            return
        self.processes[key] = await self._start(pod, container, env)
        if not self._exists(pod):  # deleted while starting: its DELETED event found no process to kill
            await self.kill(key)
        await self.http.patch_status(pod, "pods", _running(container, started))
        outcome: dict[str, str] = {}
        try:
            code = await asyncio.wait_for(self.processes[key].wait(), pod["spec"].get("activeDeadlineSeconds"))
        except TimeoutError:
            code, outcome = await self.kill(key), DEADLINE
        self.processes.pop(key, None)
        await self.http.patch_status(pod, "pods", {**_terminated(container, started, code), **outcome})

    def _exists(self, pod: Json) -> bool:
        uid = pod["metadata"]["uid"]
        return any(p["metadata"].get("uid") == uid for p in self.server.current("pods", pod["metadata"]["namespace"]))

    async def _start(self, pod: Json, container: Json, env: dict[str, str]) -> asyncio.subprocess.Process:
        meta = pod["metadata"]
        log = self.server.state.log_path(meta["namespace"], meta["name"], container["name"])
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [_expand(arg, env) for arg in [*container.get("command", []), *container.get("args", [])]]
        with open(log, "wb") as out:
            return await asyncio.create_subprocess_exec(
                *argv,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=env,
                cwd=log.parent,
                start_new_session=True,
            )

    async def _mount_config_maps(self, pod: Json, container: Json) -> None:
        """Write each ConfigMap volume's items at its mount path, as the kubelet does.

        Only mount paths under the temporary directory: the local process sees the
        host's filesystem, so a test points the mount somewhere of its own.
        """
        volumes = {v["name"]: v["configMap"] for v in pod["spec"].get("volumes", []) if "configMap" in v}
        for mount in container.get("volumeMounts", []):
            source = volumes.get(mount["name"])
            if source is None or not mount["mountPath"].startswith(tempfile.gettempdir()):
                continue
            path = path_of("v1", "configmaps", pod["metadata"]["namespace"], source["name"])
            _, config_map = await self.http.request("GET", path)
            contents = {k: v.encode() for k, v in (config_map.get("data") or {}).items()}
            contents.update({k: base64.b64decode(v) for k, v in (config_map.get("binaryData") or {}).items()})
            for item in source.get("items") or [{"key": key, "path": key} for key in contents]:
                target = Path(mount["mountPath"]) / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(contents[item["key"]])

    async def _environment(self, pod: Json, container: Json) -> dict[str, str]:
        """The container's variables; a ``secretKeyRef`` is read from its Secret (LookupError: missing)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.sandbox),
            "HOSTNAME": pod["metadata"]["name"],
            "LANG": "C.UTF-8",
        }
        namespace = pod["metadata"]["namespace"]
        for entry in container.get("env", []):
            ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
            if ref is None:
                env[entry["name"]] = entry.get("value", "")
                continue
            status, secret = await self.http.request("GET", path_of("v1", "secrets", namespace, ref["name"]))
            data = (secret.get("data") or {}) if status == 200 else {}
            if status != 200 or ref["key"] not in data:
                missing = f'secret "{ref["name"]}" not found' if status != 200 else f"key {ref['key']} not found"
                raise LookupError(f"couldn't find {missing} in namespace {namespace}")
            env[entry["name"]] = base64.b64decode(data[ref["key"]]).decode()
        return env

    async def kill(self, key: str) -> int:
        """SIGTERM the container's process group, SIGKILL after the grace period."""
        process = self.processes.get(key)
        if process is None:
            return 0
        if process.returncode is None:
            _signal(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), KILL_GRACE_S)
            except TimeoutError:
                _signal(process.pid, signal.SIGKILL)
        return await process.wait()


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: a defined variable's value, ``$$`` for ``$``, anything else as it is."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, text)


def _key(pod: Json) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def _requests(spec: Json) -> dict[str, str]:
    wanted: dict[str, str] = {}
    for container in spec.get("containers", []):
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            for name, amount in (resources.get(section) or {}).items():
                if quantity(amount) > quantity(wanted.get(name, "0")):
                    wanted[name] = amount
    return wanted


def _unscheduled(reason: str, message: str) -> Json:
    condition = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message}
    return {"phase": "Pending", "conditions": [condition]}


def _running(container: Json, started: str) -> Json:
    return {
        "phase": "Running",
        "startTime": started,
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [_container_status(container, {"running": {"startedAt": started}}, ready=True)],
    }


def _terminated(container: Json, started: str, code: int) -> Json:
    code = 128 - code if code < 0 else code  # killed by a signal, as the container runtime reports it
    reason = "Completed" if code == 0 else "Error"
    state = {"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now_iso()}}
    return {
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [_container_status(container, state, ready=False)],
    }


def _container_status(container: Json, state: Json, ready: bool) -> Json:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "ready": ready,
        "restartCount": 0,
        "state": state,
    }


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
