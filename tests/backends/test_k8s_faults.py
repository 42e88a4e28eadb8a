"""Fault injection on the Kubernetes backend: the emulated cluster behind a fault-injecting proxy.

The proxy (:mod:`k8s_proxy`) makes list and watch fail, fails or drops
deletes, loses the answer of a create that went through, and delays
requests. Whatever happens, every object the backend created is deleted by
name, a failed delete never fails the test, and what cannot be deleted is
reported with the ``kubectl`` command that deletes it. The cluster itself is
inspected directly, never through the proxy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import k8s_scenarios as scenarios
import pytest
import yaml
from k8s_proxy import FaultProxy, Rule
from k8s_scenarios import METRICS_LINE, Target, wait_for

from pytest_hetero.backends.base import JobState
from pytest_hetero.backends.k8s_client import ResourceApi, connect
from pytest_hetero.errors import SubmitError
from pytest_hetero.metrics import parse_metrics_record

if TYPE_CHECKING:
    from k8s_harness import FakeCluster

pytest_plugins = ["k8s_harness"]

#: Every list and every watch of pods and jobs answers 500, for ever.
LIST_AND_WATCH_FAIL = (
    Rule("GET", r"/(pods|jobs)$", kind="list"),
    Rule("GET", r"/(pods|jobs)$", kind="watch"),
)


@pytest.fixture
def proxy(k8s_cluster: FakeCluster) -> Iterator[FaultProxy]:
    started = FaultProxy(k8s_cluster.url).start()
    yield started
    started.stop()


@pytest.fixture
def faulty(k8s_target: Target, proxy: FaultProxy, tmp_path: Path) -> Target:
    """The test's namespace, reached through the proxy."""
    kubeconfig = proxy.kubeconfig(k8s_target.kubeconfig, tmp_path / "kubeconfig-through-proxy")
    return dataclasses.replace(k8s_target, kubeconfig=kubeconfig)


def _left(cluster: FakeCluster, namespace: str) -> list[str]:
    return [
        f"{plural}/{o['metadata']['name']}"
        for plural in ("jobs", "pods", "secrets")
        for o in cluster.objects(plural, namespace)
    ]


def _assert_nothing_left(cluster: FakeCluster, namespace: str) -> None:
    wait_for(lambda: _left(cluster, namespace) == [], 10, f"no object left in {namespace}")
    wait_for(lambda: not cluster.processes(namespace), 10, f"no container still running in {namespace}")


def _pod_started(cluster: FakeCluster, namespace: str) -> None:
    """Wait for the node to create the Job's pod (deleted before, the Job would leave it to an emulator race)."""
    wait_for(lambda: cluster.objects("pods", namespace), 30, f"a pod in {namespace}")


def _pod_succeeded(cluster: FakeCluster, namespace: str) -> bool:
    return any((p.get("status") or {}).get("phase") == "Succeeded" for p in cluster.objects("pods", namespace))


def test_list_and_watch_failing_leave_no_completed_job_or_pod(
    k8s_cluster: FakeCluster, faulty: Target, proxy: FaultProxy
) -> None:
    proxy.add(*LIST_AND_WATCH_FAIL)
    backend = faulty.backend(kind="job")
    handle = backend.submit(faulty.spec(backend, f"echo '{METRICS_LINE}'"))
    wait_for(lambda: _pod_succeeded(k8s_cluster, faulty.namespace), 30, "the job's pod completed on the node")
    assert backend.status(handle) is JobState.PENDING  # it cannot see that: list and watch fail
    backend.close()  # the session ends (Ctrl-C, or the end of the run)
    assert backend.leftovers() == []
    _assert_nothing_left(k8s_cluster, faulty.namespace)
    assert proxy.count("DELETE", f"/jobs/{handle.name}$", "forwarded") == 1  # by name, once


def test_a_failed_delete_does_not_fail_the_test_and_is_retried(
    k8s_cluster: FakeCluster, faulty: Target, proxy: FaultProxy
) -> None:
    proxy.add(Rule("DELETE", r"/jobs/", status=503, times=3))  # every attempt of the first delete
    backend = faulty.backend(kind="job")
    output = scenarios.run(backend, faulty.spec(backend, f"echo '{METRICS_LINE}'"))  # closes the backend
    assert output.state is JobState.COMPLETED
    assert parse_metrics_record(output.stdout(), output.stdout_path).metrics["throughput_sps"].value == 123.5
    assert backend.leftovers() == []
    _assert_nothing_left(k8s_cluster, faulty.namespace)


