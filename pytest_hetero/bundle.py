"""The workload travels with the job: a bundle of its code, so the compute side needs torch only.

A bundle holds the stdlib+torch workload package (``pytest_hetero/__init__.py``
and every module of ``pytest_hetero/workloads``), the project modules a
``module=`` workload imports, and, for a ``command=`` workload, the files the
command names (its script, the modules the script imports, small data files)
under ``workload/`` with their paths relative to the test's directory. A
backend that runs jobs away from this Python ships it
(:meth:`~pytest_hetero.backends.base.Backend.bundle_root` says where the job
finds it): the Slurm backend writes it into the job's work directory, which
must be on a filesystem the compute nodes share (the batch script checks that
before the workload starts, :func:`check_line`); the Kubernetes backend mounts
it from a ConfigMap (:mod:`pytest_hetero.backends.k8s_bundle`). The job finds
it through ``PYTHONPATH`` (:func:`bundle_environment`): no ``pip install`` at
job start, no write access to site-packages, no network.

::

    <root>/pytest_hetero/__init__.py
    <root>/pytest_hetero/workloads/**.py
    <root>/workload/<the command's files, relative to the test directory>
    <root>/BUNDLE.json              what is in it: file -> sha256, and the digest
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import pytest_hetero
from pytest_hetero.sources import command_files, module_files, search_roots
from pytest_hetero.workload import Workload

if TYPE_CHECKING:
    from pytest_hetero.backends.base import JobSpec

__all__ = [
    "COMMAND_DIR",
    "INDEX_FILE",
    "Bundle",
    "build_bundle",
    "bundle_environment",
    "check_line",
    "checking_bundle",
    "shipped_argv",
]

#: Where a ``command=`` workload's files go inside the bundle.
COMMAND_DIR = "workload"
#: The bundle's table of contents (and the file the job checks for).
INDEX_FILE = "BUNDLE.json"
_PACKAGE_DIR = Path(pytest_hetero.__file__).parent


@dataclass(frozen=True)
class Bundle:
    """The files of a bundle: path inside the bundle (POSIX, relative) -> content."""

    files: Mapping[str, bytes]

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 over every path and content: equal bundles have equal digests."""
        hasher = hashlib.sha256()
        for path in sorted(self.files):
            hasher.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        return hasher.hexdigest()

    @property
    def size_bytes(self) -> int:
        return sum(len(content) for content in self.files.values()) + len(self.index())

    def index(self) -> bytes:
        """The content of :data:`INDEX_FILE`."""
        table = {path: hashlib.sha256(content).hexdigest() for path, content in sorted(self.files.items())}
        return json.dumps({"digest": self.digest, "files": table}, indent=1).encode()

    def write(self, root: Path) -> Path:
        """Write the bundle under ``root`` (created; files already there are replaced); returns ``root``."""
        for path, content in self.files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        (root / INDEX_FILE).write_bytes(self.index())
        return root


def build_bundle(workload: Workload, test_dir: Path) -> Bundle:
    """The bundle of ``workload`` as declared by a test in ``test_dir``."""
    files = dict(_package_files())
    if workload.module:
        for label, path in module_files(workload.module, search_roots(test_dir)).items():
            if not _installed(path):
                files.setdefault(label, path.read_bytes())
    for label, path in _command_files(workload.command, test_dir).items():
        files[f"{COMMAND_DIR}/{label}"] = path.read_bytes()
    return Bundle(MappingProxyType(files))


@functools.lru_cache(maxsize=1)
def _package_files() -> tuple[tuple[str, bytes], ...]:
    """``pytest_hetero/__init__.py`` and the workload package, as this Python has them."""
    paths = [_PACKAGE_DIR / "__init__.py", *sorted((_PACKAGE_DIR / "workloads").rglob("*.py"))]
    return tuple((f"pytest_hetero/{p.relative_to(_PACKAGE_DIR).as_posix()}", p.read_bytes()) for p in paths)


def _command_files(command: Sequence[str], test_dir: Path) -> dict[str, Path]:
    """The files a command names, relative to the test directory (absolute ones the job has already)."""
    if not command:
        return {}
    return {label: path for label, path in command_files(command, test_dir).items() if not Path(label).is_absolute()}


def _installed(path: Path) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in path.parts)


def shipped_argv(argv: Sequence[str], command: Sequence[str], test_dir: Path, root: str) -> tuple[str, ...]:
    """``argv`` with each file of a relative ``command=`` pointed at its copy in the bundle at ``root``."""
    shipped = _command_files(command, test_dir)
    return tuple(f"{root}/{COMMAND_DIR}/{token}" if token in shipped else token for token in argv)


def bundle_environment(root: str) -> dict[str, str]:
    """What the job needs to find the bundle at ``root``.

    ``PYTHONPATH`` holds the bundle (the workload package) and its ``workload/``
    directory (a ``command=``'s own modules, for ``python -m`` and its imports,
    wherever the job starts). ``PYTHONDONTWRITEBYTECODE``: a read-only mount
    (a ConfigMap) or a shared filesystem gets no ``__pycache__`` written into it
    by every job.
    """
    return {"PYTHONPATH": f"{root}:{root}/{COMMAND_DIR}", "PYTHONDONTWRITEBYTECODE": "1"}


def check_line(root: str) -> str:
    """A shell line that stops the job with a clear message when the bundle is not visible on its node."""
    index = shlex.quote(f"{root}/{INDEX_FILE}")
    message = shlex.quote(
        f"pytest-hetero: the workload bundle {root} is not visible on this node; the job's work directory "
        "must be on a filesystem the compute nodes share (point --hetero-output-dir at one)"
    )
    return f'[ -r {index} ] || {{ echo {message} "($(hostname))" >&2; exit 97; }}'


def checking_bundle(spec: JobSpec, root: str) -> JobSpec:
    """``spec`` with :func:`check_line` first among its platform's setup lines, when it ships a bundle."""
    if spec.bundle is None:
        return spec
    environment = dataclasses.replace(
        spec.platform.environment, setup=(check_line(root), *spec.platform.environment.setup)
    )
    return dataclasses.replace(spec, platform=dataclasses.replace(spec.platform, environment=environment))
