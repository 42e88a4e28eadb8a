"""Workload cards, reference recipes and how a run names its differences from the MLPerf reference.

The card (``--describe``) is built on the meta device; the runs here are tiny
real trainings whose MLLOG goes through the MLPerf compliance checker.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from workload_runs import compliance, finding_keys, job_env, run_module, run_ok

from pytest_hetero.workloads import cosmoflow, deepcam, resnet50
from pytest_hetero.workloads.accelerators import OptimizerSpec
from pytest_hetero.workloads.card import card, nominal_shape
from pytest_hetero.workloads.common import WorkloadConfigError, parse_preset_config
from pytest_hetero.workloads.harness import eval_due
from pytest_hetero.workloads.optim import LAMB, LARS

CARD_KEYS = {
    "workload",
    "preset",
    "recipe",
    "reference_recipe",
    "parameters",
    "flops_per_sample",
    "gflops_per_sample",
    "input_shape",
    "batch_size",
    "global_batch_size",
    "optimizer",
    "schedule",
    "epochs",
    "eval",
    "mlperf",
    "deliberate_differences",
}


def test_describe_prints_the_standard_card_without_allocating_the_model() -> None:
    """ResNet-50 at batch 256 and 224 px would need tens of GiB of activations for real."""
    argv = [sys.executable, "-m", "pytest_hetero.workloads.resnet50", "--describe"]
    argv += ["--config-json", json.dumps({"preset": "standard", "recipe": "lars"})]
    before_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(argv, env=job_env(), capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stderr
    described = json.loads(done.stdout)
    assert set(described) == CARD_KEYS
    assert described["parameters"] == 25_557_032 and described["gflops_per_sample"] == 24.3
    assert described["input_shape"] == [3, 224, 224]
    assert described["optimizer"]["name"] == "lars" and described["schedule"]["lars_epsilon"] == 0.0
    assert described["eval"] == {"start_epoch": 4, "every_epochs": 4}
    assert described["mlperf"] == {
        "benchmark": "resnet",
        "usage": "training",
        "ruleset": resnet50.MLPERF_RULESET,
        "division": "closed",
        "comparable": True,
    }
    assert described["deliberate_differences"] == []
    assert max(before_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) < 3 * 2**20  # KiB: < 3 GiB


def test_describe_rejects_a_bad_config_like_a_run() -> None:
    done = run_module("pytest_hetero.workloads.deepcam", Path.cwd(), {"recipe": "lars"})
    assert done.returncode == 2
    assert "config key 'recipe' must be one of adamw, lamb; got 'lars'" in done.stderr


def test_the_current_recipes_are_named_as_differences_the_closed_division_allows() -> None:
    standard = {**deepcam.DEFAULTS, **deepcam.PRESETS["standard"], "preset": "standard"}
    described = card(deepcam.SPEC, standard)

    assert [d["id"] for d in described["deliberate_differences"]] == ["optimizer-adamw"]
    assert described["mlperf"]["division"] == "closed" and described["mlperf"]["comparable"] is False
    assert described["optimizer"]["name"] == "adamw"


def test_a_recipe_overrides_the_preset_and_explicit_keys_override_the_recipe() -> None:
    presets, recipes = deepcam.PRESETS, deepcam.RECIPES
    lamb = parse_preset_config(["--config-json", '{"preset": "subset", "recipe": "lamb"}'], deepcam.DEFAULTS, presets)
    assert lamb["recipe"] == "lamb" and lamb["lr"] == 0.001  # without the recipes table, the key alone

    lamb = parse_preset_config(
        ["--config-json", '{"preset": "subset", "recipe": "lamb", "lr": 0.01}'],
        deepcam.DEFAULTS,
        presets,
        None,
        recipes,
    )
    assert lamb["lr"] == 0.01 and lamb["lr_warmup_steps"] == 400 and lamb["height"] == 768
    with pytest.raises(WorkloadConfigError, match="config key 'recipe' must be one of adamw, lamb"):
        parse_preset_config(["--config-json", '{"recipe": "sgd"}'], deepcam.DEFAULTS, presets, None, recipes)


def test_lars_takes_the_reference_rate_for_the_global_batch() -> None:
    config = {**resnet50.DEFAULTS, **resnet50.PRESETS["standard"], **resnet50.RECIPES["lars"], "recipe": "lars"}
    at_2048, at_4096 = nominal_shape({**config, "batch_size": 2048}), nominal_shape({**config, "batch_size": 4096})

    assert resnet50.optimizer(config, at_2048).lr == 8.5
    assert resnet50.optimizer(config, at_4096).lr == 10.0
    assert resnet50.optimizer(config, nominal_shape({**config, "batch_size": 1024})).lr == pytest.approx(4.25)
    assert resnet50.hyperparameters(config, at_2048)["lars_opt_learning_rate_warmup_epochs"] == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("start", "every", "epochs", "evaluated"),
    [(1, 1, 3, [1, 2, 3]), (4, 4, 10, [4, 8, 10]), (1000, 20, 1045, [1000, 1020, 1040, 1045])],
)
def test_evaluation_epochs_follow_the_start_the_interval_and_the_last(
    start: int, every: int, epochs: int, evaluated: list[int]
) -> None:
    config = {"eval_start_epoch": start, "eval_every_epochs": every, "epochs": epochs}
    assert [e for e in range(1, epochs + 1) if eval_due(config, e)] == evaluated


def test_lars_scales_weights_by_the_trust_ratio_and_leaves_biases_plain() -> None:
    weight, bias = torch.nn.Parameter(torch.full((2, 2), 2.0)), torch.nn.Parameter(torch.ones(2))
    weight.grad, bias.grad = torch.full((2, 2), 0.5), torch.full((2,), 0.5)
    LARS([weight, bias], lr=1.0, momentum=0.9, weight_decay=0.1, eta=0.001).step()

    # |w| = 4, |g| = 1: trust = 0.001 * 4 / (1 + 0.1 * 4) ; step = trust * (g + 0.1 w)
    trust = 0.004 / 1.4
    assert torch.allclose(weight, torch.full((2, 2), 2.0 - trust * 0.7))
    assert torch.allclose(bias, torch.full((2,), 0.5))  # plain momentum SGD, no decay


def test_lamb_first_step_is_the_sign_step_scaled_by_the_trust_ratio() -> None:
    weight = torch.nn.Parameter(torch.full((4,), 3.0))
    weight.grad = torch.full((4,), 0.25)  # norm 0.5: under max_grad_norm, not clipped
    LAMB([weight], lr=0.1, eps=0.0, weight_decay=0.0).step()

    # first step: m/(sqrt v) = sign(g) = 1 everywhere; trust = |w| / |update| = 6 / 2
    assert torch.allclose(weight, torch.full((4,), 3.0 - 0.1 * 3.0))


def _events(stdout: str, key: str) -> list[Any]:
    lines = [json.loads(line.split(" ", 1)[1]) for line in stdout.splitlines() if line.startswith(":::MLLOG")]
    return [line["value"] for line in lines if line["key"] == key]


@pytest.mark.parametrize(
    ("module", "config", "usage", "findings"),
    [
        (deepcam, {"recipe": "lamb"}, "hpc", ["train_samples", "eval_samples", "eval_accuracy"]),
        (resnet50, {"recipe": "lars"}, "training", ["eval_accuracy"]),
    ],
)
def test_reference_recipes_pass_the_compliance_checker(
    module: Any, config: dict[str, Any], usage: str, findings: list[str], tmp_path: Path
) -> None:
    run = run_ok(module.__name__, tmp_path / "cwd", {**config, "threads": 1})
    report = compliance(run, usage, module.MLPERF_RULESET, tmp_path / "checker")

    assert finding_keys(report) == findings, report.output  # the sizes and targets of a tiny run only
    assert _events(run.stdout, "submission_division") == ["closed"]
    assert _events(run.stdout, "hetero_deliberate_differences") == [["smoke-test-preset"]]
    assert run.record["card"]["recipe"] == config["recipe"]


def test_a_difference_outside_the_closed_rules_logs_the_open_division(tmp_path: Path) -> None:
    run = run_ok(cosmoflow.__name__, tmp_path / "cwd", {"kernel_size": 2, "threads": 1})
    report = compliance(run, "hpc", cosmoflow.MLPERF_RULESET, tmp_path / "checker")

    assert finding_keys(report) == ["eval_error"], report.output  # the quality target only
    assert "hpc_3.0.0/open_cosmoflow.yaml" in report.output
    assert _events(run.stdout, "submission_division") == ["open"]
    assert _events(run.stdout, "hetero_deliberate_differences") == [["kernel-size", "smoke-test-preset"]]
    provenance = run.record["provenance"]
    assert provenance["mlperf_division"] == "open" and provenance["mlperf_comparable"] is False
    assert run.record["card"]["parameters"] == sum(
        p.numel() for p in cosmoflow.CosmoFlow(32, kernel_size=2).parameters()
    )


def test_lars_and_lamb_are_refused_by_the_sdk_adapters_with_a_config_error() -> None:
    parameters = [torch.nn.Parameter(torch.ones(2))]
    assert isinstance(OptimizerSpec("lamb", 0.1).build(parameters), LAMB)
    with pytest.raises(WorkloadConfigError, match="'lars' runs on the eager adapters only"):
        OptimizerSpec("lars", 0.1).build(parameters, namespace=SimpleNamespace(SGD=None, AdamW=None))
