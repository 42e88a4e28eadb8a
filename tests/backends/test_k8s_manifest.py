"""Golden manifests of the kubernetes backend, the rules behind them, and how objects are read back.

Each platform shape renders to a file under tests/golden/k8s/. When a change
is intended, regenerate them and review the diff::

    HETERO_UPDATE_GOLDEN=1 pytest tests/backends/test_k8s_manifest.py
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_hetero.backends.base import JobSpec, JobState
from pytest_hetero.backends.k8s_client import connect
from pytest_hetero.backends.k8s_manifest import LABEL_RUN_ID, Identity, build_manifest, label_value, object_name
from pytest_hetero.backends.k8s_secrets import secret_manifest
from pytest_hetero.backends.k8s_status import exit_code, main_pod, state_of
from pytest_hetero.backends.kubernetes import KubernetesBackend, KubernetesJobHandle
from pytest_hetero.config.loader import load_catalogue, parse_catalogue
from pytest_hetero.config.models import Platform
from pytest_hetero.errors import ConfigError
from pytest_hetero.launchers import get_launcher
from pytest_hetero.workload import Workload

GOLDEN = Path(__file__).parent.parent / "golden" / "k8s"
#: A secret value in some golden platforms: the files hold a secretKeyRef, never this.
GOLDEN_SECRET = "golden-secret-never-written-4242"
TINY = {"batch_size": 4, "image_size": 32, "train_steps": 8}
IDENT = Identity(
    name="hetero-test-resnet50-tiny-abc123",
    namespace="ml-bench",
    run_id="20250101-000000-abcdef",
    session="0123456789ab",
)

A100 = {
    "name": "a100-k8s",
    "accelerator": {"kind": "nvidia-gpu", "model": "A100-SXM4-80GB", "count_per_node": 4, "memory_gb": 80},
    "backend": {
        "kind": "kubernetes",
        "options": {
            "namespace": "ml-bench",
            "kind": "job",
            "node_selector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "priority_class": "benchmark",
            "image_pull_secrets": ["ngc-registry"],
            "pvc": {"imagenet": "imagenet-rbd"},
            "shm_gb": 16,
            "queue_name": "gpu-benchmarks",
        },
    },
    "launcher": {"kind": "torchrun"},
    "resources": {"cpus_per_task": 32, "mem_gb": 240, "time_limit_min": 60},
    "environment": {
        "container_image": "nvcr.io/nvidia/pytorch:24.05-py3",
        "env": {"NCCL_DEBUG": "WARN", "HF_AUTH": {"value": GOLDEN_SECRET, "secret": True}},
    },
    "data_roots": {"imagenet": "/datasets/imagenet"},
}
MI250 = {
    "name": "mi250-k8s",
    "accelerator": {"kind": "amd-gpu", "model": "MI250X", "count_per_node": 1, "memory_gb": 64},
    "backend": {
        "kind": "kubernetes",
        "options": {"namespace": "ml-bench", "kind": "pod", "shm_gb": 8, "service_account": "bench-runner"},
    },
    "resources": {"cpus_per_task": 8, "mem_gb": 64.5, "time_limit_min": 30},
    "environment": {"container_image": "rocm/pytorch:rocm6.1_ubuntu22.04_py3.10_pytorch_2.1.2"},
}
IPU = {
    "name": "bow-pod16",
    "accelerator": {"kind": "graphcore-ipu", "model": "Bow-2000", "count_per_node": 4},
    "backend": {
        "kind": "kubernetes",
        "options": {
            "namespace": "ml-bench",
            "template": "ipujob-template.yaml",
            "run_as_user": 0,
            "accelerator_resource": False,
            "capabilities": ["IPC_LOCK"],  # multi-IPU jobs pin host memory (with hostIPC in the template)
        },
    },
    "resources": {"time_limit_min": 45},
    "environment": {"container_image": "graphcore/pytorch:3.3.0", "env": {"WANDB_API_KEY": GOLDEN_SECRET}},
}
CPU: dict[str, Any] = {
    "name": "cpu-k8s",
    "accelerator": {"kind": "cpu", "model": "EPYC-7763"},
    "backend": {"kind": "kubernetes", "options": {"namespace": "ml-bench"}},
    "resources": {"cpus_per_task": 16, "mem_gb": 32, "time_limit_min": 20},
    "environment": {
        "container_image": "python:3.12-slim",
        "setup": ["pip install --quiet torch==2.13.0"],
        "env": {"OMP_NUM_THREADS": "16"},
    },
}

PYTORCHJOB = {
    "name": "h100-2node-pytorchjob",
    "accelerator": {"kind": "nvidia-gpu", "model": "H100-SXM5-80GB", "count_per_node": 4},
    "backend": {"kind": "kubernetes", "options": {"namespace": "ml-bench", "template": "pytorchjob-template.yaml"}},
    "launcher": {"kind": "torchrun", "options": {"rdzv_port": 23456}},
    "resources": {"nodes": 2, "time_limit_min": 30},
    "environment": {
        "container_image": "nvcr.io/nvidia/pytorch:24.05-py3",
        "env": {"HF_AUTH": {"value": GOLDEN_SECRET, "secret": True}},
    },
}


def platform_of(entry: dict[str, Any]) -> Platform:
    """Validated like a catalogue entry; relative template paths resolve against GOLDEN."""
    return parse_catalogue({"version": 1, "platforms": [entry]}, source=str(GOLDEN / "platforms.yaml")).platforms[0]


def spec_for(platform: Platform) -> JobSpec:
    workload = Workload.builtin("resnet50", TINY)
    env = {
        "HETERO_WORKLOAD_CONFIG": workload.config_json,
        "HETERO_PLATFORM": platform.name,
        "HETERO_RUN_ID": IDENT.run_id,
    }
    argv = tuple(get_launcher(platform).command(workload, KubernetesBackend(platform).launch_context()))
    return JobSpec(
        name="test_resnet50_tiny[a]",
        argv=argv,
        workdir=Path("/tmp/w"),
        platform=platform,
        env=env,
        timeout_s=platform.time_limit_s,
    )


def rendered(entry: dict[str, Any]) -> str:
    platform = platform_of(entry)
    backend = KubernetesBackend(platform)  # loads the template like a real run
    ident = Identity(IDENT.name, IDENT.namespace, IDENT.run_id, IDENT.session, platform=platform.name)
    manifest = build_manifest(platform, spec_for(platform), ident, backend._template, options=backend.options)
    return yaml.dump(manifest, Dumper=_NoAliases, sort_keys=False)


class _NoAliases(yaml.SafeDumper):
    """Values a template uses twice (one per replica) written out twice, as the API server gets them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


