"""The workload travels with the job: a Python with torch and without pytest-hetero runs it.

The bundle (pytest_hetero/bundle.py) goes into the Slurm job's work directory
and into a ConfigMap on Kubernetes. The end-to-end tests run the built-in
ResNet-50 workload and a ``command=`` script that imports a sibling module with
``.venv-torchonly`` (scripts/torch-only-venv.sh: torch 2.13 CPU and nothing
else): on the live Slurm cluster and on the Kubernetes emulator.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from k8s_scenarios import Target
from kubernetes import client as k8s

from pytest_hetero.backends.k8s_bundle import CONFIGMAP_LIMIT_BYTES, bundle_volume, configmap_manifest
from pytest_hetero.backends.k8s_client import connect
from pytest_hetero.bundle import INDEX_FILE, build_bundle, check_line, shipped_argv
from pytest_hetero.errors import SubmitError
from pytest_hetero.reporting.json_report import expand_report
from pytest_hetero.workload import Workload

if TYPE_CHECKING:
    from conftest import LiveSlurm

pytest_plugins = ["k8s_harness"]

ROOT = Path(__file__).parent.parent.parent
TORCH_ONLY = Path(os.environ.get("HETERO_TEST_TORCH_ONLY_PYTHON", ROOT / ".venv-torchonly" / "bin" / "python"))
PROGRAM = textwrap.dedent("""
    from pytest_hetero.workloads.protocol import WorkloadMetric, emit_metrics
    import helper
    emit_metrics([WorkloadMetric("throughput_sps", helper.VALUE, "samples/s", True)], "prog", {})
""")
TINY = {"image_size": 32, "batch_size": 4, "train_steps": 3, "warmup_steps": 1, "eval_steps": 1, "num_classes": 10}
TESTS = textwrap.dedent(f"""
    import pytest

    @pytest.mark.hetero(workload="resnet50", config={TINY!r}, timeout_min=4)
    def test_resnet(hetero_result):
        assert hetero_result.metric("throughput_sps") > 0

    @pytest.mark.hetero(command=["python", "prog.py"])
    def test_prog(hetero_result):
        assert hetero_result.metric("throughput_sps") == 42.0
