"""The kubernetes backend end to end: the real client over HTTP to an emulated cluster.

kmock serves the API (gaps filled in k8s_apiserver) and a node agent runs each
pod's command as a local process (k8s_node). See docs/kubernetes.md for what
this covers and what needs a real cluster (tests/backends/test_k8s_live.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import k8s_scenarios as scenarios
import pytest
import yaml
from k8s_scenarios import METRICS_LINE, Target, wait_for, wait_running
from kubernetes import client as k8s

from pytest_hetero.backends.base import JobState
from pytest_hetero.backends.k8s_client import connect
from pytest_hetero.backends.k8s_manifest import LABEL_KEEP, LABEL_RUN_ID
from pytest_hetero.errors import JobFailedError, SubmitError
from pytest_hetero.metrics import parse_metrics_record

if TYPE_CHECKING:
    from k8s_harness import FakeCluster

pytest_plugins = ["k8s_harness"]

GOLDEN = Path(__file__).parent.parent / "golden" / "k8s"


# -- the scenarios shared with the live suite ------------------------------------------------
@pytest.mark.parametrize("kind", ["pod", "job"])
def test_success_with_metrics(k8s_target: Target, kind: str) -> None:
    output = scenarios.scenario_success(k8s_target, kind)
    assert output.elapsed_s < 10


def test_failure_reports_exit_status_and_log(k8s_target: Target) -> None:
    error = scenarios.scenario_failure(k8s_target)
    assert "BackoffLimitExceeded" in error.log_tail  # Kubernetes' account, from stderr.log


def test_pending_forever_fails_with_the_reason(k8s_target: Target) -> None:
    scenarios.scenario_pending_forever(k8s_target)


def test_deadline_exceeded(k8s_target: Target) -> None:
    scenarios.scenario_deadline_exceeded(k8s_target)


def test_close_deletes_everything_and_stops_the_containers(k8s_target: Target, k8s_cluster: FakeCluster) -> None:
    scenarios.scenario_close_deletes_everything(k8s_target)
    wait_for(lambda: not k8s_cluster.processes(k8s_target.namespace), 5, "containers stopped")


# -- pending reasons ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "options", "expected"),
    [
        (
            {"accelerator": {"kind": "nvidia-gpu", "count_per_node": 4}},
            {},
            r"Unschedulable: 0/1 nodes are available: 1 Insufficient nvidia\.com/gpu\.",
        ),
        (
            {"environment": {"container_image": "registry.invalid/team/missing:1"}},
            {},
            r'(ErrImagePull|ImagePullBackOff): .*image "registry\.invalid/team/missing:1"',
        ),
        (
            {},
            {"queue_name": "gpu-benchmarks"},
            r"not admitted by Kueue: the Job is suspended, waiting in queue 'gpu-benchmarks'",
        ),
    ],
    ids=["unschedulable", "image-pull", "kueue"],
)
def test_pending_reason_is_surfaced(
    k8s_target: Target, entry: dict[str, Any], options: dict[str, Any], expected: str
) -> None:
    from pytest_hetero.backends.kubernetes import KubernetesBackend

    backend = KubernetesBackend(k8s_target.platform({"pending_timeout_s": 1.5, **options}, **entry))
    spec = k8s_target.spec(backend, "echo never")
    error = scenarios.run_to_pending_timeout(backend, spec)
    assert re.search(expected, str(error)), str(error)
    assert str(error).startswith("wait: the job was still pending 1.5 s after submission")
    k8s_target.assert_nothing_left(spec.env["HETERO_RUN_ID"])


def test_kueue_admission_resumes_the_job(k8s_target: Target) -> None:
    backend = k8s_target.backend(queue_name="gpu-benchmarks")
    spec = k8s_target.spec(backend, f"echo '{METRICS_LINE}'")
    handle = backend.submit(spec)
    wait_for(lambda: "not admitted by Kueue" in backend.pending_reason(handle), 10, "suspended")
    api, _ = connect(str(k8s_target.kubeconfig), None, False)
    k8s.BatchV1Api(api).patch_namespaced_job(handle.name, k8s_target.namespace, {"spec": {"suspend": False}})
    wait_for(lambda: backend.status(handle).finished, 10, "admitted job finished")
    output = backend.collect(handle)
    backend.close()
    assert output.state is JobState.COMPLETED
    assert "throughput_sps" in parse_metrics_record(output.stdout(), output.stdout_path).metrics


def test_quota_full_waits_for_room_then_runs(k8s_target: Target, k8s_cluster: FakeCluster) -> None:
    k8s_cluster.set_quota(k8s_target.namespace, pods=1)
    backend = k8s_target.backend(kind="pod")
    first = backend.submit(k8s_target.spec(backend, "sleep 1; echo first"))
    second = backend.submit(k8s_target.spec(backend, "echo second"))
    assert backend.status(second) is JobState.PENDING
    assert "exceeded quota: hetero-quota" in backend.pending_reason(second)
    wait_for(lambda: backend.status(first).finished and backend.status(second).finished, 15, "both finished")
    backend.close()
    assert backend.collect(second).stdout() == "second\n"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("pod", "exceeded quota: hetero-quota, requested: pods=1, used: pods=0, limited: pods=0"),
        ("job", "FailedCreate: Error creating: pods"),
    ],
)
def test_quota_never_frees_fails_with_the_reason(
    k8s_target: Target, k8s_cluster: FakeCluster, kind: str, expected: str
) -> None:
    k8s_cluster.set_quota(k8s_target.namespace, pods=0)
    backend = k8s_target.backend(kind=kind, pending_timeout_s=1.5)
    spec = k8s_target.spec(backend, "echo never")
    handle = backend.submit(spec)
    # A Job's reason is read from its events when the timeout strikes: let the controller write one.
    wait_for(lambda: kind == "pod" or k8s_cluster.objects("events", k8s_target.namespace), 10, "a FailedCreate event")
    error = scenarios.wait_failure(backend, handle, JobFailedError)
    backend.close()
    assert expected in str(error)
    k8s_target.assert_nothing_left(spec.env["HETERO_RUN_ID"])


# -- clean-up ----------------------------------------------------------------------------------
def test_keep_failed_keeps_the_object_and_close_spares_it(k8s_target: Target) -> None:
    backend = k8s_target.backend(kind="job", keep_failed=True)
    spec = k8s_target.spec(backend, "exit 7")
    with pytest.raises(JobFailedError, match="exited with status 7"):
        scenarios.run(backend, spec)
    kept = k8s_target.remaining(spec.env["HETERO_RUN_ID"], ("jobs",))
    assert len(kept) == 1
    api, _ = connect(str(k8s_target.kubeconfig), None, False)
    job = k8s.BatchV1Api(api).read_namespaced_job(kept[0].split("/")[1], k8s_target.namespace)
    meta = job.metadata
    assert meta is not None and meta.labels is not None and meta.name is not None
    assert meta.labels[LABEL_KEEP] == "true"
    k8s.BatchV1Api(api).delete_namespaced_job(meta.name, k8s_target.namespace)


def test_cancel_deletes_the_object_and_stops_the_container(k8s_target: Target, k8s_cluster: FakeCluster) -> None:
    backend = k8s_target.backend(kind="pod")
    spec = k8s_target.spec(backend, "sleep 60")
    handle = backend.submit(spec)
    wait_running(backend, handle)
    backend.cancel(handle)
    backend.cancel(handle)  # idempotent
    assert backend.status(handle) is JobState.CANCELLED
    wait_for(lambda: not k8s_cluster.processes(k8s_target.namespace), 5, "container stopped")
    k8s_target.assert_nothing_left(spec.env["HETERO_RUN_ID"])
    backend.close()


def test_interrupt_deletes_every_object_of_the_run(
    k8s_cluster: FakeCluster, k8s_target: Target, pytester: pytest.Pytester
) -> None:
    """Ctrl-C on a pytest run with two queued benchmarks leaves nothing behind."""
    write_suite(pytester, k8s_target, "sleep 60", count=2, max_jobs=2)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--platform=k8s-emulated"]
    proc = subprocess.Popen(
        argv, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(
            lambda: len(k8s_cluster.processes(k8s_target.namespace)) == 2 or proc.poll() is not None,
            20,
            "both containers running",
        )
        assert proc.poll() is None, proc.communicate()[0]
        run_ids = {pod["metadata"]["labels"][LABEL_RUN_ID] for pod in k8s_cluster.objects("pods", k8s_target.namespace)}
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 2, output  # pytest's "interrupted"
    (run_id,) = run_ids
    k8s_target.assert_nothing_left(run_id)
    wait_for(lambda: not k8s_cluster.processes(k8s_target.namespace), 5, "containers stopped")


# -- through pytest: metrics parsed, failures reported, dry run --------------------------------
def write_suite(
    pytester: pytest.Pytester, target: Target, script: str, count: int = 1, max_jobs: int = 1, **options: Any
) -> None:
    platform = {
        "name": "k8s-emulated",
        "accelerator": {"kind": "cpu"},
        "backend": {
            "kind": "kubernetes",
            "options": {
                "kubeconfig": str(target.kubeconfig),
                "namespace": target.namespace,
                "watch_timeout_s": 2,
                **options,
            },
        },
        "environment": {"container_image": "busybox:1.36", "env": {"API_TOKEN": "s3cr3t-value"}},
        "max_jobs": max_jobs,
    }
    pytester.makefile(".yaml", platforms=yaml.safe_dump({"version": 1, "platforms": [platform]}))
    pytester.makeini("[pytest]\nhetero_platforms = platforms.yaml\n")
    tests = "\n".join(
        textwrap.dedent(f"""
        @pytest.mark.hetero(command=["/bin/sh", "-c", {script!r}])
        def test_bench_{i}(hetero_result):
            assert hetero_result.metric("throughput_sps") == 123.5
        """)
        for i in range(count)
    )
    pytester.makepyfile(test_suite="import pytest\n" + tests)


def test_pytest_run_parses_metrics_and_reports_failures(pytester: pytest.Pytester, k8s_target: Target) -> None:
    write_suite(pytester, k8s_target, f"echo '{METRICS_LINE}'", count=2)
    pytester.makepyfile(
        test_failing=textwrap.dedent("""
        import pytest
        @pytest.mark.hetero(command=["/bin/sh", "-c", "echo crashing; exit 4"])
        def test_crash(hetero_result):
            pass
        """)
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--platform=k8s-emulated", "--hetero-json=report.json"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*wait: the workload exited with status 4*", "*crashing*"])
    report = json.loads((pytester.path / "report.json").read_text())
    passed = [r for r in report["results"] if r["outcome"] == "passed"]
    assert [r["metrics"]["throughput_sps"]["value"] for r in passed] == [123.5, 123.5]
    assert {r["platform"]["name"] for r in report["results"]} == {"k8s-emulated"}
    assert all(r["job"]["id"].startswith(f"{k8s_target.namespace}/hetero-test-") for r in report["results"])


def test_dry_run_prints_the_manifest_without_secrets(pytester: pytest.Pytester, k8s_target: Target) -> None:
    write_suite(pytester, k8s_target, "echo hi", kind="pod")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--platform=k8s-emulated", "--hetero-dry-run")
    text = result.stdout.str()
    assert "kind: Pod" in text and f"namespace: {k8s_target.namespace}" in text
    assert "s3cr3t-value" not in text and "secretKeyRef:" in text and "key: API_TOKEN" in text


# -- custom resources -----------------------------------------------------------------------------
def test_ipujob_template_runs_through_the_custom_objects_api(k8s_target: Target, k8s_cluster: FakeCluster) -> None:
    options = {"template": str(GOLDEN / "ipujob-template.yaml"), "accelerator_resource": False}
    output = scenarios.run(*_backend_and_spec(k8s_target, options, f"echo on IPUs; echo '{METRICS_LINE}'"))
    assert "throughput_sps" in parse_metrics_record(output.stdout(), output.stdout_path).metrics
    assert not k8s_cluster.objects("ipujobs", k8s_target.namespace)
    assert "ipujob" in output.stderr_path.read_text() and "Succeeded" in output.stderr_path.read_text()


def _backend_and_spec(target: Target, options: dict[str, Any], script: str) -> tuple[Any, Any]:
    from pytest_hetero.backends.kubernetes import KubernetesBackend

    backend = KubernetesBackend(target.platform(options, accelerator={"kind": "graphcore-ipu", "count_per_node": 4}))
    return backend, target.spec(backend, script)


# -- API errors ----------------------------------------------------------------------------------
FORBIDDEN = 'pods is forbidden: User "system:serviceaccount:ci:runner" cannot create resource "pods"'


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("401", "answered 401 Unauthorized: Unauthorized; the credentials were rejected"),
        ("403", f"answered 403 Forbidden: {FORBIDDEN}"),
        ("404", 'answered 404 Not Found: namespaces "no-such-namespace" not found; check that the namespace exists'),
        ("409", "answered 409 Conflict: object exists; an object of that name already exists"),
        (
            "422",
            "answered 422 Unprocessable Entity: Pod is invalid: spec.containers[0].image: Required value; "
            "the API server found the manifest invalid; inspect it with --hetero-dry-run",
        ),
        ("500", "answered 500 Internal Server Error: etcdserver: request timed out; the API server failed"),
        ("refused", "cannot reach the Kubernetes API server"),
    ],
)
def test_api_errors_become_clear_launch_errors(
    k8s_cluster: FakeCluster, k8s_target: Target, tmp_path: Path, case: str, expected: str
) -> None:
    options: dict[str, Any] = {"kind": "pod"}
    if case == "401":
        options["kubeconfig"] = str(k8s_cluster.write_kubeconfig(tmp_path / "bad-token", token="expired"))
    elif case == "404":
        options["namespace"] = "no-such-namespace"
    elif case == "refused":
        options["kubeconfig"] = str(k8s_cluster.write_kubeconfig(tmp_path / "closed", server="http://127.0.0.1:9"))
    else:
        reasons = {"403": "Forbidden", "409": "AlreadyExists", "422": "Invalid", "500": "InternalError"}
        messages = {
            "403": FORBIDDEN,
            "409": "object exists",
            "422": "Pod is invalid: spec.containers[0].image: Required value",
            "500": "etcdserver: request timed out",
        }
        k8s_cluster.fail("create", "pods", int(case), reasons[case], messages[case], times=5)
    backend = k8s_target.backend(**options)
    with pytest.raises(SubmitError) as info:
        backend.submit(k8s_target.spec(backend, "echo never"))
    message = str(info.value)
    assert message.startswith("launch: creating pod hetero-test-k8s-")
    assert expected in message
    assert info.value.__cause__ is not None
    k8s_cluster.state.faults.clear()
    backend.close()


def test_a_passing_server_error_is_retried(k8s_cluster: FakeCluster, k8s_target: Target) -> None:
    k8s_cluster.fail("create", "jobs", 503, "ServiceUnavailable", "the server is currently unable to handle it")
    scenarios.scenario_success(k8s_target, "job")


def test_watch_forbidden_fails_the_wait_stage(k8s_cluster: FakeCluster, k8s_target: Target) -> None:
    k8s_cluster.fail("list", "jobs", 403, "Forbidden", 'jobs.batch is forbidden: cannot list resource "jobs"', 99)
    backend = k8s_target.backend(kind="job")
    spec = k8s_target.spec(backend, "echo hi")
    with pytest.raises(JobFailedError) as info:
        scenarios.run(backend, spec)
    k8s_cluster.state.faults.clear()
    assert str(info.value).startswith(
        f"wait: watching jobs in namespace {k8s_target.namespace}: the API server answered 403 Forbidden"
    )
    # Deleted by name, though listing was forbidden: nothing left, nothing to warn about. (Only the Job is
    # checked: the emulated node may create its pod just after the Job is deleted, which its GC then misses.)
    assert backend.leftovers() == []
    assert k8s_target.remaining(spec.env["HETERO_RUN_ID"], ("jobs",)) == []


def test_watch_resumes_from_its_resource_version_and_relists_when_gone(
    k8s_cluster: FakeCluster, k8s_target: Target
) -> None:
    backend = k8s_target.backend(kind="job", watch_timeout_s=1)
    spec = k8s_target.spec(backend, f"sleep 2.5; echo '{METRICS_LINE}'")
    handle = backend.submit(spec)
    wait_running(backend, handle)
    k8s_cluster.compact()
    wait_for(lambda: backend.status(handle).finished, 15, "job finished")
    backend.close()
    assert backend.collect(handle).state is JobState.COMPLETED
    watches = [p for p in k8s_cluster.requests("watch", "jobs") if p.get("labelSelector", "").find(handle.run_id) >= 0]
    resumed = [p for p in watches if p.get("resourceVersion") not in (None, "", "0")]
    assert len(resumed) >= 2, watches  # streams ended by timeoutSeconds were resumed, not restarted
    lists = [p for p in k8s_cluster.requests("list", "jobs") if handle.run_id in p.get("labelSelector", "")]
    assert len(lists) >= 2  # 410 Gone after the compaction made it list again


def test_render_returns_yaml(k8s_target: Target) -> None:
    backend = k8s_target.backend(kind="pod")
    manifest = yaml.safe_load(backend.render(k8s_target.spec(backend, "echo hi")))
    assert manifest["kind"] == "Pod" and manifest["metadata"]["namespace"] == k8s_target.namespace
    assert manifest["spec"]["containers"][0]["command"] == ["/bin/sh", "-c", "echo hi"]
