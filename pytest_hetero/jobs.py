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

import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_hetero.backends.base import Backend, JobSpec
from pytest_hetero.config.models import Platform
from pytest_hetero.fingerprint import Fingerprints, fingerprints
from pytest_hetero.launchers import get_launcher
from pytest_hetero.markers import Declaration
from pytest_hetero.workloads.protocol import job_environment, repeat_seed

__all__ = ["Benchmark", "build_jobspec", "case_key", "job_workdir", "will_skip"]


@dataclass(frozen=True)
class Benchmark:
    """One collected item's benchmark: declaration × platform."""

    declaration: Declaration
    platform: Platform
    test_key: str
    references_path: Path  # next to the test file

    @functools.cached_property
    def fingerprints(self) -> Fingerprints:
        """Of the workload's code and config, and of the platform; taken when its first job is built."""
        test_dir = self.references_path.parent  # the job's working directory
        return fingerprints(self.declaration.workload, self.platform, test_dir)


def build_jobspec(
    item: pytest.Item, bench: Benchmark, backend: Backend, *, run_id: str, workdir: Path, repeat: int = 0
) -> JobSpec:
    """The job of repeat ``repeat`` (0: the first) of ``bench`` on its platform's ``backend``, after the hook."""
    platform, workload = bench.platform, bench.declaration.workload
    timeout_s = platform.time_limit_s
    if bench.declaration.timeout_min is not None:
        timeout_s = min(timeout_s, bench.declaration.timeout_min * 60.0)
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
    argv = get_launcher(platform).command(workload, backend.launch_context())
    spec = JobSpec(
        name=f"{bench.test_key.rsplit('::', 1)[-1]}[{platform.name}]",
        argv=absolute_paths(argv, workload.command, item.path.parent),
        workdir=workdir,
        platform=platform,
        env=env,
        timeout_s=timeout_s,
        cwd=item.path.parent,
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
        if token and not token.startswith("-") and not Path(token).is_absolute() and (test_dir / token).is_file():
            resolved[token] = str((test_dir / token).resolve())
    return tuple(resolved.get(token, token) for token in argv)


def job_workdir(run_dir: Path, item: pytest.Item, repeat: int, repeats: int) -> Path:
    """Readable, and unique even when long node ids share their first 100 characters."""
    digest = hashlib.sha256(item.nodeid.encode()).hexdigest()[:8]
    base = (run_dir / f"{_slug(item.nodeid)[:100]}-{digest}").absolute()
    return base / f"repeat-{repeat + 1}" if repeats > 1 else base


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120]


def case_key(item: pytest.Item, platform: str | None) -> str:
    """``file.py::test[params]`` without the platform id: the key of references and history."""
    name = getattr(item, "originalname", item.name)
    params = item.name[len(name) + 1 : -1] if item.name != name else ""
    if platform and params == platform:
        params = ""
    elif platform and params.endswith(f"-{platform}"):
        params = params[: -len(platform) - 1]
    elif platform and params.startswith(f"{platform}-"):
        params = params[len(platform) + 1 :]
    return f"{item.path.name}::{name}" + (f"[{params}]" if params else "")


def will_skip(item: pytest.Item) -> bool:
    """Skipped for sure: no job is submitted ahead for it."""
    if item.get_closest_marker("skip") is not None:
        return True
    return any(m.args and m.args[0] is True for m in item.iter_markers("skipif"))
