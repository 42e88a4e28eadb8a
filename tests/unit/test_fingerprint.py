"""Fingerprints: the workload's code found statically, the platform's parts, and why two records differ."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest
from workload_runs import job_env

from pytest_hetero.config.models import Accelerator, BackendConfig, Environment, Platform, Resources
from pytest_hetero.fingerprint import Fingerprints, code_hashes, differences, fingerprints, platform_parts
from pytest_hetero.sources import MAX_FILE_BYTES, command_files, module_files
from pytest_hetero.workload import Workload

PLATFORM = Platform(
    name="cpu",
    accelerator=Accelerator(kind="cpu"),
    backend=BackendConfig(kind="local"),
    environment=Environment(env=MappingProxyType({"OMP_NUM_THREADS": "4", "HF_TOKEN": "s3cret-value"})),
)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A package ``bench`` beside an unrelated one, as a test directory would hold them."""
    _write(
        tmp_path,
        {
            "bench/__init__.py": "",
            "bench/train.py": """
                import json
                import torch
                from . import model
                from bench.util import helper

                ADAPTER = "bench.plugins.fast:FastAdapter"

                def main():
                    from bench.lazy import later
            """,
            "bench/model.py": "from .layers import Conv\n",
            "bench/layers.py": "Conv = object\n",
            "bench/util/__init__.py": "",
            "bench/util/helper.py": "X = 1\n",
            "bench/lazy.py": "later = 1\n",
            "bench/plugins/__init__.py": "",
            "bench/plugins/fast.py": "class FastAdapter: ...\n",
            "bench/unused.py": "never imported\n",
            "other/__init__.py": "",
        },
    )
    return tmp_path


def test_a_module_brings_its_project_imports_and_nothing_else(project: Path) -> None:
    files = module_files("bench.train", [project])

    assert sorted(files) == [
        "bench/__init__.py",
        "bench/layers.py",
        "bench/lazy.py",
        "bench/model.py",
        "bench/plugins/__init__.py",
        "bench/plugins/fast.py",
        "bench/train.py",
        "bench/util/__init__.py",
        "bench/util/helper.py",
    ]
    assert module_files("no.such.module", [project]) == {}


def test_a_command_brings_its_script_and_the_script_s_neighbours(tmp_path: Path) -> None:
    _write(tmp_path, {"run.py": "import helper\nimport os\n", "helper.py": "", "unrelated.py": ""})
    (tmp_path / "big.bin").write_bytes(b"\0" * (MAX_FILE_BYTES + 1))

    files = command_files([sys.executable, "run.py", "--data", "big.bin", "--flag"], tmp_path)

    assert sorted(files) == ["helper.py", "run.py"]  # not the interpreter, not the data
    assert command_files(["python", "-c", "print(1)"], tmp_path) == {}


def test_editing_any_file_of_the_program_changes_its_fingerprint_not_its_config_hash(project: Path) -> None:
    workload = Workload(name="t", module="bench.train", config={"batch_size": 4})
    before = fingerprints(workload, PLATFORM, project)

    (project / "bench" / "layers.py").write_text("Conv = object  # now slower\n")
    after = fingerprints(workload, PLATFORM, project)
    other_config = fingerprints(dataclasses.replace(workload, config={"batch_size": 8}), PLATFORM, project)

    assert after.workload != before.workload and after.platform == before.platform
    changed = [name for name, digest in after.code if dict(before.code)[name] != digest]
    assert changed == ["bench/layers.py"]
    assert other_config.workload not in (before.workload, after.workload)
    assert len(before.workload) == 16 and int(before.workload, 16) >= 0


def test_builtin_workloads_are_fingerprinted_without_importing_torch() -> None:
    code = (
        "import sys; from pathlib import Path; from pytest_hetero.fingerprint import code_hashes; "
        "from pytest_hetero.workload import Workload; "
        "files = code_hashes(Workload.builtin('resnet50'), Path('.')); "
        "assert 'pytest_hetero/workloads/resnet50.py' in files and 'pytest_hetero/workloads/training.py' in files; "
        "assert 'pytest_hetero/workloads/cosmoflow.py' not in files, files; "
        "assert 'torch' not in sys.modules; print(len(files))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=job_env(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 5


def test_a_module_not_found_here_is_fingerprinted_by_its_name_and_config(tmp_path: Path) -> None:
    workload = Workload(name="t", module="only_in_the_container.train")
    assert code_hashes(workload, tmp_path) == {}
    assert fingerprints(workload, PLATFORM, tmp_path).workload


def test_platform_fingerprint_covers_what_changes_a_measurement() -> None:
    base = platform_parts(PLATFORM)
    env = PLATFORM.environment

    def parts(environment: Environment = env, resources: Resources = PLATFORM.resources) -> dict[str, str]:
        return platform_parts(dataclasses.replace(PLATFORM, environment=environment, resources=resources))

    rotated = parts(environment=dataclasses.replace(env, env={**env.env, "HF_TOKEN": "rotated"}))
    threads = parts(environment=dataclasses.replace(env, env={**env.env, "OMP_NUM_THREADS": "8"}))
    image = parts(environment=dataclasses.replace(env, container_image="nvcr.io/nvidia/pytorch:24.01"))
    longer = parts(resources=Resources(time_limit_min=600))
    more_cpus = parts(resources=Resources(cpus_per_task=16))

    assert rotated == base  # a secret counts by its name only
    assert [k for k in base if threads[k] != base[k]] == ["env"]
    assert [k for k in base if image[k] != base[k]] == ["image"]
    assert longer == base  # a longer time limit measures the same
    assert [k for k in base if more_cpus[k] != base[k]] == ["resources"]
    assert "s3cret-value" not in repr(fingerprints(Workload(name="t", command=("true",)), PLATFORM, Path(".")))


def _fp(workload: str, platform: str, code: dict[str, str], parts: dict[str, str]) -> Fingerprints:
    return Fingerprints(workload, platform, tuple(sorted(code.items())), tuple(sorted(parts.items())))


def test_differences_say_what_changed() -> None:
    code = {"train.py": "1" * 16, "model.py": "2" * 16}
    parts = {"env": "3" * 16, "launcher": "4" * 16}
    mine = _fp("a" * 16, "b" * 16, code, parts)
    program = _fp("c" * 16, "b" * 16, {**code, "model.py": "5" * 16}, parts)
    platform = _fp("a" * 16, "d" * 16, code, {**parts, "env": "6" * 16})
    where = "in the baseline"

    assert differences(mine, "h1", mine, "h1", where) == []
    assert differences(mine, "h1", program, "h1", where) == [
        f"workload fingerprint {'a' * 16} ≠ {'c' * 16} in the baseline: the program changed (model.py)"
    ]
    assert differences(mine, "h1", program, "h2", where) == [
        "workload config hash h1 ≠ h2 in the baseline: the config changed"
    ]
    assert differences(mine, "h1", platform, "h1", where) == [
        f"platform fingerprint {'b' * 16} ≠ {'d' * 16} in the baseline: the platform changed (env)"
    ]
    assert differences(mine, "h1", Fingerprints(), "h1", where) == [
        "the record in the baseline has no fingerprints (written by an older pytest-hetero): "
        "what it measured is unknown"
    ]
    assert differences(Fingerprints(), "h1", Fingerprints(), "h1", where) == []  # both older: by config hash