@pytest.mark.parametrize(
    ("golden", "entry"),
    [
        ("a100-4x-torchrun-pvc.yaml", A100),
        ("amd-mi250-pod.yaml", MI250),
        ("ipujob-template-filled.yaml", IPU),
        ("cpu-job.yaml", CPU),
        ("pytorchjob-2node-torchrun.yaml", PYTORCHJOB),
    ],
)
def test_golden_manifest(golden: str, entry: dict[str, Any]) -> None:
    text, path = rendered(entry), GOLDEN / golden
    assert GOLDEN_SECRET not in text
    if os.environ.get("HETERO_UPDATE_GOLDEN"):
        path.write_text(text)
    expected = path.read_text() if path.exists() else ""
    assert text == expected, (
        f"{path} differs from the rendered manifest. If the change is intended, regenerate the golden files "
        "with:\n    HETERO_UPDATE_GOLDEN=1 pytest tests/backends/test_k8s_manifest.py\nand review the diff."
    )


# -- launch context ---------------------------------------------------------------------------
def test_a_pod_or_job_offers_no_multi_node_rendezvous() -> None:
    context = KubernetesBackend(platform_of(CPU)).launch_context()
    assert (context.nodes, context.rendezvous) == (1, None)


def test_two_node_torchrun_meets_at_the_operators_master() -> None:
    """Each replica of the PyTorchJob runs one torchrun; they meet at MASTER_ADDR, which the operator sets."""
    argv = spec_for(platform_of(PYTORCHJOB)).argv
    assert argv[:2] == ("bash", "-c")
    assert argv[2] == (
        'exec "$0" -m torch.distributed.run --nnodes="2" --rdzv-id="$MASTER_ADDR" '
        '--rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:23456" "$@"'
    )
    assert argv[3:] == ("python3", "--nproc-per-node=4", "-m", "pytest_hetero.workloads.resnet50", "--config-json",
                        '{"batch_size":4,"image_size":32,"train_steps":8}')  # fmt: skip


# -- options and platform checks ------------------------------------------------------------
def test_unknown_option_is_rejected_with_its_path() -> None:
    entry = {**CPU, "backend": {"kind": "kubernetes", "options": {"nodeselector": {"a": "b"}}}}
    with pytest.raises(
        ConfigError, match=r"\$\.platforms\[0\]\.backend\.options: Additional properties .*nodeselector"
    ):
        platform_of(entry)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"environment": {}}, "backend kubernetes needs environment.container_image"),
        ({"resources": {"nodes": 2}}, "nodes: 2 needs backend.options.template"),
        (
            {"backend": {"kind": "kubernetes", "options": {"pvc": {"coco": "coco-rbd"}}}},
            "backend.options.pvc names dataset 'coco', which is not in data_roots []",
        ),
    ],
)
def test_platforms_that_cannot_run_are_refused_at_start_up(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match="platform 'cpu-k8s'") as info:
        KubernetesBackend(platform_of({**CPU, **change}))
    assert problem in str(info.value)


