"""The workload card: what a config trains, counted on the ``meta`` device.

``python -m pytest_hetero.workloads.NAME --describe --config-json '{...}'``
prints it as JSON, and every run puts the same card in its metrics record
(``card``, so the JSON report's ``results[].workload.reported.card``) with the
deliberate differences from the MLPerf reference in its provenance
(``results[].provenance.workload``). Nothing is allocated for real: the model
is built on the meta device, so a card of the standard sizes costs a second.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch

from pytest_hetero.workloads.distributed import DistEnv
from pytest_hetero.workloads.flops import count_train_flops
from pytest_hetero.workloads.harness import Config, Difference, RunShape, WorkloadSpec

__all__ = ["CARD_KEY", "card", "division", "nominal_shape", "print_card", "run_extra"]

#: The metrics record's key for the card.
CARD_KEY = "card"


def nominal_shape(config: Config, world_size: int = 1) -> RunShape:
    """The run's shape as the config alone gives it (synthetic data, ``world_size`` ranks)."""
    batch = int(config["batch_size"])
    global_batch = batch * world_size
    steps = int(config["train_steps"]) or max(1, int(config["train_samples"]) // global_batch)
    env = DistEnv(world_size=world_size, local_world_size=world_size)
    eval_samples = int(config["eval_samples"])
    return RunShape(batch, global_batch, steps, int(config["epochs"]), steps * global_batch, eval_samples, env)


def division(differences: list[Difference]) -> str:
    """The MLPerf division the run's logs claim: open as soon as one difference is not allowed in closed."""
    return "closed" if all(d.closed_ok for d in differences) else "open"


def card(spec: WorkloadSpec, config: Config, shape: RunShape | None = None) -> dict[str, Any]:
    """The card of ``config`` (a run's own ``shape`` when known, else the nominal single-rank one)."""
    shape = shape or nominal_shape(config)
    batch = shape.batch_size  # one sample alone cannot pass batch norm over a 1x1 map

    def make_batch() -> tuple[torch.Tensor, torch.Tensor]:
        return spec.synthetic_batch(config, batch, torch.Generator(), torch.device("meta"))

    with torch.device("meta"):
        model = spec.build_model(config)
        inputs, _targets = make_batch()
    flops_per_batch = count_train_flops(lambda: spec.build_model(config), make_batch, spec.loss_fn(config))
    flops = None if flops_per_batch is None else flops_per_batch / batch
    optimizer = spec.optimizer(config, shape)
    differences = spec.differences(config)
    recipe = str(config.get("recipe", spec.reference_recipe))
    comparable = config["preset"] == "standard" and recipe == spec.reference_recipe and not differences
    return {
        "workload": spec.name,
        "preset": config["preset"],
        "recipe": recipe,
        "reference_recipe": spec.reference_recipe,
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops_per_sample": flops,
        "gflops_per_sample": None if flops is None else round(flops / 1e9, 1),
        "input_shape": list(inputs.shape[1:]),
        "batch_size": shape.batch_size,
        "global_batch_size": shape.global_batch_size,
        "optimizer": {"name": optimizer.name, "lr": optimizer.lr, **_jsonable(dict(optimizer.options))},
        "schedule": _jsonable(spec.hyperparameters(config, shape)),
        "epochs": shape.epochs,
        "eval": {"start_epoch": config["eval_start_epoch"], "every_epochs": config["eval_every_epochs"]},
        "mlperf": {
            "benchmark": spec.benchmark,
            "usage": spec.usage,
            "ruleset": spec.ruleset,
            "division": division(differences),
            "comparable": comparable,
        },
        "deliberate_differences": [d.as_dict() for d in differences],
    }


def run_extra(spec: WorkloadSpec, config: Config, shape: RunShape | None) -> dict[str, Any]:
    """What a run adds to its metrics record: the card, and the differences as provenance."""
    try:
        described = card(spec, config, shape)
    except (RuntimeError, NotImplementedError, TypeError, ValueError) as exc:
        return {CARD_KEY: {"workload": spec.name, "error": f"{type(exc).__name__}: {exc}"}}
    provenance = {
        "mlperf_division": described["mlperf"]["division"],
        "mlperf_comparable": described["mlperf"]["comparable"],
        "recipe": described["recipe"],
        "deliberate_differences": described["deliberate_differences"],
    }
    return {CARD_KEY: described, "provenance": provenance}


def print_card(spec: WorkloadSpec, config: Config) -> None:
    """Write the card as indented JSON to stdout."""
    json.dump(card(spec, config), sys.stdout, indent=2)
    sys.stdout.write("\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)
