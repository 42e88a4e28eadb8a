"""Secrets by design (issue 14): values marked secret or taken from the submitting environment,
URL passwords and secret-like keys never reach a Slurm batch script, yet reach the job.

The rendering tests need no cluster; the live one submits to the local Slurm cluster
(``scripts/slurm-local.sh up``) and skips without one (fails under CI).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from pytest_hetero.backends.base import JobSpec, JobState
from pytest_hetero.backends.kubernetes import KubernetesBackend
from pytest_hetero.backends.slurm import SlurmBackend
from pytest_hetero.backends.slurm_script import exported_env, render_batch_script
from pytest_hetero.config.loader import parse_catalogue
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import ConfigError
from pytest_hetero.redact import is_secret
from pytest_hetero.scheduler import run_job
from pytest_hetero.selection import select_platforms
from pytest_hetero.workload import Workload

if TYPE_CHECKING:
    from conftest import LiveSlurm

SECRETS = {
    "by-design": "hf_DesignSecret4242",  # HF_AUTH: a name that does not look secret
    "from-env": "submitter-only-7171",  # read from the submitting environment by reference
    "url": "urlpw-3131",  # inside postgresql://bench:...@db
    "setup": "setup-pw-5151",  # in a setup line
    "config": "config-pw-6161",  # a workload config key 'password'
}
PROGRAM = """
import json, os, sys
config = json.loads(os.environ["HETERO_WORKLOAD_CONFIG"])
seen = {"HF_AUTH": os.environ.get("HF_AUTH"), "FROM_SUBMITTER": os.environ.get("FROM_SUBMITTER"),
        "DB_URL": os.environ.get("DB_URL"), "SETUP_PASSWORD": os.environ.get("SETUP_PASSWORD"),
        "config_password": config.get("password"), "argv_password": json.loads(sys.argv[1])["password"]}
with open(os.environ["SEEN_FILE"], "w") as out:
    json.dump(seen, out)
