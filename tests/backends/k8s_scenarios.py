"""Scenarios for the Kubernetes backend, run alike on the emulator and a real cluster.

A :class:`Target` is a namespace on a cluster reached through a kubeconfig.
The scenario functions drive :class:`KubernetesBackend` through its public
interface and check what a user sees: the result, the error message, the
logs, and that no object of the run is left behind. ``test_k8s_emulated``
runs them against kmock + the node agent; ``test_k8s_live`` against
whatever cluster KUBECONFIG names. Nothing here imports kmock.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pytest_hetero.backends.base import JobHandle, JobOutput, JobSpec
from pytest_hetero.backends.k8s_client import ResourceApi, connect
from pytest_hetero.backends.k8s_manifest import LABEL_RUN_ID
from pytest_hetero.backends.kubernetes import KubernetesBackend
from pytest_hetero.config.loader import parse_catalogue
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import HeteroError, JobFailedError, JobTimeoutError
from pytest_hetero.metrics import parse_metrics_record
from pytest_hetero.scheduler import run_job, wait_for_handle

Json = dict[str, Any]
E = TypeVar("E", bound=HeteroError)
METRICS_LINE = (
    ':::HETERO_METRICS {"metrics": [{"name": "throughput_sps", "value": 123.5, "unit": "samples/s", '
    '"higher_is_better": true}], "workload": "sh"}'
)


@dataclass
class Target:
    """Where scenarios run; ``options`` are added to every platform's backend options."""

    kubeconfig: Path
    namespace: str
    workdir: Path
    image: str = "busybox:1.36"
    options: Mapping[str, Any] = field(default_factory=dict)
    #: How long deleted objects may take to disappear (a real pod's grace period is 30 s).
    settle_s: float = 10.0

    def platform(self, options: Mapping[str, Any] | None = None, **entry: Any) -> Platform:
        """A validated catalogue entry for the kubernetes backend (``entry`` overrides fields)."""
        backend_options = {
            "kubeconfig": str(self.kubeconfig),
            "namespace": self.namespace,
            **self.options,
            **(options or {}),
        }
        platform = {
            "name": "k8s-test",
            "accelerator": {"kind": "cpu", "model": "emulated"},
            "backend": {"kind": "kubernetes", "options": backend_options},
            "resources": {"cpus_per_task": 1, "mem_gb": 1, "time_limit_min": 5},
            "environment": {"container_image": self.image},
            **entry,
        }
        catalogue = parse_catalogue(
            {"version": 1, "platforms": [platform]}, source=str(self.workdir / "platforms.yaml")
        )
        return catalogue.platforms[0]

    def backend(self, **options: Any) -> KubernetesBackend:
        return KubernetesBackend(self.platform(options))

    def spec(self, backend: KubernetesBackend, script: str, timeout_s: float = 60.0, run_id: str = "") -> JobSpec:
        """A job running ``script`` under ``/bin/sh`` with a fresh run id (or ``run_id``)."""
        name = f"test_k8s_{uuid.uuid4().hex[:6]}"
        env = {"HETERO_RUN_ID": run_id or f"run-{uuid.uuid4().hex[:10]}", "HETERO_PLATFORM": backend.platform.name}
        return JobSpec(
            name=name,
            argv=("/bin/sh", "-c", script),
            workdir=self.workdir / name,
            platform=backend.platform,
            env=env,
            timeout_s=timeout_s,
        )

    def remaining(self, run_id: str, plurals: tuple[str, ...] = ("pods", "jobs")) -> list[str]:
        """``plural/name`` of every object still labelled with ``run_id``."""
        api, _ = connect(str(self.kubeconfig), None, False)
        found = []
        for plural in plurals:
            items = ResourceApi(plural, self.namespace, api).items(f"{LABEL_RUN_ID}={run_id}")
            found += [f"{plural}/{item['metadata']['name']}" for item in items]
        return found

    def assert_nothing_left(self, run_id: str) -> None:
        wait_for(lambda: self.remaining(run_id) == [], self.settle_s, f"no object of run {run_id} left")


