"""Training throughput through the plugin versus a bare hand-written loop, on the CPU.

For each workload, alternately (ABBA order, so drift cancels):

- plugin: ``pytest benchmarks/test_<workload>.py --hetero-json REPORT`` on the
  built-in ``local`` platform; the steady-state ``throughput_sps`` is read
  from the JSON report;
- bare: a fresh Python process that builds the same model, loss and optimiser
  from the benchmark's config and times a plain ``zero_grad / forward / loss
  / backward / step`` loop over the same synthetic batch shapes, the same
  number of steps and warm-up steps, in the same precision (fp32).

Both sides run with the same ``OMP_NUM_THREADS`` (``--threads``, default 1:
on a shared 2-core VM, torch's spinning OpenMP threads make two-thread
timings swing by tens of times when anything else runs). A reference-check
failure of the benchmark does not stop the measurement: the throughput is
read from the report either way. Prints the median of each and their ratio
(target >= 0.97), and the same ratio from median step times (batch / median
steady step), which shrugs off a step slowed by another process. Usage::

    .venv/bin/python scripts/bench_workloads.py --repeats 3
    .venv/bin/python scripts/bench_workloads.py --workloads cosmoflow --repeats 5 --threads 2
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORKLOADS = ("cosmoflow", "deepcam", "unet3d", "resnet50")


def benchmark_config(workload: str) -> dict[str, Any]:
    """The effective config of ``benchmarks/test_<workload>.py`` (defaults, preset, the test's keys)."""
    from pytest_hetero.workloads.common import parse_preset_config
    from pytest_hetero.workloads.protocol import WORKLOAD_CONFIG_ENV

    spec = importlib.util.spec_from_file_location("bench", REPO / "benchmarks" / f"test_{workload}.py")
    assert spec is not None and spec.loader is not None
    test_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_module)
    module = importlib.import_module(f"pytest_hetero.workloads.{workload}")
    os.environ.pop(WORKLOAD_CONFIG_ENV, None)
    return parse_preset_config(["--config-json", json.dumps(test_module.TINY)], module.DEFAULTS, module.PRESETS)


def bare_throughput_sps(workload: str) -> tuple[float, float]:
    """The hand-written loop; runs in its own process (``--bare``)."""
    import torch

    from pytest_hetero.workloads.distributed import DistEnv
    from pytest_hetero.workloads.harness import RunShape

    config = benchmark_config(workload)
    spec = importlib.import_module(f"pytest_hetero.workloads.{workload}").SPEC
    batch = int(config["batch_size"])
    steps_per_epoch = int(config["train_steps"]) or int(config["train_samples"]) // batch
    steps, warmup = steps_per_epoch * int(config["epochs"]), int(config["warmup_steps"])
    torch.manual_seed(int(config["seed"]))
    generator = torch.Generator().manual_seed(int(config["seed"]) * 1000)
    pool = [spec.synthetic_batch(config, batch, generator, torch.device("cpu")) for _ in range(2)]
    model, loss_fn = spec.build_model(config), spec.loss_fn(config)
    shape = RunShape(batch, batch, steps_per_epoch, int(config["epochs"]), steps_per_epoch * batch, 0, DistEnv())
    optimizer_spec = spec.optimizer(config, shape)
    optimizer = optimizer_spec.build(model.parameters())
    model.train()
    times_s = []
    for step in range(steps):
        inputs, targets = pool[step % len(pool)]
        started_s = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        times_s.append(time.perf_counter() - started_s)
    steady_s = times_s[warmup:]
    return batch * len(steady_s) / sum(steady_s), batch / statistics.median(steady_s)


def _env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HETERO_")}
    return {**env, "OMP_NUM_THREADS": str(threads)}


def plugin_throughput_sps(workload: str, threads: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        argv = [sys.executable, "-m", "pytest", f"benchmarks/test_{workload}.py", "-q", "-p", "no:cacheprovider"]
        argv.append(f"--hetero-json={report}")
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=_env(threads))
        results = json.loads(report.read_text())["results"] if report.exists() else []
        if not results or "throughput_sps" not in results[0]["metrics"]:
            raise SystemExit(f"pytest failed for {workload}:\n{done.stdout[-3000:]}")
        metrics = results[0]["metrics"]
        batch = int(benchmark_config(workload)["batch_size"])
        return float(metrics["throughput_sps"]["value"]), batch * 1e3 / float(metrics["step_time_ms"]["value"])


def bare_in_subprocess(workload: str, threads: int) -> tuple[float, float]:
    argv = [sys.executable, __file__, "--bare", workload]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True, env=_env(threads))
    mean_sps, median_sps = done.stdout.strip().splitlines()[-1].split()
    return float(mean_sps), float(median_sps)


def measure(workload: str, repeats: int, threads: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    plugin, bare = [], []
    for repeat in range(repeats):
        order = (plugin_throughput_sps, bare_in_subprocess)
        for run in order if repeat % 2 == 0 else reversed(order):
            (plugin if run is plugin_throughput_sps else bare).append(run(workload, threads))
    return plugin, bare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of both sides (default 1)")
    parser.add_argument("--bare", choices=WORKLOADS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        print(*bare_throughput_sps(args.bare))
        return 0
    print("| workload | plugin samples/s | bare loop samples/s | ratio | ratio of median steps | pairs (plugin/bare) |")
    print("|---|---:|---:|---:|---:|---|")
    for workload in args.workloads:
        plugin, bare = measure(workload, args.repeats, args.threads)
        print(_row(workload, plugin, bare), flush=True)
    return 0


def _row(workload: str, plugin: list[tuple[float, float]], bare: list[tuple[float, float]]) -> str:
    plugin_sps, bare_sps = statistics.median(p[0] for p in plugin), statistics.median(b[0] for b in bare)
    step_ratio = statistics.median(p[1] for p in plugin) / statistics.median(b[1] for b in bare)
    pairs = ", ".join(f"{p[0] / b[0]:.3f}" for p, b in zip(plugin, bare, strict=True))
    return (
        f"| {workload} | {plugin_sps:.3f} | {bare_sps:.3f} | {plugin_sps / bare_sps:.3f} | {step_ratio:.3f} | {pairs} |"
    )


if __name__ == "__main__":
    sys.exit(main())
