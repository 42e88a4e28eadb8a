"""The README's headline commands against the shipped example centre catalogue, as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    command = [sys.executable, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-o", "addopts="]
    command += ["--hetero-output-dir", str(tmp_path), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)


def test_platform_cerebras_renders_the_cs2_cases_and_only_those(tmp_path: Path) -> None:
    done = _pytest(
        tmp_path, "--platforms-file", "platforms.example-centre.yaml", "--platform", "cerebras", "--hetero-dry-run"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rendered = [line for line in done.stdout.splitlines() if " dry run: benchmarks/" in line]
    assert rendered and all("[cerebras-cs2]" in line for line in rendered)
    assert "#SBATCH --gres=cs:1" in done.stdout
    assert not (tmp_path / "runs").exists()


def test_the_readme_selection_example_runs_as_written(tmp_path: Path) -> None:
    selectors = ["--platform", "a100-*", "--platform", "cerebras-cs2"]
    done = _pytest(tmp_path, "--platforms-file", "platforms.example-centre.yaml", *selectors, "--hetero-dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    platforms = {
        line.rsplit("[", 1)[-1].split("]")[0] for line in done.stdout.splitlines() if " dry run: bench" in line
    }
    assert platforms == {"a100-k8s-1gpu", "a100-k8s-8gpu", "cerebras-cs2"}


#: Who reads each variable the example catalogue sets in a job: a variable nothing reads
#: (TORCH_NUM_THREADS was one) is a setting that silently does nothing.
READ_BY = {
    "NCCL_DEBUG": "NCCL",
    "NCCL_SOCKET_IFNAME": "NCCL/RCCL",
    "MIOPEN_USER_DB_PATH": "MIOpen",
    "OMP_NUM_THREADS": "the OpenMP runtime torch uses",
    "POPLAR_ENGINE_OPTIONS": "Poplar",
}


def test_every_variable_the_example_sets_is_read_by_something() -> None:
    catalogue = yaml.safe_load((REPO / "platforms.example-centre.yaml").read_text())
    for platform in catalogue["platforms"]:
        unread = set(platform.get("environment", {}).get("env", {})) - set(READ_BY)
        assert not unread, f"{platform['name']} sets {sorted(unread)}, which nothing in the job reads"


def test_the_example_jobs_install_nothing_and_get_the_platforms_time_limit(tmp_path: Path) -> None:
    done = _pytest(
        tmp_path, "--platforms-file", "platforms.example-centre.yaml", "--platform", "all", "--hetero-dry-run"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pip install" not in done.stdout
    case = done.stdout.split("[cerebras-cs2] ---", 1)[1].split(" dry run: ", 1)[0]  # the first CS-2 case
    assert "time limits: job 240 min" in case and "#SBATCH --time=240\n" in case
    assert "export PYTHONPATH=" in case and "is not visible on this node" in case  # the bundle, checked
    assert "/opt/pytest-hetero/bundle" in done.stdout  # the Kubernetes platforms mount it
    assert "IPC_LOCK" in done.stdout and "hostIPC: true" in done.stdout


def test_every_example_kubernetes_job_is_bounded_in_the_cluster(tmp_path: Path) -> None:
    """Each Kubernetes platform's object carries a deadline: if pytest dies, the cluster still ends the job."""
    catalogue = yaml.safe_load((REPO / "platforms.example-centre.yaml").read_text(encoding="utf-8"))
    kubernetes = [p for p in catalogue["platforms"] if p["backend"]["kind"] == "kubernetes"]
    assert any(p["backend"]["options"].get("template", {}).get("kind") == "IPUJob" for p in kubernetes)
    done = _pytest(
        tmp_path, "--platforms-file", "platforms.example-centre.yaml", "--platform", "all", "--hetero-dry-run"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for platform in kubernetes:
        case = done.stdout.split(f"[{platform['name']}] ---", 1)[1].split(" dry run: ", 1)[0]
        limit_s = platform["resources"]["time_limit_min"] * 60
        assert f"activeDeadlineSeconds: {limit_s}" in case, (platform["name"], case)
