"""Kubernetes object names, label keys and values, checked against the API's rules before anything is sent.

The API server would refuse them at submission (after the allocation was asked
for, and in a dry run not at all); the catalogue loader reports them with the
JSON path instead. Rules (``k8s.io/apimachinery/pkg/util/validation``):

====================  ================================================================
namespace             DNS-1123 label: ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63
object names          DNS-1123 subdomain: labels joined by ``.``, at most 253
(secrets, service
account, PVC, ...)
label/annotation key  ``[prefix/]name``: prefix a DNS-1123 subdomain, name at most 63 of
                      ``[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?``
label value           empty, or like a key's name part (at most 63)
====================  ================================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["dns_label_problem", "name_problems", "subdomain_problem"]

# Full matches only (re.fullmatch): "$" would let a trailing newline through.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")

_SUBDOMAIN_OPTIONS = ("service_account", "priority_class", "template_plural")
_LABEL_MAPS = ("labels", "node_selector")


def dns_label_problem(value: str) -> str | None:
    if len(value) > 63 or not _LABEL.fullmatch(value):
        return f"{value!r} is not a valid DNS-1123 label (lower-case letters, digits and '-', at most 63)"
    return None


def subdomain_problem(value: str) -> str | None:
    if len(value) > 253 or not _SUBDOMAIN.fullmatch(value):
        return f"{value!r} is not a valid DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253)"
    return None


def _key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if (slash and (not prefix or subdomain_problem(prefix))) or len(name) > 63 or not _QUALIFIED.fullmatch(name):
        return f"key {key!r} is not a valid label key ([prefix/]name: name of letters, digits, '-', '_', '.')"
    return None


def _value_problem(value: str) -> str | None:
    if value and (len(value) > 63 or not _QUALIFIED.fullmatch(value)):
        return f"value {value!r} is not a valid label value (letters, digits, '-', '_', '.', at most 63)"
    return None


def name_problems(options: Mapping[str, Any], path: str = "backend.options") -> Iterator[str]:
    """Every name in kubernetes ``backend.options`` that the API server would refuse, with its path."""
    if isinstance(options.get("namespace"), str):
        problem = dns_label_problem(options["namespace"])
        if problem:
            yield f"{path}.namespace: {problem}"
    for key in _SUBDOMAIN_OPTIONS:
        value = options.get(key)
        problem = subdomain_problem(value) if isinstance(value, str) else None
        if problem:
            yield f"{path}.{key}: {problem}"
    queue = options.get("queue_name")
    if isinstance(queue, str) and (subdomain_problem(queue) or _value_problem(queue)):  # also a label value
        yield f"{path}.queue_name: {queue!r} is not a valid Kueue queue name (a DNS-1123 subdomain of at most 63)"
    for index, secret in enumerate(options.get("image_pull_secrets") or ()):
        problem = subdomain_problem(secret) if isinstance(secret, str) else None
        if problem:
            yield f"{path}.image_pull_secrets[{index}]: {problem}"
    for dataset, claim in (options.get("pvc") or {}).items():
        problem = subdomain_problem(claim) if isinstance(claim, str) else None
        if problem:
            yield f"{path}.pvc.{dataset}: {problem}"
    for key in _LABEL_MAPS:
        for label, value in (options.get(key) or {}).items():
            for problem in (_key_problem(label), _value_problem(value) if isinstance(value, str) else None):
                if problem:
                    yield f"{path}.{key}: {problem}"
    for label in options.get("annotations") or {}:
        problem = _key_problem(label)
        if problem:
            yield f"{path}.annotations: {problem}"
