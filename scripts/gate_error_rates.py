"""The regression gate's error rates on the noise measured on this machine.

Replays the spread of repeated measurements, taken from JSON reports of runs
with ``--hetero-repeat N`` (several runs of the same benchmarks), through the
gate's own decision (:func:`pytest_hetero.check.statistics.compare`, default
settings: min effect 5 %, alpha 0.05, the unit's noise floor) and reports:

- false alarms: the share of tests that the gate fails when nothing changed
  (a baseline run and a current run, both drawn from the measured noise);
- slowdowns caught: the share that it fails when the code got 5 % or 10 %
  slower (rates divided by 1.05 / 1.10, times multiplied by it),

for 1, 3 and 5 repeats per run. A test fails when any of its gated metrics is
a regression, as in ``--hetero-compare last``.

How a run is replayed (a two-level bootstrap of what was measured): the run's
offset is drawn from the measured runs' medians (relative to their common
median: the run-to-run part), and each repeat from the measured repeats'
deviations from their own run's median (the within-run part). So noise that
moves a whole run, such as another job loading the machine, is kept as such.

    .venv/bin/pytest benchmarks/test_resnet50.py benchmarks/test_cosmoflow.py \\
        --hetero-repeat 5 --hetero-json .hetero/noise-1.json        # several times: -2, -3, ...
    .venv/bin/python scripts/gate_error_rates.py .hetero/noise-*.json --save-noise docs/data/gate-noise-quiet.json
    .venv/bin/python scripts/gate_error_rates.py docs/data/gate-noise-quiet.json   # the same table again
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pytest_hetero.check.statistics import compare
from pytest_hetero.check.units import default_noise_floor, dimension

REPEATS = (1, 3, 5)
SLOWDOWNS = (0.0, 0.05, 0.10)


@dataclass(frozen=True)
class Noise:
    """What was measured for one metric of one test, relative to its typical value."""

    test: str
    metric: str
    unit: str
    higher_is_better: bool
    center: float  # the median of the runs' medians
    run_offsets: tuple[float, ...]  # each run's median / center - 1
    residuals: tuple[float, ...]  # each repeat / its run's median - 1

    def draw(self, rng: random.Random, repeats: int, slowdown: float, run_to_run: bool = True) -> list[float]:
        offset = rng.choice(self.run_offsets) if run_to_run else 0.0
        level = self.center * (1 + offset) * self._slower(slowdown)
        return [level * (1 + rng.choice(self.residuals)) for _ in range(repeats)]

    def _slower(self, slowdown: float) -> float:
        kind = dimension(self.unit)
        if kind == "rate":
            return 1 / (1 + slowdown)
        return 1 + slowdown if kind == "time" else 1.0

    def spread(self) -> tuple[float, float, float]:
        """Within a run: the standard deviation and its robust estimate (1.4826 × the median absolute
        deviation, blind to a few outliers); between runs: the standard deviation. As fractions."""
        within = statistics.pstdev(self.residuals) if len(self.residuals) > 1 else 0.0
        robust = 1.4826 * statistics.median(abs(r) for r in self.residuals)
        between = statistics.pstdev(self.run_offsets) if len(self.run_offsets) > 1 else 0.0
        return within, robust, between


def noise_from_reports(reports: Iterable[dict[str, Any]]) -> list[Noise]:
    """Every gated metric measured with repeats in at least two runs."""
    runs: dict[tuple[str, str], list[list[float]]] = {}
    meta: dict[tuple[str, str], tuple[str, bool]] = {}
    for report in reports:
        for record in report["results"]:
            for name, metric in record["metrics"].items():
                samples = [float(v) for v in metric.get("samples", [])]
                if len(samples) < 2 or not metric.get("gated", True):
                    continue
                key = (record["test"], name)
                runs.setdefault(key, []).append(samples)
                meta[key] = (metric["unit"], bool(metric["higher_is_better"]))
    return [_noise(key, found, *meta[key]) for key, found in sorted(runs.items()) if len(found) >= 2]


def _noise(key: tuple[str, str], runs: list[list[float]], unit: str, higher_is_better: bool) -> Noise:
    medians = [statistics.median(run) for run in runs]
    center = statistics.median(medians)
    offsets = tuple(_relative(m, center) for m in medians)
    residuals = tuple(_relative(v, m) for run, m in zip(runs, medians, strict=True) for v in run)
    return Noise(key[0], key[1], unit, higher_is_better, center, offsets, residuals)


def _relative(value: float, center: float) -> float:
    return value / center - 1 if center else 0.0


@dataclass(frozen=True)
class Rates:
    test: str
    repeats: int
    slowdown: float
    failed: float  # the share of trials in which the gate failed the test
    by_metric: dict[str, float]  # the share of trials in which each metric was a regression


@dataclass(frozen=True)
class Gate:
    """The gate's settings, and how runs are replayed."""

    min_effect: float = 0.05
    alpha: float = 0.05
    noise_floor: bool = True
    run_to_run: bool = True  # False: every run at the same level (within-run noise only, the optimistic bound)


