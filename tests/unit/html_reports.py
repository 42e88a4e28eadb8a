"""Reports for the HTML tests: records with metrics of any unit and direction, and a four-workload run."""

from __future__ import annotations

from typing import Any, NamedTuple

from fake_reports import record, report


class M(NamedTuple):
    """One metric of a record: its value, unit, direction, band and verdict word."""

    value: float | None
    unit: str = "samples/s"
    higher_is_better: bool = True
    band: tuple[float | None, float | None] | None = None
    word: str | None = None
    gated: bool = True


def rec(test: str, platform: str, **metrics: M) -> dict[str, Any]:
    """A record of ``test`` on ``platform`` with these metrics (a verdict for each with a band or a word)."""
    found = record(test, platform)
    found["metrics"], found["verdicts"] = {}, []
    for name, m in metrics.items():
        metric: dict[str, Any] = {
            "name": name,
            "value": m.value,
            "unit": m.unit,
            "higher_is_better": m.higher_is_better,
        }
        found["metrics"][name] = metric | ({} if m.gated else {"gated": False})
        if m.band is not None or m.word is not None:
            found["verdicts"].append(_verdict(name, m))
    if any(v["verdict"] == "fail" for v in found["verdicts"]):
        found["outcome"] = "failed"
    return found


def _verdict(name: str, m: M) -> dict[str, Any]:
    low, high = m.band or (None, None)
    inside = m.value is not None and (low is None or m.value >= low) and (high is None or m.value <= high)
    word = m.word or ("pass" if inside else "fail")
    reference = None if m.band is None else {"value": m.value or 0.0, "lower": None, "upper": None}
    return {
        "metric": name,
        "verdict": word,
        "value": m.value,
        "reference": reference,
        "lower_bound": low,
        "upper_bound": high,
        "message": f"{name}: {word}",
    }


def four_workloads(slowdown: float = 0.0, **kwargs: Any) -> dict[str, Any]:
    """4 tests × 3 platforms × 8 metrics, two of them zero everywhere; mi250's throughput drops by ``slowdown``."""
    records = []
    for test, sps in {"test_resnet50": 38.0, "test_cosmoflow": 44.5, "test_deepcam": 4.2, "test_unet3d": 0.37}.items():
        for platform, speedup in {"cpu": 1.0, "a100": 24.0, "mi250": 17.0}.items():
            value = sps * speedup * (1 - slowdown if platform == "mi250" else 1.0)
            reference = sps * speedup
            metrics = {
                "throughput_sps": M(value, band=(0.8 * reference, None)),
                "step_time_ms": M(4000 / value, "ms", False, (None, 1.5 * 4000 / reference)),
                "time_to_train_s": M(40 / value, "s", False),
                "steady_steps": M(6.0, "steps", True, (6.0, 6.0)),
                "epochs": M(2.0, "epochs", False, (2.0, 2.0)),
                "data_wait_fraction": M(0.0, "ratio", False, (None, 0.05)),
                "comm_time_s": M(0.0, "s", False, (0.0, 0.0)),
                "peak_rss_mb": M(640.0, "MiB", False),
            }
            records.append(rec(test, platform, **metrics))
    exit_status = 6 if any(r["outcome"] == "failed" for r in records) else 0
    return report(records, exit_status=exit_status, **kwargs)