print(":::HETERO_METRICS " + json.dumps({"metrics": [{"name": "throughput_sps", "value": 1.0}]}))
"""


def platform(backend: str = "slurm", **environment: Any) -> Platform:
    entry = {
        "name": "p",
        "accelerator": {"kind": "cpu"},
        "backend": {"kind": backend},
        "resources": {"time_limit_min": 1},
        "environment": {
            "env": {
                "HF_AUTH": {"value": SECRETS["by-design"], "secret": True},
                "FROM_SUBMITTER": {"from_env": "E14A_SUBMITTER_SECRET"},
                "DB_URL": f"postgresql://bench:{SECRETS['url']}@db:5432/results",
                "PLAIN": "visible-value",
            },
            "setup": [f"export SETUP_PASSWORD={SECRETS['setup']}", "echo setting up"],
            **environment,
        },
    }
    return parse_catalogue({"version": 1, "platforms": [entry]}, "platforms.yaml").platforms[0]


def spec_for(plat: Platform, workdir: Path, seen: Path) -> JobSpec:
    workload = Workload(name="w", command=(sys.executable, "-c", PROGRAM), config={"password": SECRETS["config"]})
    return JobSpec(
        name="secrets",
        argv=(*workload.command, workload.config_json),
        workdir=workdir,
        platform=plat,
        env={"HETERO_WORKLOAD_CONFIG": workload.config_json, "SEEN_FILE": str(seen)},
        timeout_s=60.0,
    )


@pytest.fixture(autouse=True)
def submitter_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E14A_SUBMITTER_SECRET", SECRETS["from-env"])


def test_no_secret_in_the_batch_script(tmp_path: Path) -> None:
    script = render_batch_script(spec_for(platform(), tmp_path / "job", tmp_path / "seen.json"))
    for what, value in SECRETS.items():
        assert value not in script, f"the {what} secret is in the batch script"
    assert "export PLAIN=visible-value" in script
    assert 'eval "$HETERO_SECRET_SETUP_0"' in script and "echo setting up" in script
    assert '"$HETERO_SECRET_ARG_3"' in script  # the config JSON argument, which holds a password
    assert "# passed through sbatch's environment, not written here: DB_URL FROM_SUBMITTER" in script


def test_secrets_are_handed_to_sbatch_by_environment(tmp_path: Path) -> None:
    public, hidden = exported_env(spec_for(platform(), tmp_path / "job", tmp_path / "seen.json"))
    assert {"HF_AUTH", "FROM_SUBMITTER", "DB_URL", "HETERO_WORKLOAD_CONFIG", "HETERO_SECRET_SETUP_0"} <= set(hidden)
    assert hidden["FROM_SUBMITTER"] == SECRETS["from-env"] and hidden["HF_AUTH"] == SECRETS["by-design"]
    assert public["PLAIN"] == "visible-value" and not any(v in str(public) for v in SECRETS.values())
    assert is_secret("ANY_NAME", SECRETS["by-design"])  # registered by value: masked under any name


def test_from_env_reference_unset_is_a_usage_error_once_selected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("E14A_SUBMITTER_SECRET")
    plat = platform()  # loading is fine: only selecting the platform needs the variable
    catalogue = parse_catalogue(
        {"version": 1, "platforms": [{"name": "p", "accelerator": {"kind": "cpu"}, "backend": {"kind": "local"},
                                      "environment": {"env": {"T": {"from_env": "E14A_SUBMITTER_SECRET"}}}}]},
        "platforms.yaml",
    )  # fmt: skip
    assert plat.environment.missing == {"FROM_SUBMITTER": "E14A_SUBMITTER_SECRET"}
    with pytest.raises(
        ConfigError, match=r"platform 'p': environment\.env\.T: from_env E14A_SUBMITTER_SECRET: not set"
    ):
        select_platforms(catalogue, ["p"])


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"X": {"secret": True}}, r"\$\.platforms\[0\]\.environment\.env\.X: 'value' is a required property"),
        ({"X": {"from_env": "A B"}}, r"\$\.platforms\[0\]\.environment\.env\.X\.from_env: 'A B' does not match"),
        ({"X": {"value": "v", "secret": "yes"}}, r"\$\.platforms\[0\]\.environment\.env\.X\.secret: 'yes' is not"),
    ],
)
def test_secret_entries_are_schema_checked(env: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        platform(env=env)


@pytest.mark.slurm
def test_secrets_reach_the_slurm_job_but_not_its_script(slurm_dir: Path, slurm_cluster: LiveSlurm) -> None:
    seen = slurm_dir / "seen.json"
    output = run_job(SlurmBackend(platform()), spec_for(platform(), slurm_dir / "job", seen))
    assert output.state is JobState.COMPLETED, output.stdout()
    assert json.loads(seen.read_text()) == {
        "HF_AUTH": SECRETS["by-design"],
        "FROM_SUBMITTER": SECRETS["from-env"],
        "DB_URL": f"postgresql://bench:{SECRETS['url']}@db:5432/results",
        "SETUP_PASSWORD": SECRETS["setup"],
        "config_password": SECRETS["config"],
        "argv_password": SECRETS["config"],
    }
    written = "".join(p.read_text(errors="replace") for p in (slurm_dir / "job").rglob("*") if p.is_file())
    for what, value in SECRETS.items():
        assert value not in written, f"the {what} secret is in a file of the job directory"


def test_kubernetes_render_refers_to_the_jobs_secret_never_the_value(tmp_path: Path) -> None:
    plat = platform("kubernetes", container_image="python:3.11")
    text = KubernetesBackend(plat).render(spec_for(plat, tmp_path / "job", tmp_path / "seen.json"))
    env = yaml.safe_load(text)["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in env if "valueFrom" in e}
    assert {"HF_AUTH", "FROM_SUBMITTER", "DB_URL"} <= set(refs) and {"name": "PLAIN", "value": "visible-value"} in env
    for what, value in SECRETS.items():  # tests/backends/test_k8s_secrets.py: what the cluster receives
        assert value not in text, f"the {what} secret is in the dry run"
