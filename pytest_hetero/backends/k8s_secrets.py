"""Secrets on Kubernetes: one ``Secret`` object per job, referenced by ``secretKeyRef``, never inlined.

An environment value is secret when the catalogue marks it so (``{value, secret: true}``,
``{from_env: NAME}``), when its name looks secret (``*TOKEN*``, ``*PASSWORD*``...), or when
it holds one (a URL password, a registered value, a secret key in the workload's config
JSON): the same rule as the Slurm batch script. Such values go into a Secret of type
``Opaque`` named :func:`secret_name` (the job's name + ``-env``), labelled like the job,
and the container reads each with ``valueFrom.secretKeyRef``; the Pod, Job or custom
object sent to the API server (and the dry run, and the golden files) holds only
references, so ``kubectl get pod -o yaml`` shows no secret value.

A command-line argument holding a secret is passed as ``HETERO_SECRET_ARG_<i>`` and
written ``$(HETERO_SECRET_ARG_<i>)`` (expanded by the kubelet) or, under a setup
script, ``"$HETERO_SECRET_ARG_<i>"`` (expanded by the shell); a setup line holding one
runs as ``eval "$HETERO_SECRET_SETUP_<i>"``.

The backend registers the Secret with :class:`~pytest_hetero.backends.k8s_cleanup.Cleanup`
before creating it and deletes it by name with its job (and at session end), so it
lives only while the job may start; it needs ``create`` and ``delete`` on ``secrets``
in its namespace.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Mapping
from typing import Any

import pydantic
from kubernetes import client as k8s

from pytest_hetero.backends.base import JobSpec
from pytest_hetero.backends.k8s_cleanup import Cleanup
from pytest_hetero.backends.k8s_client import TRANSPORT_ERRORS, ResourceApi, api_error, is_quota_error, with_retries
from pytest_hetero.backends.k8s_names import subdomain_problem
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import SubmitError
from pytest_hetero.redact import is_secret, scrub

__all__ = [
    "container_command",
    "container_env",
    "create_secret",
    "described",
    "hidden_values",
    "secret_manifest",
    "secret_name",
]

Json = dict[str, Any]
ARG_VAR = "HETERO_SECRET_ARG_"
SETUP_VAR = "HETERO_SECRET_SETUP_"


def secret_name(job_name: str) -> str:
    """The Secret of job ``job_name`` (a DNS-1123 subdomain, checked)."""
    name = f"{job_name}-env"
    problem = subdomain_problem(name)
    if problem:
        raise SubmitError(f"kubernetes: cannot name the job's Secret: {problem}")
    return name


def _hidden(platform: Platform, name: str, value: str) -> bool:
    """Marked secret, secret-looking by name, or holding a secret (URL password, registered value, ...)."""
    return name in platform.environment.secrets or is_secret(name, value) or scrub(value) != value


def _merged_env(platform: Platform, spec: JobSpec) -> dict[str, str]:
    return {**platform.environment.env, **spec.env}


def hidden_values(platform: Platform, spec: JobSpec) -> dict[str, str]:
    """What goes into the job's Secret: secret variables, and the arguments and setup lines holding one."""
    hidden = {k: v for k, v in _merged_env(platform, spec).items() if _hidden(platform, k, v)}
    hidden.update((f"{ARG_VAR}{i}", arg) for i, arg in enumerate(spec.argv) if scrub(arg) != arg)
    setup = platform.environment.setup
    hidden.update((f"{SETUP_VAR}{i}", line) for i, line in enumerate(setup) if scrub(line) != line)
    return hidden


def container_env(platform: Platform, spec: JobSpec, job_name: str) -> list[Json]:
    """The container's ``env``: plain values inline, secret ones as references to the job's Secret."""
    hidden = hidden_values(platform, spec)
    env: list[Json] = [{"name": k, "value": v} for k, v in _merged_env(platform, spec).items() if k not in hidden]
    if hidden:
        name = secret_name(job_name)
        env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": name, "key": k}}} for k in hidden]
    return env


def container_command(platform: Platform, spec: JobSpec) -> list[str]:
    """``spec.argv``, under ``/bin/sh -c`` with the setup lines; what holds a secret is read from the env."""
    setup = platform.environment.setup
    if not setup:
        return [f"$({ARG_VAR}{i})" if scrub(arg) != arg else arg for i, arg in enumerate(spec.argv)]
    lines = [f'eval "${SETUP_VAR}{i}"' if scrub(line) != line else line for i, line in enumerate(setup)]
    argv = " ".join(f'"${ARG_VAR}{i}"' if scrub(arg) != arg else shlex.quote(arg) for i, arg in enumerate(spec.argv))
    return ["/bin/sh", "-c", "\n".join(["set -e", *lines, f"exec {argv}"])]


def secret_manifest(
    platform: Platform, spec: JobSpec, job_name: str, namespace: str, labels: Mapping[str, str]
) -> Json | None:
    """The job's Secret (``data`` base64-encoded, as the API stores it); None when nothing is secret."""
    hidden = hidden_values(platform, spec)
    if not hidden:
        return None
    own = {k: v for k, v in labels.items() if not k.startswith("kueue.x-k8s.io/")}  # a Secret is no workload
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": secret_name(job_name), "namespace": namespace, "labels": own},
        "immutable": True,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in hidden.items()},
    }


def described(manifest: Json | None) -> str:
    """A comment for the dry run: which Secret the job reads and its keys (never the values)."""
    if manifest is None:
        return ""
    keys = ", ".join(manifest["data"])
    return (
        f"# created before the job, deleted with it: Secret {manifest['metadata']['name']} (Opaque) with keys {keys}\n"
    )


def create_secret(resource: ResourceApi, cleanup: Cleanup, manifest: Json, job_id: str) -> None:
    """Create the job's Secret, registered for deletion first; one there already (a lost answer) is fine.

    A full quota is raised as it is (the backend defers the job); anything else is a :class:`SubmitError`.
    """
    name = manifest["metadata"]["name"]
    cleanup.created(resource, name)  # an answer lost may hide a success
    doing = f"creating secret {name} in namespace {resource.namespace}"
    try:
        with_retries(lambda: resource.create(manifest))
    except k8s.ApiException as exc:
        if exc.status == 409:  # same name, same job: created by an attempt whose answer was lost
            return
        if is_quota_error(exc):
            raise
        raise api_error(exc, doing, SubmitError, job_id) from exc
    except (pydantic.ValidationError, *TRANSPORT_ERRORS) as exc:
        raise api_error(exc, doing, SubmitError, job_id) from exc
