"""Cerebras for real: the cerebras adapter on cerebras.pytorch's CPU backend, through the plugin.

``.venv-cerebras`` (scripts/cerebras-venv.sh: cerebras-pytorch 2.10 with its own
torch 2.4.0; scripts/test.sh builds it where it can) runs a workload's tiny
configuration as a local platform of accelerator kind ``cerebras``: the plugin
ships the workload bundle (that venv has no pytest-hetero), the adapter
compiles the model for ``cstorch.backend("CPU")`` and trains it with a traced
step fed by a ``DataExecutor``. The ``CSX`` backend needs an appliance; only the
rendering of a CS-2 job is tested (tests/plugin/test_example_centre.py).
Without the venv these tests skip; under CI they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from pytest_hetero.bundle import build_bundle
from pytest_hetero.workload import Workload

ROOT = Path(__file__).parent.parent.parent
CEREBRAS_PYTHON = Path(os.environ.get("HETERO_CEREBRAS_PYTHON") or ROOT / ".venv-cerebras" / "bin" / "python")
TINY = {"cerebras_backend": "CPU", "threads": 1, "batch_size": 2, "train_steps": 4, "warmup_steps": 1, "eval_steps": 1}


@pytest.fixture(scope="module")
def cerebras_python() -> Path:
    probe = "import cerebras.pytorch, torch; print(torch.__version__)"
    proc = (
        subprocess.run([str(CEREBRAS_PYTHON), "-c", probe], capture_output=True, text=True, timeout=300, check=False)
        if CEREBRAS_PYTHON.exists()
        else None
    )
    if proc is None or proc.returncode != 0:
        reason = f"no cerebras-pytorch at {CEREBRAS_PYTHON}; build it with: bash scripts/cerebras-venv.sh"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the Cerebras CPU-backend tests must run: {reason}", pytrace=False)
        pytest.skip(reason)
    return CEREBRAS_PYTHON


def test_every_workload_module_imports_under_the_sdks_torch(cerebras_python: Path, tmp_path: Path) -> None:
    root = build_bundle(Workload.builtin("cosmoflow"), tmp_path).write(tmp_path / "bundle")
    modules = sorted(
        ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for path in (root / "pytest_hetero").rglob("*.py")
    )
    program = (
        "import importlib, sys, torch\nfor m in sys.argv[1:]: importlib.import_module(m)\nprint(torch.__version__)"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root)}
    done = subprocess.run(
        [str(cerebras_python), "-c", program, *modules], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith("2.4."), done.stdout  # the SDK's own torch, not the project's


def test_cosmoflow_tiny_trains_through_the_cerebras_adapter_on_the_cpu_backend(
    pytester: pytest.Pytester, cerebras_python: Path
) -> None:
    platform = {
        "name": "cerebras-cpu",
        "accelerator": {"kind": "cerebras", "model": "cerebras.pytorch CPU backend"},
        "backend": {"kind": "local"},
        "environment": {"python": str(cerebras_python)},
        "resources": {"time_limit_min": 10},
    }
    pytester.makefile(".yaml", platforms=yaml.safe_dump({"version": 1, "platforms": [platform]}))
    pytester.makepyfile(
        test_cs=f"""
import pytest

@pytest.mark.hetero(workload="cosmoflow", config={TINY!r}, accelerators=["cerebras"])
def test_cosmoflow(hetero_result):
    assert hetero_result.metric("throughput_sps") > 0
"""
    )
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--platforms-file=platforms.yaml", "--platform=cerebras-cpu", "--hetero-json=out.json"
    )
    result.assert_outcomes(passed=1)
    (record,) = json.loads((pytester.path / "out.json").read_text())["results"]
    reported = record["workload"]["reported"]
    assert reported["config"]["device"] == "cerebras"
    assert reported["config"]["submission_platform"] == "1xCerebras-CPU"
    assert record["metrics"]["steady_steps"]["value"] >= 3 and 0 < record["metrics"]["eval_error"]["value"] < 5
    assert reported["time_split"]["dominant"] in ("compute", "data_wait", "staging", "communication", "other")
    assert record["job"]["argv"][:3] == [str(cerebras_python), "-m", "pytest_hetero.workloads.cosmoflow"]


def test_the_sdk_venv_has_no_pytest_hetero_of_its_own(cerebras_python: Path, tmp_path: Path) -> None:
    """So the runs above used the bundle the plugin shipped."""
    probe = [str(cerebras_python), "-c", "import pytest_hetero"]
    done = subprocess.run(probe, capture_output=True, timeout=120, cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert done.returncode != 0
