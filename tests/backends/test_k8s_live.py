"""The kubernetes backend against a real cluster: opt-in, never by default.

Runs the scenarios of test_k8s_emulated (k8s_scenarios) against the cluster
KUBECONFIG names::

    KUBECONFIG=~/.kube/config pytest tests/backends/test_k8s_live.py --hetero-live-kubernetes

(``HETERO_LIVE_KUBERNETES=1`` does the same where the option is not
registered.) Optional: ``HETERO_LIVE_K8S_NAMESPACE`` (default: the context's
namespace) and ``HETERO_LIVE_K8S_IMAGE`` (default ``busybox:1.36``; any image
with ``/bin/sh``, ``echo`` and ``sleep`` that runs as a non-root user). The
account needs create/get/list/watch/delete/patch on pods and jobs, list on
events, and get on pods/log in that namespace.
"""

from __future__ import annotations

import os
from pathlib import Path

import k8s_scenarios as scenarios
import pytest
from k8s_scenarios import Target
from kubernetes import client as k8s

from pytest_hetero.backends.k8s_client import TRANSPORT_ERRORS, connect
from pytest_hetero.errors import ConfigError

OPTION = "--hetero-live-kubernetes"


@pytest.fixture(scope="module")
def live_cluster(request: pytest.FixtureRequest) -> tuple[Path, str]:
    """The kubeconfig and namespace of the live cluster, or skip saying why."""
    asked = request.config.getoption(OPTION, default=False) or os.environ.get("HETERO_LIVE_KUBERNETES") == "1"
    if not asked:
        pytest.skip(f"live Kubernetes suite not requested: pass {OPTION} (or HETERO_LIVE_KUBERNETES=1) with KUBECONFIG")
    # Asked for, the suite fails rather than skips when the cluster cannot be used: a CI job that
    # opts in must not pass green on a broken KUBECONFIG.
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or not Path(kubeconfig).is_file():
        pytest.fail(f"{OPTION} needs KUBECONFIG naming a kube config file (got {kubeconfig!r})", pytrace=False)
    try:
        api, namespace = connect(kubeconfig, None, False)
        k8s.VersionApi(api).get_code(_request_timeout=(10, 20))
    except ConfigError as exc:
        pytest.fail(f"{OPTION}: {exc}", pytrace=False)
    except (k8s.ApiException, *TRANSPORT_ERRORS) as exc:
        pytest.fail(f"{OPTION}: the cluster of KUBECONFIG={kubeconfig} does not answer: {exc}", pytrace=False)
    return Path(kubeconfig), os.environ.get("HETERO_LIVE_K8S_NAMESPACE", namespace)


@pytest.fixture
def live_target(live_cluster: tuple[Path, str], tmp_path: Path) -> Target:
    kubeconfig, namespace = live_cluster
    image = os.environ.get("HETERO_LIVE_K8S_IMAGE", "busybox:1.36")
    return Target(kubeconfig, namespace, tmp_path, image=image, options={"pending_timeout_s": 300}, settle_s=90)


@pytest.mark.parametrize("kind", ["pod", "job"])
def test_success_with_metrics(live_target: Target, kind: str) -> None:
    scenarios.scenario_success(live_target, kind)


def test_failure_reports_exit_status_and_log(live_target: Target) -> None:
    scenarios.scenario_failure(live_target)


def test_pending_forever_fails_with_the_reason(live_target: Target) -> None:
    scenarios.scenario_pending_forever(live_target)


def test_deadline_exceeded(live_target: Target) -> None:
    scenarios.scenario_deadline_exceeded(live_target, timeout_s=20)  # the pod's clock includes the image pull


def test_close_deletes_everything(live_target: Target) -> None:
    scenarios.scenario_close_deletes_everything(live_target)
