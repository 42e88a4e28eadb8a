"""Deleting what the Kubernetes backend created: by name, retried, and what is left said plainly.

Every object is registered *before* its create request (a create whose answer
was lost may still have gone through) and deleted by its name, never through
a label-selector listing: when list and watch keep failing, a listing fails
too, and a clean-up that depends on it left a completed Job and its Pod
behind. A delete that still fails after retries does not fail the test (what
was measured stands); it is retried when the backend closes, and whatever is
still there then is a *leftover*: printed in the terminal summary with the
``kubectl delete`` command that removes it, and recorded in the JSON report.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pydantic
from kubernetes import client as k8s

from pytest_hetero.backends.k8s_client import TRANSPORT_ERRORS, ResourceApi, api_error, with_retries
from pytest_hetero.errors import TeardownError

__all__ = ["Cleanup", "kubectl_delete"]

_CLIENT_ERRORS = (k8s.ApiException, pydantic.ValidationError, *TRANSPORT_ERRORS)


def kubectl_delete(resource: ResourceApi, name: str) -> str:
    """The command that deletes ``name`` by hand (kinds: ``jobs.batch``, ``ipujobs.graphcore.ai``, ``pods``...)."""
    if resource.group:
        kind = f"{resource.plural}.{resource.group}"
    else:
        kind = resource.plural if resource.plural in ("pods", "configmaps", "secrets") else f"{resource.plural}.batch"
    return f"kubectl delete {kind} {name} -n {resource.namespace}"


@dataclass
class _Pending:
    resource: ResourceApi
    name: str
    reason: str = ""


class Cleanup:
    """The objects created and not yet seen deleted (or kept on purpose), keyed by kind, namespace and name."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str, str], _Pending] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(resource: ResourceApi, name: str) -> tuple[str, str, str]:
        return (f"{resource.plural}.{resource.group}", resource.namespace, name)

    def created(self, resource: ResourceApi, name: str) -> None:
        """Register ``name`` before it is created; it stays registered until deleted or kept."""
        with self._lock:
            self._pending.setdefault(self._key(resource, name), _Pending(resource, name))

    def kept(self, resource: ResourceApi, name: str) -> None:
        """Left on the cluster on purpose (``keep_failed``): not a leftover."""
        with self._lock:
            self._pending.pop(self._key(resource, name), None)

    def delete(self, resource: ResourceApi, name: str) -> bool:
        """Delete ``name`` now (retried on 5xx and lost connections); False: still there, retried at close."""
        try:
            with_retries(lambda: resource.delete(name))
        except _CLIENT_ERRORS as exc:
            error = api_error(exc, f"deleting {resource.plural[:-1]} {name}", TeardownError)
            with self._lock:
                entry = self._pending.setdefault(self._key(resource, name), _Pending(resource, name))
                entry.reason = str(error)
            return False
        self.kept(resource, name)  # gone: nothing more to do
        return True

    def delete_all(self) -> None:
        """Delete every object still registered, by name (at the end of the run)."""
        with self._lock:
            pending = list(self._pending.values())
        for entry in pending:
            self.delete(entry.resource, entry.name)

    def leftovers(self) -> list[str]:
        """What could not be deleted: the reason and the command that deletes it."""
        with self._lock:
            pending = sorted(self._pending.values(), key=lambda e: self._key(e.resource, e.name))
        return [
            f"{e.resource.namespace}/{e.name} was not deleted ({e.reason or 'not attempted'}); "
            f"delete it with: {kubectl_delete(e.resource, e.name)}"
            for e in pending
        ]
