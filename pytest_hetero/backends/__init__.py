"""Backends: where a benchmark job runs (local process, Slurm, Kubernetes, fake)."""

from pytest_hetero.backends.base import Backend, JobHandle, JobOutput, JobSpec, JobState
from pytest_hetero.backends.registry import get_backend_class, known_backends, register_backend

__all__ = [
    "Backend",
    "JobHandle",
    "JobOutput",
    "JobSpec",
    "JobState",
    "get_backend_class",
    "known_backends",
    "register_backend",
]
