"""Backend options checked before anything is submitted, in dry runs too (issue 14).

Control characters in Slurm options would end an ``#SBATCH`` line and start another;
Kubernetes names, label keys and values the API server would refuse. Both are catalogue
problems with their JSON path, and a usage error (exit 4) even under ``--hetero-dry-run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_hetero.backends.k8s_manifest import load_template
from pytest_hetero.config.loader import parse_catalogue
from pytest_hetero.errors import ConfigError


def load(backend: dict[str, Any]) -> None:
    entry = {"name": "p", "accelerator": {"kind": "cpu"}, "backend": backend, "environment": {"container_image": "i"}}
    parse_catalogue({"version": 1, "platforms": [entry]}, "platforms.yaml")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"partition": "debug\n#SBATCH --uid=0"}, r"options\.partition: 'debug\\n#SBATCH --uid=0' holds the control"),
        ({"account": "a\rb"}, r"options\.account: 'a\\rb' holds the control character '\\r'"),
        ({"qos": "normal\n"}, r"options\.qos: 'normal\\n' holds the control character '\\n'"),
        ({"sbatch_extra": ["--comment=x\n#SBATCH --x"]}, r"options\.sbatch_extra\[0\]: .* does not match"),
        ({"sbatch_extra": ["--comment=x\n"]}, r"options\.sbatch_extra\[0\]: .* holds the control"),  # passes "$"
        ({"constraint": "a\x00"}, r"options\.constraint: 'a\\x00' holds the control character"),
    ],
)
def test_control_characters_in_slurm_options_are_refused(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=rf"\$\.platforms\[0\]\.backend\.{problem}"):
        load({"kind": "slurm", "options": options})


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"namespace": "Bench_NS"}, r"namespace: 'Bench_NS' is not a valid DNS-1123 label"),
        ({"namespace": "bench\n"}, r"namespace: 'bench\\n' is not a valid DNS-1123 label"),
        ({"namespace": "a" * 64}, r"namespace: 'a{64}' is not a valid DNS-1123 label"),
        ({"image_pull_secrets": ["ok", "Reg Creds"]}, r"image_pull_secrets\[1\]: 'Reg Creds' is not a valid DNS-1123"),
        ({"service_account": "-bench"}, r"service_account: '-bench' is not a valid DNS-1123 subdomain"),
        ({"labels": {"team name": "ml"}}, r"labels: key 'team name' is not a valid label key"),
        ({"labels": {"example.com/team": "ml ops"}}, r"labels: value 'ml ops' is not a valid label value"),
        ({"labels": {"Bad_Prefix/team": "ml"}}, r"labels: key 'Bad_Prefix/team' is not a valid label key"),
        ({"node_selector": {"gpu": "a" * 64}}, r"node_selector: value 'a{64}' is not a valid label value"),
        ({"annotations": {"/x": "anything at all"}}, r"annotations: key '/x' is not a valid label key"),
        ({"pvc": {"imagenet": "Claim"}}, r"pvc\.imagenet: 'Claim' is not a valid DNS-1123 subdomain"),
        ({"queue_name": "q" * 64}, r"queue_name: 'q{64}' is not a valid Kueue queue name"),
    ],
)
def test_kubernetes_names_follow_the_api_rules(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=rf"\$\.platforms\[0\]\.backend\.options\.{problem}"):
        load({"kind": "kubernetes", "options": options})


def test_valid_kubernetes_names_pass() -> None:
    options = {
        "namespace": "bench-1",
        "image_pull_secrets": ["regcred", "team.registry-2"],
        "labels": {"app.kubernetes.io/part-of": "pytest-hetero", "team": "", "tier": "A_b.c-1"},
        "annotations": {"example.com/note": "any text: even spaces"},
    }
    load({"kind": "kubernetes", "options": options})


CATALOGUE = """
version: 1
platforms:
  - name: bad
    accelerator: {kind: cpu}
    backend: {kind: BACKEND, options: OPTIONS}
    environment: ENVIRONMENT
"""


@pytest.mark.parametrize(
    ("backend", "options", "shown"),
    [
        ("slurm", '{partition: "debug\\n#SBATCH --uid=0"}', "*backend.options.partition: 'debug\\n#SBATCH --uid=0'*"),
        ("kubernetes", "{namespace: Not_Valid}", "*backend.options.namespace: 'Not_Valid' is not a valid*"),
    ],
)
def test_dry_run_with_bad_options_is_a_usage_error(
    pytester: pytest.Pytester, backend: str, options: str, shown: str
) -> None:
    environment = '{container_image: "python:3.11"}' if backend == "kubernetes" else "{}"
    catalogue = CATALOGUE.replace("BACKEND", backend).replace("OPTIONS", options).replace("ENVIRONMENT", environment)
    pytester.makefile(".yaml", platforms=catalogue)
    pytester.makepyfile(
        test_b="import pytest\n@pytest.mark.hetero(command=['true'])\ndef test_b(hetero_result): pass\n"
    )
    result = pytester.runpytest("--platforms-file=platforms.yaml", "--platform=bad", "--hetero-dry-run")
    assert int(result.ret) == 4  # pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([shown])
    assert "#SBATCH --uid" not in result.stdout.str() and "Traceback" not in result.stderr.str()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"kind: Job\n# caf\xe9\n", r"template\.yaml:2: Kubernetes template must be UTF-8 text"),
        (b"a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + b"".join(
            b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n" % ((98 + i, 98 + i) + (97 + i,) * 10)
            for i in range(8)), r"expands to more than"),
    ],
    ids=["latin1", "alias-bomb"],
)  # fmt: skip
def test_kubernetes_template_file_is_read_within_bounds(tmp_path: Path, content: bytes, problem: str) -> None:
    (tmp_path / "template.yaml").write_bytes(content)
    with pytest.raises(ConfigError, match=rf"backend\.options\.template: cannot read .*{problem}"):
        load_template("template.yaml", str(tmp_path / "platforms.yaml"))