def test_template_placeholders_typed_or_interpolated_and_unknown_ones_named() -> None:
    template = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"labels": {"team": "ml"}},
        "spec": {"runPolicy": {"activeDeadlineSeconds": "${hetero.deadline_s}"}, "note": "run ${hetero.run_id}"},
    }
    platform = platform_of({**CPU, "backend": {"kind": "kubernetes", "options": {"template": template}}})
    manifest = build_manifest(platform, spec_for(platform), IDENT, template)
    assert manifest["spec"]["runPolicy"]["activeDeadlineSeconds"] == 1200
    assert manifest["spec"]["note"] == f"run {IDENT.run_id}"
    assert manifest["metadata"]["labels"]["team"] == "ml"
    assert manifest["metadata"]["labels"]["pytest-hetero/run-id"] == IDENT.run_id
    broken = {**template, "spec": {"x": ["${hetero.gpus}"]}}
    with pytest.raises(ConfigError, match=r"\$\.spec\.x\[0\]: unknown placeholder \$\{hetero\.gpus\} \(known: "):
        build_manifest(platform, spec_for(platform), IDENT, broken)


@pytest.mark.parametrize("test_name", ["test_x[a100-k8s]", "T" * 200, "___"])
def test_object_names_and_label_values_are_valid(test_name: str) -> None:
    name = object_name(test_name, "abc123")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 57
    value = label_value(test_name + "/?")
    assert re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", value) and len(value) <= 63


def test_render_shows_a_secret_key_ref_never_the_value() -> None:
    platform = platform_of({**CPU, "environment": {**CPU["environment"], "env": {"HF_TOKEN": "hf_abcdef"}}})
    text = KubernetesBackend(platform).render(spec_for(platform))
    assert "hf_abcdef" not in text
    name = "hetero-test-resnet50-tiny-a-dryrun-env"
    ref = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": name, "key": "HF_TOKEN"}}}
    assert ref in yaml.safe_load(text)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert text.startswith(f"# created before the job, deleted with it: Secret {name} (Opaque) with keys HF_TOKEN\n")


def test_secret_values_go_to_the_jobs_secret_and_are_read_by_reference() -> None:
    """Marked, secret-looking, URL passwords, arguments and setup lines: in the Secret, referred to by name."""
    environment = {
        **CPU["environment"],
        "env": {"HF_AUTH": {"value": "hf-marked-4242", "secret": True}, "DB": "postgresql://u:pw-3131@db/x", "N": "1"},
        "setup": ["export PASSWORD=setup-5151", "echo ready"],
    }
    platform = platform_of({**CPU, "environment": environment})
    spec = dataclasses.replace(spec_for(platform), argv=("python", "-c", "x", '{"password": "arg-6161"}'))
    manifest = build_manifest(platform, spec, IDENT)
    secret = secret_manifest(platform, spec, IDENT.name, IDENT.namespace, manifest["metadata"]["labels"])
    assert secret is not None
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "HF_AUTH": "hf-marked-4242",
        "DB": "postgresql://u:pw-3131@db/x",
        "HETERO_SECRET_ARG_3": '{"password": "arg-6161"}',
        "HETERO_SECRET_SETUP_0": "export PASSWORD=setup-5151",
    }
    assert (secret["type"], secret["metadata"]["name"]) == ("Opaque", f"{IDENT.name}-env")
    assert secret["metadata"]["labels"][LABEL_RUN_ID] == manifest["metadata"]["labels"][LABEL_RUN_ID]
    text = json.dumps(manifest)
    assert not [value for value in data.values() if value in text]
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "N", "value": "1"} in container["env"]
    script = container["command"][2]
    assert 'eval "$HETERO_SECRET_SETUP_0"' in script and "echo ready" in script
    assert script.endswith('exec python -c x "$HETERO_SECRET_ARG_3"')


def test_without_setup_a_secret_argument_is_expanded_by_the_kubelet() -> None:
    platform = platform_of(MI250)
    spec = dataclasses.replace(spec_for(platform), argv=("run", "--token=tok-7777"))
    container = build_manifest(platform, spec, IDENT)["spec"]["containers"][0]
    assert container["command"] == ["run", "$(HETERO_SECRET_ARG_1)"]
    ref = {"secretKeyRef": {"name": f"{IDENT.name}-env", "key": "HETERO_SECRET_ARG_1"}}
    assert {"name": "HETERO_SECRET_ARG_1", "valueFrom": ref} in container["env"]