def test_what_cannot_be_deleted_is_reported_with_the_kubectl_command_that_deletes_it(
    k8s_cluster: FakeCluster, k8s_target: Target, faulty: Target, proxy: FaultProxy
) -> None:
    proxy.add(Rule("DELETE", r"/jobs/"), *LIST_AND_WATCH_FAIL)
    backend = faulty.backend(kind="job")
    handle = backend.submit(faulty.spec(backend, "sleep 30"))
    _pod_started(k8s_cluster, faulty.namespace)
    backend.close()  # does not raise
    command = f"kubectl delete jobs.batch {handle.name} -n {faulty.namespace}"
    (leftover,) = backend.leftovers()
    assert leftover.startswith(f"{faulty.namespace}/{handle.name} was not deleted (teardown: deleting job")
    assert "500" in leftover and leftover.endswith(f"; delete it with: {command}")
    assert len(_left(k8s_cluster, faulty.namespace)) >= 1
    _run_kubectl(command, k8s_cluster, k8s_target.workdir)
    _assert_nothing_left(k8s_cluster, faulty.namespace)


def _run_kubectl(command: str, cluster: FakeCluster, directory: Path) -> None:
    """Run ``command`` as printed; kubectl sends no token over plain HTTP, so a clean proxy adds it."""
    if shutil.which("kubectl") is None:
        reason = (
            "kubectl is not installed: the printed command cannot be run here (scripts/test.sh installs it as root)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the printed kubectl command must be run: {reason}", pytrace=False)
        pytest.skip(reason)
    helper = FaultProxy(cluster.url, add_headers={"Authorization": f"Bearer {cluster.state.token}"}).start()
    try:
        kubeconfig = helper.kubeconfig(cluster.kubeconfig, directory / "kubeconfig-for-kubectl")
        environ = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        done = subprocess.run(command.split(), env=environ, capture_output=True, text=True, timeout=60)
    finally:
        helper.stop()
    assert done.returncode == 0, done.stderr


def test_a_create_whose_answer_was_lost_is_deleted_all_the_same(
    k8s_cluster: FakeCluster, faulty: Target, proxy: FaultProxy
) -> None:
    proxy.add(Rule("POST", r"/jobs$", action="lose_answer", times=1))
    backend = faulty.backend(kind="job")
    with pytest.raises(SubmitError, match="409"):  # the retry finds the object the lost answer created
        backend.submit(faulty.spec(backend, "sleep 30"))
    _pod_started(k8s_cluster, faulty.namespace)
    backend.close()
    assert backend.leftovers() == []
    _assert_nothing_left(k8s_cluster, faulty.namespace)


def test_dropped_and_delayed_requests_are_survived(k8s_cluster: FakeCluster, faulty: Target, proxy: FaultProxy) -> None:
    proxy.add(
        Rule("GET", r"/pods$", kind="list", action="drop", times=2),
        Rule("GET", r"/jobs$", kind="watch", action="delay", delay_s=0.5, times=3),
        Rule("DELETE", r"/jobs/", action="drop", times=1),
    )
    scenarios.scenario_success(faulty, "job")
    assert proxy.count("GET", r"/pods", "drop") == 2
    _assert_nothing_left(k8s_cluster, faulty.namespace)


# -- through the plugin ------------------------------------------------------------------------
PROGRAM = """
import json
metric = {"name": "throughput_sps", "value": 7.0, "unit": "samples/s"}
print(":::HETERO_METRICS " + json.dumps({"metrics": [metric], "workload": "tiny"}))
"""
SUITE = """
import pytest

@pytest.mark.hetero(command=["python", "prog.py"])
def test_prog(hetero_result):
    assert hetero_result.metric("throughput_sps") == 7.0
"""


# What fails to be deleted (the kind's plural, its kubectl spelling), and how pytest runs.
LEFTOVER_CASES = {
    "job": ("jobs", "jobs.batch", []),
    "job-under-xdist": ("jobs", "jobs.batch", ["-n", "2"]),
    "bundle-configmap": ("configmaps", "configmaps", []),
    "job-secret": ("secrets", "secrets", []),
}
#: A secret env value of the platforms below: it reaches the job through a Secret, never an output.
SECRET_VALUE = "faults-secret-8888"