def simulate(noise: Sequence[Noise], trials: int, seed: int, gate: Gate) -> list[Rates]:
    """For each test, repeat count and slowdown: how often the gate fails the test."""
    rng = random.Random(seed)  # noqa: S311 - a simulation, reproducible by its seed
    tests = sorted({n.test for n in noise})
    results = []
    for test in tests:
        metrics = [n for n in noise if n.test == test]
        for repeats in REPEATS:
            for slowdown in SLOWDOWNS:
                counts = {n.metric: 0 for n in metrics}
                failed = 0
                for _ in range(trials):
                    hits = [n.metric for n in metrics if _regressed(n, rng, repeats, slowdown, gate)]
                    failed += bool(hits)
                    for name in hits:
                        counts[name] += 1
                shares = {name: count / trials for name, count in counts.items()}
                results.append(Rates(test, repeats, slowdown, failed / trials, shares))
    return results


def _regressed(noise: Noise, rng: random.Random, repeats: int, slowdown: float, gate: Gate) -> bool:
    baseline = noise.draw(rng, repeats, 0.0, gate.run_to_run)
    current = noise.draw(rng, repeats, slowdown, gate.run_to_run)
    floor = default_noise_floor(noise.unit) if gate.noise_floor else 0.0
    higher = noise.higher_is_better
    return compare(current, baseline, higher, min_effect=gate.min_effect, alpha=gate.alpha, noise_floor=floor).regressed


def table(rates: Sequence[Rates]) -> list[str]:
    """Markdown: one row per test and repeat count, plus the mean over the tests."""
    lines = [
        "| test | repeats | false alarms (unchanged code) | 5 % slowdown caught | 10 % slowdown caught |",
        "|---|---:|---:|---:|---:|",
    ]
    tests = sorted({r.test for r in rates})
    for test in [*tests, "mean over the tests"]:
        for repeats in REPEATS:
            cells = [_share(rates, test, repeats, slowdown) for slowdown in SLOWDOWNS]
            lines.append(f"| {test} | {repeats} | " + " | ".join(f"{c * 100:.1f} %" for c in cells) + " |")
    return lines


def _share(rates: Sequence[Rates], test: str, repeats: int, slowdown: float) -> float:
    chosen = [
        r.failed
        for r in rates
        if r.repeats == repeats and r.slowdown == slowdown and test in (r.test, "mean over the tests")
    ]
    return statistics.fmean(chosen)


def noise_lines(noise: Sequence[Noise]) -> list[str]:
    lines = [
        "| test | metric | unit | runs | within-run sd | within-run robust sd | run-to-run sd |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for n in noise:
        spreads = [f"{value * 100:.1f} %" for value in n.spread()]
        lines.append("| " + " | ".join([n.test, n.metric, n.unit, str(len(n.run_offsets)), *spreads]) + " |")
    return lines


def alarm_lines(rates: Sequence[Rates]) -> list[str]:
    """Which metrics raise the false alarms (unchanged code), per repeat count."""
    lines = []
    for r in rates:
        if r.slowdown == 0.0 and r.failed:
            worst = sorted(r.by_metric.items(), key=lambda item: -item[1])
            named = ", ".join(f"{name} {share * 100:.1f} %" for name, share in worst if share)
            lines.append(f"- {r.test}, {r.repeats} repeat(s): {named}")
    return lines


def load(paths: Sequence[Path]) -> list[Noise]:
    reports, noise = [], []
    for path in paths:
        data = json.loads(path.read_text())
        if "noise" in data:
            noise += [
                Noise(**{**n, "run_offsets": tuple(n["run_offsets"]), "residuals": tuple(n["residuals"])})
                for n in data["noise"]
            ]
        else:
            reports.append(data)
    return noise + noise_from_reports(reports)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "inputs", nargs="+", type=Path, help="JSON reports of --hetero-repeat runs, or a --save-noise file"
    )
    parser.add_argument("--trials", type=int, default=2000, help="simulated pairs of runs per cell (default: 2000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--min-effect", type=float, default=0.05, help="the gate's minimum effect (default: 0.05)")
    parser.add_argument("--alpha", type=float, default=0.05, help="the gate's significance level (default: 0.05)")
    parser.add_argument("--no-noise-floor", action="store_true", help="replay without the noise floor (default: with)")
    parser.add_argument(
        "--within-run-only",
        action="store_true",
        help="replay every run at the same level: within-run noise only, the optimistic bound (default: both)",
    )
    parser.add_argument("--save-noise", type=Path, help="write the measured noise here (JSON), to replay it later")
    args = parser.parse_args(argv)
    noise = load(args.inputs)
    if not noise:
        print("no metric with repeats in two or more runs: run with --hetero-repeat N, several times", file=sys.stderr)
        return 2
    if args.save_noise:
        args.save_noise.write_text(json.dumps({"noise": [asdict(n) for n in noise]}, indent=1) + "\n")
    gate = Gate(args.min_effect, args.alpha, not args.no_noise_floor, not args.within_run_only)
    rates = simulate(noise, args.trials, args.seed, gate)
    floor = "off" if args.no_noise_floor else "by unit"
    runs = "within-run noise only" if args.within_run_only else "within-run and run-to-run noise"
    settings = f"min effect {args.min_effect:g}, alpha {args.alpha:g}, noise floor {floor}; {runs}"
    print(f"gate: {settings}; {args.trials} trials per cell\n")
    print("\n".join(table(rates)))
    print("\nfalse alarms by metric:\n" + "\n".join(alarm_lines(rates) or ["- none"]))
    print("\nthe measured noise:\n" + "\n".join(noise_lines(noise)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
