"""Kubernetes emulator: a trivial pod's submit-to-result through the plugin against direct client calls.

Starts the project's Kubernetes API emulator (``tests/backends/k8s_harness.py``:
kmock plus a node agent that runs each pod's command as a local process), then,
alternating, N times each:

* plugin: ``run_job`` on one Kubernetes backend (``kind: pod``), as a session
  keeps one per platform, every job with the same run id (``HETERO_RUN_ID``:
  one per pytest run, so one watch per run; a fresh id per job would start
  two more watch streams per job, which no pytest run does): create, wait
  through the scheduler's loop (woken by the backend's watch), collect the
  log (the pod is deleted once finished);
* direct: the official client's ``create_namespaced_pod``, a ``watch`` of the
  namespace's pods until this one has succeeded, ``read_namespaced_pod_log``,
  ``delete_namespaced_pod``.

The first of each is a warm-up (connections, watches) and not counted.
Prints the medians and their ratio. Usage::

    .venv/bin/python scripts/bench-k8s.py --pods 10
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "backends"))

from k8s_harness import FakeCluster
from k8s_scenarios import Target
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from pytest_hetero.backends.kubernetes import KubernetesBackend
from pytest_hetero.scheduler import run_job

SCRIPT = 'echo \':::HETERO_METRICS {"metrics": [{"name": "x_per_s", "value": 1}]}\''


def through_plugin(backend: KubernetesBackend, target: Target, run_id: str) -> float:
    spec = target.spec(backend, SCRIPT, run_id=run_id)
    started = time.perf_counter()
    output = run_job(backend, spec)
    assert ":::HETERO_METRICS" in output.stdout()
    return time.perf_counter() - started


def direct(api: k8s.CoreV1Api, namespace: str, image: str) -> float:
    name = f"direct-{uuid.uuid4().hex[:8]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": image, "command": ["/bin/sh", "-c", SCRIPT]}],
        },
    }
    started = time.perf_counter()
    api.create_namespaced_pod(namespace, pod)
    watch = k8s_watch.Watch()
    for event in watch.stream(api.list_namespaced_pod, namespace, timeout_seconds=60):
        obj = event["object"]
        if obj.metadata.name == name and obj.status is not None and obj.status.phase in ("Succeeded", "Failed"):
            watch.stop()
    assert ":::HETERO_METRICS" in api.read_namespaced_pod_log(name, namespace)
    api.delete_namespaced_pod(name, namespace)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = FakeCluster(Path(tmp)).start()
        namespace = "bench"
        cluster.add_namespace(namespace)
        target = Target(cluster.kubeconfig, namespace, Path(tmp) / "work")
        api_client = k8s_config.new_client_from_config(str(cluster.kubeconfig))
        api = k8s.CoreV1Api(api_client)
        backend = target.backend(kind="pod")  # one per platform and session, as in a pytest run
        plugin_s, direct_s = [], []
        run_id = f"bench-{uuid.uuid4().hex[:8]}"  # one per pytest run
        for _ in range(args.pods + 1):
            plugin_s.append(through_plugin(backend, target, run_id))
            direct_s.append(direct(api, namespace, target.image))
        plugin_s, direct_s = plugin_s[1:], direct_s[1:]  # the first of each warms up (connections, watches)
        backend.close()
        a, b = statistics.median(plugin_s), statistics.median(direct_s)
        print(f"{args.pods} pods: plugin {a:.3f} s, direct client {b:.3f} s, ratio {a / b:.2f}", flush=True)
        api_client.close()
        with contextlib.suppress(TimeoutError):  # the emulator's shutdown may outwait open streams
            cluster.stop()


if __name__ == "__main__":
    main()
