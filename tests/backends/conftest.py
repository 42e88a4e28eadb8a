"""Backend tests: the ``slurm`` marker and the live Slurm cluster those tests need.

Live Slurm tests run against the cluster that ``scripts/slurm-local.sh up``
starts (or any cluster the Slurm commands reach). Without one they skip, with
the reason, except under CI (``CI`` set), where a missing cluster fails them.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

#: Held by tests that use (or break) the second node, so that they never overlap, even under xdist.
MULTI_LOCK = Path(tempfile.gettempdir()) / "pytest-hetero-slurm-multi.lock"
_USABLE = ("idle", "mixed", "allocated", "completing")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slurm: needs a live Slurm cluster (scripts/slurm-local.sh up)")


class LiveSlurm:
    """A reachable Slurm cluster, and the few commands the live tests need."""

    @staticmethod
    def run(*argv: str, timeout_s: float = 30.0) -> str:
        """stdout of a Slurm command that must succeed."""
        done = subprocess.run(list(argv), check=True, capture_output=True, text=True, timeout=timeout_s)
        return done.stdout.strip()

    def jobs_under(self, directory: Path) -> dict[str, str]:
        """Queued or running jobs (id -> state) whose work directory is under ``directory``."""
        rows = (line.split("|", 2) for line in self.run("squeue", "-h", "-o", "%i|%T|%Z").splitlines())
        return {job_id: state for job_id, state, workdir in rows if workdir.startswith(str(directory))}

    def wait_for_jobs(self, directory: Path, states: list[str], timeout_s: float = 60) -> list[str]:
        """Wait until the jobs under ``directory`` are in exactly ``states``; their ids."""
        in_states = lambda: sorted(self.jobs_under(directory).values()) == sorted(states)  # noqa: E731
        self.wait_until(in_states, timeout_s, f"jobs under {directory} in states {states}")
        return sorted(self.jobs_under(directory))

    def cancel_under(self, directory: Path) -> None:
        leftovers = self.jobs_under(directory)
        if leftovers:
            subprocess.run(["scancel", *leftovers], check=False, timeout=30)

    def state(self, job_id: str) -> str:
        return self.run("sacct", "-X", "-n", "-P", "-o", "State", "-j", job_id)

    def max_overlap(self, job_ids: Iterable[str]) -> int:
        """How many of the jobs ran at once, at most (from their accounted start and end)."""
        spans = [self._span(job_id) for job_id in job_ids]
        return max(sum(start <= t < end for start, end in spans) for t, _ in spans)

    def _span(self, job_id: str) -> tuple[float, float]:
        start, end = self.run("sacct", "-X", "-n", "-P", "-o", "Start,End", "-j", job_id).split("|")
        return datetime.fromisoformat(start).timestamp(), datetime.fromisoformat(end).timestamp()

    @staticmethod
    def wait_until(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: still not the case after {timeout_s:g} s")
            time.sleep(0.2)

    def restore_node(self, node: str) -> None:
        def usable() -> bool:
            if self.run("sinfo", "-h", "-n", node, "-o", "%T") in _USABLE:
                return True
            subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], check=False, capture_output=True)
            return False

        self.wait_until(usable, 60, f"node {node} back in service")

    @staticmethod
    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def conf_pointing_nowhere(self, directory: Path, *keys: str) -> Path:
        """A copy of the live slurm.conf whose ``keys`` (ports) lead to nothing listening."""
        live = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")).read_text().splitlines()
        kept = [line for line in live if line.split("=", 1)[0].strip() not in keys]
        path = directory / "unreachable-slurm.conf"
        path.write_text("\n".join(kept + [f"{key}={self.free_port()}" for key in keys]) + "\n")
        return path


def _sinfo_problem() -> str | None:
    try:
        LiveSlurm.run("sinfo", "-h", "-o", "%a", timeout_s=20)
    except FileNotFoundError:
        return "sinfo is not installed"
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    except subprocess.CalledProcessError as exc:
        return f"sinfo failed: {exc.stderr.strip()}"
    return None


def _unavailable(problem: str) -> None:
    reason = f"{problem}; start the local cluster with: scripts/slurm-local.sh up (as root)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the live Slurm tests must run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster() -> LiveSlurm:
    """A reachable Slurm cluster; skip without one (fail under CI)."""
    problem = _sinfo_problem()
    if problem is not None:
        _unavailable(f"no Slurm cluster reachable ({problem})")
    return LiveSlurm()


@pytest.fixture
def slurm_dir(tmp_path: Path, slurm_cluster: LiveSlurm) -> Iterator[Path]:
    """A fresh directory for jobs on the live cluster; whatever still runs from it is cancelled."""
    yield tmp_path
    slurm_cluster.cancel_under(tmp_path)


@pytest.fixture
def live_pytester(pytester: pytest.Pytester, slurm_cluster: LiveSlurm) -> Iterator[pytest.Pytester]:
    """pytester for runs against the live cluster; whatever still runs from it is cancelled."""
    yield pytester
    slurm_cluster.cancel_under(pytester.path)


@pytest.fixture
def multi_nodes(slurm_cluster: LiveSlurm) -> Iterator[list[str]]:
    """The nodes of partition ``multi`` (at least two), held exclusively for the test."""
    nodes = slurm_cluster.run("sinfo", "-h", "-p", "multi", "-N", "-o", "%N").split()
    if len(nodes) < 2:
        _unavailable(f"no partition 'multi' with two nodes (sinfo -p multi: {nodes})")
    with MULTI_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield nodes