def wait_for(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not the case after {timeout_s:g} s")
        time.sleep(0.05)


def wait_running(backend: KubernetesBackend, handle: JobHandle, timeout_s: float = 60.0) -> None:
    wait_for(lambda: backend.status(handle).value == "RUNNING", timeout_s, f"{handle.job_id} running")


def wait_failure(backend: KubernetesBackend, handle: JobHandle, error_type: type[E]) -> E:
    """Wait for ``handle`` through the scheduler's loop; the job must end with an ``error_type``."""
    job = wait_for_handle(backend, handle)
    assert isinstance(job.error, error_type), f"expected a {error_type.__name__}, got {job.error!r} ({job.state})"
    return job.error


def run_to_pending_timeout(backend: KubernetesBackend, spec: JobSpec, timeout_s: float = 60) -> JobFailedError:
    """Submit, wait until Kubernetes says why the job waits, then until the pending timeout ends it."""
    handle = backend.submit(spec)
    try:
        wait_for(lambda: backend.pending_reason(handle), timeout_s, f"a pending reason for {handle.job_id}")
        return wait_failure(backend, handle, JobFailedError)
    finally:
        backend.close()


def run(backend: KubernetesBackend, spec: JobSpec) -> JobOutput:
    """One job through the scheduler (:func:`run_job`), then close(), as a session would."""
    try:
        return run_job(backend, spec)
    finally:
        backend.close()


# -- the shared scenarios ---------------------------------------------------------------
def scenario_success(target: Target, kind: str) -> JobOutput:
    backend = target.backend(kind=kind)
    spec = target.spec(backend, f"echo starting on $HETERO_PLATFORM; echo '{METRICS_LINE}'")
    output = run(backend, spec)
    record = parse_metrics_record(output.stdout(), output.stdout_path)
    assert record.metrics["throughput_sps"].value == 123.5
    assert "starting on k8s-test" in output.stdout()
    assert output.exit_code == 0
    target.assert_nothing_left(spec.env["HETERO_RUN_ID"])
    return output


def scenario_failure(target: Target) -> JobFailedError:
    backend = target.backend()
    spec = target.spec(backend, "echo working; echo 'boom: simulated crash' >&2; exit 3")
    with pytest.raises(JobFailedError) as info:
        run(backend, spec)
    assert "wait: the workload exited with status 3" in str(info.value)
    assert "boom: simulated crash" in info.value.log_tail
    target.assert_nothing_left(spec.env["HETERO_RUN_ID"])
    return info.value


def scenario_pending_forever(target: Target) -> JobFailedError:
    backend = target.backend(node_selector={"pytest-hetero.test/no-such-node": "true"}, pending_timeout_s=2)
    spec = target.spec(backend, "echo never")
    error = run_to_pending_timeout(backend, spec)
    message = str(error)
    assert "the job was still pending 2 s after submission" in message
    assert "Unschedulable" in message and "node affinity/selector" in message
    target.assert_nothing_left(spec.env["HETERO_RUN_ID"])
    return error


def scenario_deadline_exceeded(target: Target, timeout_s: float = 2) -> JobTimeoutError:
    backend = target.backend(kind="job")
    spec = target.spec(backend, "echo started; sleep 600", timeout_s=timeout_s)
    with pytest.raises(JobTimeoutError) as info:
        run(backend, spec)
    assert "ran past its time limit" in str(info.value)
    assert "started" in spec.stdout_path.read_text()
    assert "DeadlineExceeded" in spec.stderr_path.read_text()
    target.assert_nothing_left(spec.env["HETERO_RUN_ID"])
    return info.value


def scenario_close_deletes_everything(target: Target) -> str:
    backend = target.backend(kind="job")
    first = target.spec(backend, "echo one; sleep 60")
    second = target.spec(backend, "echo two; sleep 60", run_id=first.env["HETERO_RUN_ID"])
    handles = [backend.submit(first), backend.submit(second)]
    for handle in handles:
        wait_running(backend, handle)
    run_id = first.env["HETERO_RUN_ID"]
    assert len(target.remaining(run_id, ("jobs",))) == 2
    backend.close()
    target.assert_nothing_left(run_id)
    return run_id