def test_no_secret_no_secret_object() -> None:
    platform = platform_of(MI250)
    assert secret_manifest(platform, spec_for(platform), IDENT.name, IDENT.namespace, {}) is None


def test_the_deadline_counts_from_the_start_not_the_submission() -> None:
    platform = platform_of(CPU)
    handle = KubernetesJobHandle(
        job_id="ns/x", spec=spec_for(platform), submitted_at=100.0, name="x", run_id="r", pending_timeout_s=600.0
    )
    assert handle.deadline == 100.0 + 600 + 1200 + 30
    handle.started_at = 5000.0
    assert handle.deadline == 5000.0 + 1200 + 30


def test_configuration_problems_name_the_file_or_the_in_cluster_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"cannot load the kube config .*missing.*; set KUBECONFIG"):
        connect(str(tmp_path / "missing"), None, False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(ConfigError, match="cannot load the in-cluster Kubernetes configuration"):
        connect(None, None, False)


# -- reading objects back -----------------------------------------------------------------------
def pod(phase: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "main"}]}, "status": {"phase": phase, **status}}


WAITING = {"containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "ErrImagePull", "message": "nope"}}}]}
UNSCHEDULED = {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3"}]}


@pytest.mark.parametrize(
    ("resource", "obj", "pods", "expected"),
    [
        ("pods", pod("Succeeded"), [], (JobState.COMPLETED, "")),
        ("pods", pod("Running"), [], (JobState.RUNNING, "")),
        ("pods", pod("Failed", reason="DeadlineExceeded", message="m"), [], (JobState.TIMEOUT, "DeadlineExceeded: m")),
        ("pods", pod("Failed", reason="Evicted"), [], (JobState.FAILED, "Evicted")),
        ("pods", pod("Pending", **WAITING, **UNSCHEDULED), [], (JobState.PENDING, "ErrImagePull: nope")),
        ("pods", pod("Pending", **UNSCHEDULED), [], (JobState.PENDING, "Unschedulable: 0/3")),
        ("pods", pod("Unknown"), [], (JobState.UNKNOWN, "the node stopped reporting the pod's state")),
        ("jobs", {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}, [], (JobState.COMPLETED, "")),
        ("jobs", {"spec": {"suspend": True}, "metadata": {}}, [], (JobState.PENDING, "the Job is suspended")),
        ("jobs", {"status": {"active": 1}}, [pod("Pending", **UNSCHEDULED)], (JobState.PENDING, "Unschedulable: 0/3")),
        ("jobs", {"status": {"active": 1}}, [pod("Running")], (JobState.RUNNING, "")),
        (
            "jobs",
            {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}},
            [pod("Failed", reason="DeadlineExceeded")],
            (JobState.TIMEOUT, "BackoffLimitExceeded; pod: DeadlineExceeded"),
        ),
        (
            "pytorchjobs",
            {"status": {"conditions": [{"type": "Succeeded", "status": "True"}]}},
            [],
            (JobState.COMPLETED, ""),
        ),
        (
            "ipujobs",
            {"status": {"phase": "Failed", "message": "partition lost"}},
            [],
            (JobState.FAILED, "partition lost"),
        ),
        ("ipujobs", {"status": {}}, [], (JobState.PENDING, "")),
    ],
)
def test_state_of(
    resource: str, obj: dict[str, Any], pods: list[dict[str, Any]], expected: tuple[JobState, str]
) -> None:
    assert state_of(resource, obj, pods) == expected


def test_exit_code_and_main_pod() -> None:
    terminated = {"containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 3}}}]}
    worker, launcher = pod("Failed", **terminated), pod("Failed")
    worker["metadata"]["name"], launcher["metadata"]["name"] = "job-worker-0", "job-launcher"
    assert exit_code(worker) == 3 and exit_code(pod("Running")) is None and exit_code(None) is None
    assert main_pod([worker, launcher]) is launcher
    assert main_pod([]) is None


def test_the_docs_catalogue_and_template_load_and_render(tmp_path: Path) -> None:
    """docs/kubernetes.md's platforms.yaml and ipujob.yaml, as a user would save them."""
    page = (Path(__file__).parents[2] / "docs" / "kubernetes.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", page, flags=re.DOTALL)
    catalogue = next(b for b in blocks if b.startswith("# platforms.yaml"))
    (tmp_path / "ipujob.yaml").write_text(next(b for b in blocks if b.startswith("# ipujob.yaml")))
    (tmp_path / "platforms.yaml").write_text(catalogue)
    for platform in load_catalogue(tmp_path / "platforms.yaml").platforms:
        manifest = yaml.safe_load(KubernetesBackend(platform).render(spec_for(platform)))
        assert manifest["metadata"]["namespace"] == "ml-bench"
        assert manifest["kind"] in ("Job", "Pod", "IPUJob")
