"""The kubectl command printed for a Kubernetes object the backend could not delete."""

from __future__ import annotations

from kubernetes import client as k8s

from pytest_hetero.backends.k8s_cleanup import Cleanup, kubectl_delete
from pytest_hetero.backends.k8s_client import ResourceApi

API = k8s.ApiClient()


def test_kubectl_names_each_kind_as_kubectl_spells_it() -> None:
    assert kubectl_delete(ResourceApi("pods", "ml", API), "p-1") == "kubectl delete pods p-1 -n ml"
    assert kubectl_delete(ResourceApi("jobs", "ml", API), "j-1") == "kubectl delete jobs.batch j-1 -n ml"
    ipu = ResourceApi("ipujobs", "ml", API, group="graphcore.ai", version="v1alpha1")
    assert kubectl_delete(ipu, "i-1") == "kubectl delete ipujobs.graphcore.ai i-1 -n ml"


def test_an_object_registered_and_kept_on_purpose_is_no_leftover() -> None:
    cleanup = Cleanup()
    jobs = ResourceApi("jobs", "ml", API)
    cleanup.created(jobs, "a")
    cleanup.created(jobs, "b")
    cleanup.kept(jobs, "b")
    assert cleanup.leftovers() == [
        "ml/a was not deleted (not attempted); delete it with: kubectl delete jobs.batch a -n ml"
    ]
