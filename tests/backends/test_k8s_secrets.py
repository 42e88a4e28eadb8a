"""Secrets on Kubernetes, end to end on the emulated cluster: a Secret object per job, never a plain value.

The API server must never receive a secret value in a Pod, Job or custom object
(``kubectl get pod -o yaml`` would show it); the workload must still see it in its
environment (the emulated kubelet resolves ``secretKeyRef`` from the Secret), and the
Secret must be gone when the job ends, when it is cancelled, and when list and watch
keep failing (the fault proxy, :mod:`k8s_proxy`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from k8s_proxy import FaultProxy, Rule
from k8s_scenarios import METRICS_LINE, Target, wait_for

from pytest_hetero.backends.base import JobState
from pytest_hetero.backends.kubernetes import KubernetesBackend
from pytest_hetero.errors import SubmitError

if TYPE_CHECKING:
    from k8s_harness import FakeCluster

pytest_plugins = ["k8s_harness"]

SECRETS = {
    "HF_AUTH": "hf-marked-k8s-4242",  # marked secret; its name does not look secret
    "FROM_SUBMITTER": "submitter-k8s-7171",  # by reference to the submitting environment
    "DB_URL": "postgresql://bench:urlpw-k8s-3131@db:5432/results",  # a password in a URL
}
SETUP_SECRET = "setup-k8s-5151"
ARG_SECRET = '{"password": "arg-k8s-6161"}'
VALUES = ["hf-marked-k8s-4242", "submitter-k8s-7171", "urlpw-k8s-3131", SETUP_SECRET, "arg-k8s-6161"]
#: Writes what the workload sees, then waits for the test to let it finish.
SCRIPT = """
printf '%s\\n' "$HF_AUTH" "$FROM_SUBMITTER" "$DB_URL" "$SETUP_PASSWORD" "$1" "$PLAIN" > "$SEEN.tmp"
mv "$SEEN.tmp" "$SEEN"
while [ ! -e "$SEEN.go" ]; do sleep 0.1; done
echo '{metrics}'
"""


@pytest.fixture(autouse=True)
def submitter_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E14C_SUBMITTER_SECRET", SECRETS["FROM_SUBMITTER"])


GOLDEN = Path(__file__).parent.parent / "golden" / "k8s"


def secret_backend(target: Target, kind: str, setup: bool = True) -> KubernetesBackend:
    """A platform with secrets of every sort; ``kind``: pod, job, or ipujob (the golden IPUJob template)."""
    env: dict[str, Any] = {
        "HF_AUTH": {"value": SECRETS["HF_AUTH"], "secret": True},
        "FROM_SUBMITTER": {"from_env": "E14C_SUBMITTER_SECRET"},
        "DB_URL": SECRETS["DB_URL"],
        "PLAIN": "visible-value",
    }
    environment: dict[str, Any] = {"container_image": target.image, "env": env}
    if setup:
        environment["setup"] = [f"export SETUP_PASSWORD={SETUP_SECRET}", "echo set up"]
    if kind == "ipujob":
        options = {"template": str(GOLDEN / "ipujob-template.yaml"), "accelerator_resource": False}
        ipus = {"kind": "graphcore-ipu", "count_per_node": 4}
        return KubernetesBackend(target.platform(options, environment=environment, accelerator=ipus))
    return KubernetesBackend(target.platform({"kind": kind}, environment=environment))


def secret_spec(target: Target, backend: KubernetesBackend, seen: Path) -> Any:
    spec = target.spec(backend, SCRIPT.replace("{metrics}", METRICS_LINE))
    env = {**spec.env, "SEEN": str(seen)}
    return dataclasses.replace(spec, argv=(*spec.argv, "workload", ARG_SECRET), env=env)


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def _received(cluster: FakeCluster, namespace: str) -> str:
    """Every Pod, Job and IPUJob the API server holds in ``namespace``, as text."""
    return json.dumps([cluster.objects(plural, namespace) for plural in ("pods", "jobs", "ipujobs")])


@pytest.mark.parametrize(
    ("kind", "setup"), [("job", True), ("pod", False), ("ipujob", True)], ids=["job-with-setup", "pod-argv", "ipujob"]
)
def test_secrets_reach_the_workload_through_a_secret_object_and_nowhere_else(
    k8s_cluster: FakeCluster, k8s_target: Target, tmp_path: Path, kind: str, setup: bool
) -> None:
    backend = secret_backend(k8s_target, kind, setup)
    seen = tmp_path / "seen.txt"
    try:
        handle = backend.submit(secret_spec(k8s_target, backend, seen))
        wait_for(seen.exists, 60, "the workload started")
        (secret,) = k8s_cluster.objects("secrets", k8s_target.namespace)  # there while the job runs
        assert secret["metadata"]["name"] == f"{handle.name}-env" and secret["type"] == "Opaque"
        assert secret["metadata"]["labels"]["pytest-hetero/job"] == handle.name
        data = _decoded(secret)
        assert {k: data[k] for k in SECRETS} == SECRETS and data["HETERO_SECRET_ARG_4"] == ARG_SECRET
        assert (data.get("HETERO_SECRET_SETUP_0") == f"export SETUP_PASSWORD={SETUP_SECRET}") is setup
        received = _received(k8s_cluster, k8s_target.namespace)
        assert "secretKeyRef" in received and "visible-value" in received
        assert [value for value in VALUES if value in received] == []
        expected = [*SECRETS.values(), SETUP_SECRET if setup else "", ARG_SECRET, "visible-value"]
        assert seen.read_text().splitlines() == expected
        (tmp_path / "seen.txt.go").touch()
        wait_for(lambda: backend.status(handle).finished, 60, "the job finished")
        assert backend.status(handle) is JobState.COMPLETED
        assert k8s_cluster.objects("secrets", k8s_target.namespace) == []  # deleted with the job
    finally:
        (tmp_path / "seen.txt.go").touch()
        backend.close()
    assert backend.leftovers() == []


def test_a_cancelled_job_takes_its_secret_with_it(k8s_cluster: FakeCluster, k8s_target: Target, tmp_path: Path) -> None:
    backend = secret_backend(k8s_target, "job")
    try:
        handle = backend.submit(secret_spec(k8s_target, backend, tmp_path / "seen.txt"))
        wait_for(lambda: (tmp_path / "seen.txt").exists(), 60, "the workload started")
        backend.cancel(handle)  # what an interrupted run does to each job in flight
        assert k8s_cluster.objects("secrets", k8s_target.namespace) == []
    finally:
        backend.close()
    k8s_target.assert_nothing_left(handle.run_id)
    assert backend.leftovers() == []


@pytest.fixture
def proxy(k8s_cluster: FakeCluster) -> Iterator[FaultProxy]:
    started = FaultProxy(k8s_cluster.url).start()
    yield started
    started.stop()


def test_list_and_watch_failing_leave_no_secret(
    k8s_cluster: FakeCluster, k8s_target: Target, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.add(Rule("GET", r"/(pods|jobs|secrets)$", kind="list"), Rule("GET", r"/(pods|jobs)$", kind="watch"))
    faulty = dataclasses.replace(k8s_target, kubeconfig=proxy.kubeconfig(k8s_target.kubeconfig, tmp_path / "kc"))
    backend = secret_backend(faulty, "job")
    (tmp_path / "seen.txt.go").touch()  # runs to the end at once
    handle = backend.submit(secret_spec(faulty, backend, tmp_path / "seen.txt"))
    wait_for(lambda: (tmp_path / "seen.txt").exists(), 60, "the workload started")
    assert backend.status(handle) is JobState.PENDING  # it cannot see the job: list and watch fail
    backend.close()  # the session ends
    assert backend.leftovers() == []
    assert k8s_cluster.objects("secrets", k8s_target.namespace) == []
    assert proxy.count("DELETE", f"/secrets/{handle.name}-env$", "forwarded") == 1  # by name, once


def test_a_secret_that_cannot_be_created_fails_the_submission_and_creates_no_job(
    k8s_cluster: FakeCluster, k8s_target: Target, tmp_path: Path
) -> None:
    k8s_cluster.fail("create", "secrets", 403, "Forbidden", 'secrets is forbidden: User "bench" cannot create')
    backend = secret_backend(k8s_target, "job")
    try:
        with pytest.raises(SubmitError, match=r"creating secret hetero-.*-env in namespace .*: .*403"):
            backend.submit(secret_spec(k8s_target, backend, tmp_path / "seen.txt"))
    finally:
        backend.close()
    assert k8s_cluster.objects("jobs", k8s_target.namespace) == []
    assert backend.leftovers() == []


def test_a_secret_whose_create_answer_was_lost_is_used_and_deleted(
    k8s_cluster: FakeCluster, k8s_target: Target, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.add(Rule("POST", r"/secrets$", action="lose_answer", times=1))  # the retry finds it there: 409
    faulty = dataclasses.replace(k8s_target, kubeconfig=proxy.kubeconfig(k8s_target.kubeconfig, tmp_path / "kc"))
    backend = secret_backend(faulty, "job")
    (tmp_path / "seen.txt.go").touch()
    try:
        handle = backend.submit(secret_spec(faulty, backend, tmp_path / "seen.txt"))
        wait_for(lambda: backend.status(handle).finished, 60, "the job finished")
        assert backend.status(handle) is JobState.COMPLETED
        assert (tmp_path / "seen.txt").read_text().splitlines()[0] == SECRETS["HF_AUTH"]
    finally:
        backend.close()
    assert proxy.count("POST", r"/secrets$", "lose_answer") == 1
    assert k8s_cluster.objects("secrets", k8s_target.namespace) == [] and backend.leftovers() == []


def test_a_job_a_full_quota_deferred_leaves_no_secret_when_cancelled(
    k8s_cluster: FakeCluster, k8s_target: Target, tmp_path: Path
) -> None:
    k8s_cluster.set_quota(k8s_target.namespace, 0)  # every pod create: 403 exceeded quota
    backend = secret_backend(k8s_target, "pod")
    try:
        handle = backend.submit(secret_spec(k8s_target, backend, tmp_path / "seen.txt"))
        assert backend.status(handle) is JobState.PENDING and handle.manifest is not None  # deferred
        assert len(k8s_cluster.objects("secrets", k8s_target.namespace)) == 1  # created before the refusal
        backend.cancel(handle)
        assert k8s_cluster.objects("secrets", k8s_target.namespace) == []
    finally:
        backend.close()
        k8s_cluster.set_quota(k8s_target.namespace, None)
    assert k8s_cluster.objects("pods", k8s_target.namespace) == [] and backend.leftovers() == []