""")


@pytest.fixture
def torch_only_python() -> Path:
    """A Python with torch but not pytest-hetero; skip without one (fail under CI)."""
    problem = _torch_only_problem()
    if problem:
        reason = f"{problem}; build it with: bash scripts/torch-only-venv.sh"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the bundle tests must run: {reason}", pytrace=False)
        pytest.skip(reason)
    return TORCH_ONLY


def _torch_only_problem() -> str:
    if not TORCH_ONLY.exists():
        return f"no {TORCH_ONLY}"
    probe = "import torch\ntry:\n import pytest_hetero\nexcept ImportError:\n pass\nelse:\n print('has pytest_hetero')"
    proc = subprocess.run([str(TORCH_ONLY), "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        return f"{TORCH_ONLY} cannot import torch: {proc.stderr.strip()[-300:]}"
    return f"{TORCH_ONLY} imports pytest_hetero" if "has pytest_hetero" in proc.stdout else ""


def _torch_only_platform(backend: str, torch_only_python: Path) -> dict[str, Any]:
    """A platform ``<backend>-torch-only`` whose jobs run with the torch-only Python."""
    return {
        "name": f"{backend}-torch-only",
        "accelerator": {"kind": "cpu"},
        "backend": {"kind": backend},
        "environment": {"python": str(torch_only_python)},
        "resources": {"time_limit_min": 5},
    }


def _suite(pytester: pytest.Pytester, platform: dict[str, Any]) -> None:
    pytester.makefile(".yaml", platforms=yaml.safe_dump({"version": 1, "platforms": [platform]}))
    pytester.makefile(".py", prog=PROGRAM, helper="VALUE = 42.0\n")
    pytester.makepyfile(test_suite=TESTS)
    pytester.makeini("[pytest]\n")


def _records(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    report = expand_report(json.loads((pytester.path / "out.json").read_text()))
    return {r["nodeid"].split("::")[1].split("[")[0]: r for r in report["results"]}


# -- the bundle itself ---------------------------------------------------------------------------
def test_bundle_holds_the_workload_package_and_the_commands_files(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    (tmp_path / "helper.py").write_text("VALUE = 42.0\n")
    bundle = build_bundle(Workload("prog", command=("python", "prog.py")), tmp_path)
    assert {"pytest_hetero/__init__.py", "pytest_hetero/workloads/protocol.py", "workload/prog.py"} <= set(bundle.files)
    assert "workload/helper.py" in bundle.files  # imported by the script
    assert not any(path.startswith("pytest_hetero/backends") for path in bundle.files)  # no plugin code
    root = bundle.write(tmp_path / "out")
    index = json.loads((root / INDEX_FILE).read_text())
    assert index["digest"] == bundle.digest and set(index["files"]) == set(bundle.files)
    argv = shipped_argv(["/py", "prog.py", "--x"], ("python", "prog.py", "--x"), tmp_path, "/b")
    assert argv == ("/py", "/b/workload/prog.py", "--x")


def test_the_batch_script_check_stops_a_job_that_cannot_see_its_bundle(tmp_path: Path) -> None:
    missing = subprocess.run(["bash", "-c", check_line(str(tmp_path / "nowhere"))], capture_output=True, text=True)
    assert missing.returncode == 97
    assert "is not visible on this node" in missing.stderr and "filesystem the compute nodes share" in missing.stderr
    build_bundle(Workload.builtin("resnet50"), tmp_path).write(tmp_path / "b")
    assert subprocess.run(["bash", "-c", check_line(str(tmp_path / "b"))], check=False).returncode == 0


def test_configmap_keys_are_valid_and_an_oversized_bundle_is_refused(tmp_path: Path) -> None:
    bundle = build_bundle(Workload.builtin("resnet50"), tmp_path)
    manifest = configmap_manifest(bundle, "ns", {})
    assert all(re.fullmatch(r"[-._a-zA-Z0-9]{1,253}", key) for key in manifest["data"])
    items = bundle_volume(bundle)["configMap"]["items"]
    assert {item["path"] for item in items} == {*bundle.files, INDEX_FILE}
    (tmp_path / "prog.py").write_text("print('hi')\n")
    (tmp_path / "weights.bin").write_bytes(os.urandom(CONFIGMAP_LIMIT_BYTES))
    big = build_bundle(Workload("big", command=("python", "prog.py", "weights.bin")), tmp_path)
    with pytest.raises(SubmitError, match=r"over the 1024 KiB .* largest files: workload/weights.bin \(1024 KiB\)"):
        configmap_manifest(big, "ns", {})


# -- end to end, with a Python that has torch and not pytest-hetero -----------------------------
@pytest.mark.slurm
def test_slurm_job_runs_the_bundle_with_a_torch_only_python(
    live_pytester: pytest.Pytester, slurm_cluster: LiveSlurm, torch_only_python: Path
) -> None:
    platform = _torch_only_platform("slurm", torch_only_python)
    _suite(live_pytester, platform)
    result = live_pytester.runpytest(
        "--platforms-file=platforms.yaml", "--platform=slurm-torch-only", "--hetero-json=out.json"
    )
    result.assert_outcomes(passed=2)
    records = _records(live_pytester)
    workdir = Path(records["test_prog"]["job"]["logs"]["batch_script"]).parent
    assert records["test_prog"]["job"]["argv"][-1] == str(workdir / "bundle" / "workload" / "prog.py")
    script = (workdir / "batch.sh").read_text()
    assert f"export PYTHONPATH={workdir / 'bundle'}" in script and "is not visible on this node" in script
    assert "pip install" not in script
    assert records["test_resnet"]["job"]["argv"][:3] == ["timeout", "--kill-after=24", "240"]  # the test's bound
    assert "#SBATCH --time=5\n" in Path(records["test_resnet"]["job"]["logs"]["batch_script"]).read_text()


def test_kubernetes_pod_runs_the_bundle_from_a_configmap_with_a_torch_only_python(
    pytester: pytest.Pytester, k8s_target: Target, torch_only_python: Path, tmp_path: Path
) -> None:
    mount = tmp_path / "bundle-mount"
    options = {"kubeconfig": str(k8s_target.kubeconfig), "namespace": k8s_target.namespace, "watch_timeout_s": 2}
    # A stock image with torch; the emulated node runs the command as a local process, so the
    # platform names the torch-only Python as the image's interpreter.
    image = {"container_image": "pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime", "python": str(torch_only_python)}
    platform = {
        "name": "k8s-torch-only",
        "accelerator": {"kind": "cpu"},
        "backend": {"kind": "kubernetes", "options": {**options, "bundle_mount_path": str(mount)}},
        "environment": image,
        "resources": {"time_limit_min": 5},
    }
    _suite(pytester, platform)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--platforms-file=platforms.yaml",
        "--platform=k8s-torch-only",
        "--hetero-json=out.json",
    )
    result.assert_outcomes(passed=2)
    records = _records(pytester)
    assert records["test_prog"]["job"]["argv"][-1] == f"{mount}/workload/prog.py"
    assert (mount / "workload" / "helper.py").read_text().strip() == "VALUE = 42.0"  # from the ConfigMap
    api, _ = connect(str(k8s_target.kubeconfig), None, False)
    left = k8s.CoreV1Api(api).list_namespaced_config_map(k8s_target.namespace).items
    assert left == []  # deleted at session end


def test_local_platform_with_its_own_torch_only_python_gets_the_bundle(
    pytester: pytest.Pytester, torch_only_python: Path
) -> None:
    platform = _torch_only_platform("local", torch_only_python)
    _suite(pytester, platform)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--platforms-file=platforms.yaml",
        "--platform=local-torch-only",
        "--hetero-json=out.json",
    )
    result.assert_outcomes(passed=2)
    argv = _records(pytester)["test_prog"]["job"]["argv"]
    assert argv[0] == str(torch_only_python) and argv[-1].endswith("/bundle/workload/prog.py")


def test_a_command_running_a_module_of_the_test_directory_finds_it_in_the_bundle(
    live_pytester: pytest.Pytester, slurm_cluster: LiveSlurm, torch_only_python: Path
) -> None:
    """``python -m mybench`` from a Slurm job, which starts in its run directory, not the test's."""
    platform = _torch_only_platform("slurm", torch_only_python)
    _suite(live_pytester, platform)
    live_pytester.mkpydir("mybench")
    (live_pytester.path / "mybench" / "__main__.py").write_text(
        PROGRAM.replace("import helper", "from mybench import helper")
    )
    (live_pytester.path / "mybench" / "helper.py").write_text("VALUE = 42.0\n")
    live_pytester.makepyfile(
        test_module="""
import pytest

@pytest.mark.hetero(command=["python", "-m", "mybench"])
def test_module(hetero_result):
    assert hetero_result.metric("throughput_sps") == 42.0
"""
    )
    result = live_pytester.runpytest(
        "test_module.py", "--platforms-file=platforms.yaml", "--platform=slurm-torch-only", "--hetero-json=out.json"
    )
    result.assert_outcomes(passed=1)
