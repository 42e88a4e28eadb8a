"""A backend and a launcher from outside pytest_hetero: registered by a conftest plugin, named in
platforms.yaml, and run end to end (and in a dry run) like the built-in ones.

The conftest is what a site's own plugin would be: it subclasses the public ABCs, registers its
names from the ``pytest_hetero_register`` hook, and touches nothing inside the package.
"""

from __future__ import annotations

import json

import pytest

from pytest_hetero.reporting.json_report import expand_report

THIRD_PARTY_PLUGIN = '''
import os
import subprocess
import sys
from dataclasses import dataclass, field

from pytest_hetero.backends import Backend, JobHandle, JobOutput, JobSpec, JobState, register_backend
from pytest_hetero.backends.base import BackendOptions, check_options
from pytest_hetero.errors import SubmitError
from pytest_hetero.launchers import LaunchContext, Launcher, interpreter_for, program_argv, register_launcher


@dataclass(frozen=True)
class ToyOptions(BackendOptions):
    queue: str = "default"


@dataclass
class ToyHandle(JobHandle):
    proc: "subprocess.Popen[bytes] | None" = field(default=None, repr=False)
    state: JobState = JobState.PENDING


class ToyBatchBackend(Backend):
    """A site's own batch system: writes a job script, runs it with sh, polls the process."""

    name = "toybatch"
    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"queue": {"type": "string"}},
    }

    @classmethod
    def parse_options(cls, raw):
        return ToyOptions.from_mapping(check_options(cls.options_schema, raw))

    def launch_context(self):
        return LaunchContext(nodes=1, ranks_per_node=1, python=sys.executable)

    def render(self, spec):
        return f"#TOYBATCH queue={self.options.queue} name={spec.name}\\n" + " ".join(spec.argv) + "\\n"

    def submit(self, spec):
        spec.workdir.mkdir(parents=True, exist_ok=True)
        script = spec.workdir / "job.sh"
        script.write_text(self.render(spec))
        env = {**os.environ, **self.platform.environment.env, **spec.env}
        with open(spec.stdout_path, "wb") as out, open(spec.stderr_path, "wb") as err:
            try:
                proc = subprocess.Popen(["sh", str(script)], stdout=out, stderr=err, env=env, cwd=spec.cwd)
            except OSError as exc:
                raise SubmitError(f"toybatch: {exc}") from exc
        return ToyHandle(job_id=f"toy-{proc.pid}", spec=spec, proc=proc, state=JobState.RUNNING)

    def status(self, handle):
        code = handle.proc.poll()
        if code is not None:
            handle.state = JobState.COMPLETED if code == 0 else JobState.FAILED
        return handle.state

    def cancel(self, handle):
        if handle.proc.poll() is None:
            handle.proc.kill()
            handle.proc.wait()
            handle.state = JobState.CANCELLED

    def collect(self, handle):
        return JobOutput(
            job_id=handle.job_id,
            state=handle.state,
            exit_code=handle.proc.returncode,
            stdout_path=handle.spec.stdout_path,
            stderr_path=handle.spec.stderr_path,
            elapsed_s=0.0,
        )


class TaggedLauncher(Launcher):
    """Starts the workload under `env`, tagging its environment."""

    name = "tagged"
    options_schema = {"type": "object", "additionalProperties": False, "properties": {"tag": {"type": "string"}}}

    def command(self, workload, context):
        tag = self.options.get("tag", "none")
        return ["env", f"TOY_TAG={tag}", *program_argv(workload, interpreter_for(self.platform, context))]


def pytest_hetero_register(config):
    register_backend("toybatch", ToyBatchBackend)
    register_launcher("tagged", TaggedLauncher)
'''

CATALOGUE = """
version: 1
platforms:
  - name: site-batch
    accelerator: {kind: cpu, model: host}
    backend: {kind: toybatch, options: {queue: short}}
    launcher: {kind: tagged, options: {tag: night}}
"""

WORKLOAD = """
import json, os
metrics = [{"name": "throughput_sps", "value": 42.0, "unit": "samples/s", "higher_is_better": True}]
print("tag:", os.environ.get("TOY_TAG"))
print(":::HETERO_METRICS " + json.dumps({"metrics": metrics, "workload": "toy"}))
"""

TEST_FILE = """
import pytest

@pytest.mark.hetero(command=["python", "toy_work.py"], config={"n": 1})
def test_toy(hetero_result):
    assert hetero_result.metric("throughput_sps") == 42.0
"""


@pytest.fixture
def site(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(THIRD_PARTY_PLUGIN)
    pytester.makefile(".yaml", platforms=CATALOGUE)
    pytester.makefile(".py", toy_work=WORKLOAD)
    pytester.makepyfile(test_toy=TEST_FILE)
    pytester.makeini("[pytest]\njunit_family = xunit1\n")
    return pytester


def test_a_registered_backend_and_launcher_run_a_benchmark_end_to_end(site: pytest.Pytester) -> None:
    result = site.runpytest_subprocess(
        "--platforms-file=platforms.yaml", "--platform=site-batch", "--hetero-json=report.json"
    )
    result.assert_outcomes(passed=1)
    record = expand_report(json.loads((site.path / "report.json").read_text()))["results"][0]
    assert record["platform"]["backend"] == "toybatch" and record["platform"]["launcher"] == "tagged"
    assert record["job"]["id"].startswith("toy-")
    assert record["job"]["argv"][:2] == ["env", "TOY_TAG=night"]
    assert record["metrics"]["throughput_sps"]["value"] == 42.0
    assert "tag: night" in (site.path / record["job"]["logs"]["stdout"]).read_text()


def test_a_registered_backend_renders_the_dry_run(site: pytest.Pytester) -> None:
    result = site.runpytest_subprocess("--platforms-file=platforms.yaml", "--platform=site-batch", "--hetero-dry-run")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*#TOYBATCH queue=short name=test_toy[[]site-batch[]]*", "env TOY_TAG=night *"])


def test_registered_options_are_checked_with_their_json_path(site: pytest.Pytester) -> None:
    site.makefile(".yaml", platforms=CATALOGUE.replace("queue: short", "queue: short, nodes: 3"))
    result = site.runpytest_subprocess("--platforms-file=platforms.yaml", "--platform=site-batch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*$.platforms[[]0[]].backend.options: Additional properties*'nodes' was unexpected*"])


def test_without_the_plugin_the_kind_is_unknown_with_the_known_ones(site: pytest.Pytester) -> None:
    (site.path / "conftest.py").unlink()
    result = site.runpytest_subprocess("--platforms-file=platforms.yaml", "--platform=site-batch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*$.platforms[[]0[]].backend.kind: unknown backend 'toybatch'; known: fake, kubernetes, local, slurm",
            "*$.platforms[[]0[]].launcher.kind: unknown launcher 'tagged'; known: mpirun, poprun, python, srun, torch*",
        ]
    )
