"""From a collected test to the job a backend runs: :class:`Benchmark` -> :class:`JobSpec`.

A benchmark item is a declaration (the ``hetero`` marker) on one platform. Its
job spec carries the launcher's argv (in the backend's launch context), the
environment of the plugin↔workload contract
(:func:`pytest_hetero.workloads.protocol.job_environment`: each repeat with
its own seed, :func:`~pytest_hetero.workloads.protocol.repeat_seed`), a work
directory unique to the item and repeat, and the time limit; a conftest may
still change it through ``pytest_hetero_modify_jobspec``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_hetero.accelerators import accelerator_kind
from pytest_hetero.backends.base import Backend, JobSpec
from pytest_hetero.bundle import Bundle, build_bundle, bundle_environment, shipped_argv
from pytest_hetero.config.models import Platform
from pytest_hetero.fingerprint import Fingerprints, fingerprints
from pytest_hetero.launchers import get_launcher
from pytest_hetero.markers import Declaration
from pytest_hetero.workloads.protocol import job_environment, repeat_seed

__all__ = ["Benchmark", "Shared", "TimeLimits", "build_jobspec", "case_key", "job_workdir", "will_skip"]


class Shared:
    """What the cases of one declaration on one platform share, computed for the first case's first job.

    A parametrised test's cases run the same workload (code, config, command) on the same platform:
    its fingerprints, its bundle and its argv's absolute paths are the same for all of them, so they
    are taken once (the code as the first of them submitted it), not for each case.
    """

    __slots__ = ("argv", "bundle", "fingerprints")

    def __init__(self) -> None:
        self.fingerprints: Fingerprints | None = None
        self.bundle: Bundle | None = None
        self.argv: dict[tuple[str, ...], tuple[str, ...]] = {}  # launcher argv -> with absolute paths


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One collected item's benchmark: declaration × platform.

    Slotted (one per collected case: a run of 10,000 cases keeps 10,000). Its fingerprints and
    bundle are computed on first use and kept in ``shared``, which collection gives every case of
    the same declaration and platform (a case made alone has its own).
    """

    declaration: Declaration
    platform: Platform
    test_key: str
    references_path: Path  # next to the test file
    shared: Shared = field(default_factory=Shared, repr=False, compare=False)

    @property
    def fingerprints(self) -> Fingerprints:
        """Of the workload's code and config, and of the platform; taken when its first job is built."""
        found = self.shared.fingerprints
        if found is None:
            test_dir = self.references_path.parent  # the job's working directory
            found = self.shared.fingerprints = fingerprints(self.declaration.workload, self.platform, test_dir)
        return found

    @property
    def bundle(self) -> Bundle:
        """The workload's code as it travels with the job; built when its first job is."""
        found = self.shared.bundle
        if found is None:
            found = self.shared.bundle = build_bundle(self.declaration.workload, self.references_path.parent)
        return found

    def absolute_argv(self, argv: Sequence[str]) -> tuple[str, ...]:
        """``argv`` with the files the workload's relative ``command=`` names made absolute (:func:`absolute_paths`)."""
        key = tuple(argv)
        found = self.shared.argv.get(key)
        if found is None:
            command, test_dir = self.declaration.workload.command, self.references_path.parent
            found = self.shared.argv[key] = absolute_paths(key, command, test_dir)
        return found


@dataclass(frozen=True)
class TimeLimits:
    """Two bounds: the platform's on the whole job, the test's on the workload inside it.

    The platform's ``resources.time_limit_min`` bounds the job as the backend sees it
    (Slurm's ``--time``, a Pod's deadline, a local process): start-up, compilation
    (a CS-2 compiles for tens of minutes) and the workload. The test's ``timeout_min``
    bounds the workload alone: its command runs under ``timeout`` (coreutils), which
    ends it with exit status 124. Time waiting in a queue counts against neither:
    each backend bounds it apart (Slurm's ``queue_timeout_min``, Kubernetes' ``pending_timeout_s``).
    """

    job_s: float
    workload_s: float | None
    #: The accelerator compiles inside the workload's process (:attr:`AcceleratorKind.compiles_ahead`):
    #: no bound on that process apart from the job's, or it would cut compilation short.
    compiles: str | None = None

    @classmethod
    def of(cls, bench: Benchmark) -> TimeLimits:
        timeout_min, kind = bench.declaration.timeout_min, bench.platform.accelerator.kind
        compiles = kind if accelerator_kind(kind).compiles_ahead else None
        return cls(bench.platform.time_limit_s, None if timeout_min is None else timeout_min * 60.0, compiles)

    @property
    def workload_bound_s(self) -> float | None:
        """The workload's own bound when it applies apart from the job's; None when only the job's does."""
        if self.workload_s is None or self.workload_s >= self.job_s or self.compiles:
            return None
        return float(math.ceil(self.workload_s))

    def bounded(self, argv: Sequence[str]) -> tuple[str, ...]:
        """``argv`` under the workload's bound; as it is when only the job's applies."""
        if self.workload_bound_s is None or self.workload_s is None:
            return tuple(argv)
        kill_after_s = min(30, max(1, math.ceil(self.workload_s / 10)))  # then SIGKILL
        return ("timeout", f"--kill-after={kill_after_s}", f"{math.ceil(self.workload_s)}", *argv)

    def describe(self) -> str:
        """One line for the dry run."""
        job = f"job {self.job_s / 60:g} min (resources.time_limit_min: start-up and compilation included)"
        if self.workload_s is None:
            return f"time limits: {job}; workload: the job's (the test sets no timeout_min)"
        if self.compiles:
            return (
                f"time limits: {job}; workload: the job's, which bounds compilation and run together "
                f"({self.compiles} compiles inside the workload; the test's timeout_min of {self.workload_s / 60:g} "
                "min is not applied apart)"
            )
        capped = "" if self.workload_s < self.job_s else ", capped by the job's"
        return f"time limits: {job}; workload {self.workload_s / 60:g} min (the test's timeout_min{capped})"