@pytest.mark.parametrize(("plural", "kind", "workers"), list(LEFTOVER_CASES.values()), ids=list(LEFTOVER_CASES))
def test_a_leftover_is_printed_with_its_command_and_recorded_in_the_report(
    pytester: pytest.Pytester,
    k8s_cluster: FakeCluster,
    faulty: Target,
    proxy: FaultProxy,
    tmp_path: Path,
    plural: str,
    kind: str,
    workers: list[str],
) -> None:
    proxy.add(Rule("DELETE", f"/{plural}/"))  # every delete of it fails: the test itself must still pass
    options: dict[str, object] = {"kubeconfig": str(faulty.kubeconfig), "namespace": faulty.namespace, "kind": "job"}
    options |= {"watch_timeout_s": 2, "bundle_mount_path": str(tmp_path / "bundle-mount")}
    platform = {
        "name": "k8s-faulty",
        "accelerator": {"kind": "cpu"},
        "backend": {"kind": "kubernetes", "options": options},
        "environment": {
            "container_image": "python:3.11-slim",
            "python": sys.executable,
            "env": {"HF_AUTH": {"value": SECRET_VALUE, "secret": True}},
        },
        "resources": {"time_limit_min": 5},
    }
    pytester.makefile(".yaml", platforms=yaml.safe_dump({"version": 1, "platforms": [platform]}))
    pytester.makefile(".py", prog=PROGRAM)
    pytester.makepyfile(test_suite=SUITE)
    argv = ["--platforms-file=platforms.yaml", "--platform=k8s-faulty", "--hetero-json=out.json"]
    # Under xdist a worker closes the backend: its leftover reaches the controller through the handover.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *argv, *workers, "-q")
    result.assert_outcomes(passed=1)
    (leftover,) = json.loads((pytester.path / "out.json").read_text())["leftovers"]
    (name,) = [o["metadata"]["name"] for o in k8s_cluster.objects(plural, faulty.namespace)]
    assert leftover.endswith(f"delete it with: kubectl delete {kind} {name} -n {faulty.namespace}")
    assert f"pytest-hetero: left behind: {leftover}" in result.stdout.lines  # even under -q
    assert SECRET_VALUE not in (pytester.path / "out.json").read_text() + result.stdout.str()
    proxy.clear()
    if plural == "jobs":
        _run_kubectl(leftover.rpartition("delete it with: ")[2], k8s_cluster, tmp_path)
    else:  # kmock's discovery, which kubectl reads first, does not list configmaps
        api, _ = connect(str(faulty.kubeconfig), None, False)
        ResourceApi(plural, faulty.namespace, api).delete(name)
    _assert_nothing_left(k8s_cluster, faulty.namespace)
    assert k8s_cluster.objects("configmaps", faulty.namespace) == []


START = "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); sys.exit(pytest.main())"


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_second_signal_during_the_clean_up_deletes_everything_without_a_traceback(
    pytester: pytest.Pytester, k8s_cluster: FakeCluster, faulty: Target, proxy: FaultProxy, second: signal.Signals
) -> None:
    proxy.add(Rule("DELETE", r"/jobs/", action="delay", delay_s=2.0))  # the clean-up takes a while
    options: dict[str, object] = {"kubeconfig": str(faulty.kubeconfig), "namespace": faulty.namespace, "kind": "job"}
    platform = {
        "name": "k8s-slow",
        "accelerator": {"kind": "cpu"},
        "backend": {"kind": "kubernetes", "options": {**options, "watch_timeout_s": 2}},
        "environment": {"container_image": "busybox:1.36", "env": {"HF_AUTH": {"value": SECRET_VALUE, "secret": True}}},
        "resources": {"time_limit_min": 5},
    }
    pytester.makefile(".yaml", platforms=yaml.safe_dump({"version": 1, "platforms": [platform]}))
    pytester.makepyfile(
        test_slow='import pytest\n\n@pytest.mark.hetero(command=["sleep", "300"])\ndef test_slow():\n    pass\n'
    )
    argv = [
        "-p",
        "no:cacheprovider",
        "--platforms-file=platforms.yaml",
        "--platform=k8s-slow",
        "--hetero-json=out.json",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", START, *argv],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: k8s_cluster.processes(faulty.namespace) or proc.poll() is not None, 60, "the pod running")
        assert len(k8s_cluster.objects("secrets", faulty.namespace)) == 1  # the job's, while it runs
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: proxy.count("DELETE", r"/jobs/", "delay") or proc.poll() is not None, 30, "the delete sent")
        proc.send_signal(second)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert (proc.returncode, "Traceback" in output) == (pytest.ExitCode.INTERRUPTED, False), output
    report = json.loads((pytester.path / "out.json").read_text())
    (job,) = report["cancelled_jobs"]
    assert [(r["nodeid"], r["outcome"]) for r in report["results"]] == [
        ("test_slow.py::test_slow[k8s-slow]", "interrupted")
    ]
    assert report["leftovers"] == []
    _assert_nothing_left(k8s_cluster, faulty.namespace)
    assert job.startswith(f"{faulty.namespace}/hetero-test-slow-k8s-slow-")