def build_jobspec(
    item: pytest.Item, bench: Benchmark, backend: Backend, *, run_id: str, workdir: Path, repeat: int = 0
) -> JobSpec:
    """The job of repeat ``repeat`` (0: the first) of ``bench`` on its platform's ``backend``, after the hook."""
    platform, workload = bench.platform, bench.declaration.workload
    _ = bench.fingerprints  # taken now: the code as submitted, not as it is when the result arrives
    env = job_environment(
        config_json=workload.config_json,
        platform=platform.name,
        accelerator_kind=platform.accelerator.kind,
        accelerators_per_node=platform.accelerators_per_node,
        run_id=run_id,
        peak_tflops=platform.accelerator.peak_tflops,
        data_roots=platform.data_roots,
        repeat=repeat + 1,
        seed=repeat_seed(workload.seed, repeat),
    )
    argv: Sequence[str] = get_launcher(platform).command(workload, backend.launch_context())
    root = backend.bundle_root(workdir)
    if root is None:
        argv = bench.absolute_argv(argv)
    else:  # the workload travels with the job: its code is found in the bundle
        argv = shipped_argv(argv, workload.command, item.path.parent, root)
        env.update(bundle_environment(root))
    limits = TimeLimits.of(bench)
    spec = JobSpec(
        name=f"{bench.test_key.rsplit('::', 1)[-1]}[{platform.name}]",
        argv=limits.bounded(argv),
        workdir=workdir,
        platform=platform,
        env=env,
        timeout_s=limits.job_s,
        cwd=item.path.parent,
        bundle=None if root is None else bench.bundle,
        workload_timeout_s=limits.workload_bound_s,
    )
    modified = item.config.hook.pytest_hetero_modify_jobspec(spec=spec, item=item)
    return modified if isinstance(modified, JobSpec) else spec


def absolute_paths(argv: Sequence[str], command: Sequence[str], test_dir: Path) -> tuple[str, ...]:
    """``argv`` with the files a relative ``command=`` names made absolute (against the test's directory).

    A job does not always start where the test is: a Slurm job starts in its run directory, a Pod
    in its image's. The workload's config hash keeps the relative form, so it stays portable.
    """
    resolved = {}
    for token in command:
        if token and not token.startswith("-") and not os.path.isabs(token):
            candidate = os.path.join(test_dir, token)
            if os.path.isfile(candidate):
                resolved[token] = str(Path(candidate).resolve())
    return tuple(resolved.get(token, token) for token in argv)


def job_workdir(run_dir: Path, item: pytest.Item, repeat: int, repeats: int) -> Path:
    """Readable, and unique even when long node ids share their first 100 characters."""
    digest = hashlib.sha256(item.nodeid.encode()).hexdigest()[:8]
    base = (run_dir / f"{_slug(item.nodeid)[:100]}-{digest}").absolute()
    return base / f"repeat-{repeat + 1}" if repeats > 1 else base


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120]


def case_key(item: pytest.Item, platform: str | None, file_name: str | None = None) -> str:
    """``file.py::test[params]`` without the platform id: the key of references and history.

    ``file_name``: the test file's name, where the caller has it already (collection, per case).
    """
    name = getattr(item, "originalname", item.name)
    params = item.name[len(name) + 1 : -1] if item.name != name else ""
    if platform and params == platform:
        params = ""
    elif platform and params.endswith(f"-{platform}"):
        params = params[: -len(platform) - 1]
    elif platform and params.startswith(f"{platform}-"):
        params = params[len(platform) + 1 :]
    return f"{file_name or item.path.name}::{name}" + (f"[{params}]" if params else "")


def will_skip(item: pytest.Item) -> bool:
    """Skipped for sure: no job is submitted ahead for it."""
    if item.get_closest_marker("skip") is not None:
        return True
    return any(m.args and m.args[0] is True for m in item.iter_markers("skipif"))
