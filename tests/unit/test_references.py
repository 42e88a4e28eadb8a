from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_hetero.check.reference_update import ReferenceUpdate, update_references
from pytest_hetero.check.references import Reference, ReferenceEntry, VerdictKind, check, judge, load_references
from pytest_hetero.check.units import default_noise_floor, is_host_bound
from pytest_hetero.errors import ConfigError
from pytest_hetero.host_fingerprint import HostFingerprint
from pytest_hetero.metrics import Metric


@pytest.mark.parametrize(
    ("value", "lower", "upper", "band"),
    [
        (100, -0.01, 0.02, (99.0, 102.0)),  # the worked table in docs/references.md
        (100, -0.1, None, (90.0, None)),
        (-50, -0.1, 0.1, (-55.0, -45.0)),
        (0, -0.5, 0.5, (-0.5, 0.5)),
    ],
)
def test_bounds_follow_the_documented_table(
    value: float, lower: float, upper: float | None, band: tuple[float, float | None]
) -> None:
    low, high = Reference(value, lower, upper).bounds
    assert low == pytest.approx(band[0])
    assert (high is None and band[1] is None) or high == pytest.approx(band[1])


@pytest.mark.parametrize(
    ("measured", "kind", "side"),
    [
        (99.0, VerdictKind.PASS, ""),
        (98.9, VerdictKind.FAIL, "below the band (worse"),
        (102.5, VerdictKind.FAIL, "above the band (better"),
    ],
)
def test_check_on_both_sides_with_direction(measured: float, kind: VerdictKind, side: str) -> None:
    verdict = check(
        Metric("throughput_sps", measured, "samples/s", True), "throughput_sps", Reference(100, -0.01, 0.02), "a100"
    )
    assert verdict.kind is kind
    assert side in verdict.message
    assert "platform 'a100'" in verdict.message and "band [99, 102]" in verdict.message


def test_lower_is_better_names_the_worse_side() -> None:
    verdict = check(Metric("step_time_ms", 130.0, "ms", False), "step_time_ms", Reference(100, None, 0.2), "cpu")
    assert verdict.kind is VerdictKind.FAIL
    assert "above the band (worse than the reference)" in verdict.message


def test_missing_metric_and_xfail() -> None:
    assert check(None, "eval_accuracy", Reference(0.75, -0.01, None), "cpu").kind is VerdictKind.MISSING
    slow = check(Metric("x", 1.0), "x", Reference(100, -0.1, None, xfail="known issue"), "cpu")
    assert slow.kind is VerdictKind.XFAIL and "known issue" in slow.message


def test_judge_marks_unreferenced_metrics() -> None:
    metrics = {"a": Metric("a", 1.0), "b": Metric("b", 2.0)}
    lax = judge(metrics, {"a": Reference(1.0, -0.1, 0.1)}, "cpu", require=False)
    assert [(v.metric, v.kind) for v in lax] == [("a", VerdictKind.PASS), ("b", VerdictKind.NO_REFERENCE)]
    strict = judge(metrics, {"a": Reference(1.0, -0.1, 0.1)}, "cpu", require=True)
    assert strict[1].failed


def test_lookup_prefers_exact_platform_over_glob(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text(
        "version: 1\nreferences:\n  t.py::test_x:\n"
        "    'a100-*': {m: [1, -0.1, 0.1]}\n    a100-80: {m: [2, -0.1, 0.1]}\n"
    )
    book = load_references(path)
    assert book.lookup("t.py::test_x", "a100-80")["m"].value == 2
    assert book.lookup("t.py::test_x", "a100-40")["m"].value == 1
    assert book.lookup("t.py::test_x", "mi250x") == {}


def test_invalid_tolerances_are_reported_with_paths(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text("version: 1\nreferences:\n  t:\n    cpu:\n      m: {value: 10, lower: 0.1, upper: -0.2}\n")
    with pytest.raises(ConfigError) as info:
        load_references(path)
    message = str(info.value)
    assert "$.references['t']['cpu']['m'].lower: 0.1 must be <= 0" in message
    assert "$.references['t']['cpu']['m'].upper: -0.2 must be >= 0" in message


def test_update_keeps_tolerances_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text("version: 1\nreferences:\n  t:\n    cpu:\n      m: {value: 10, lower: -0.05, upper: 0.05}\n")
    metrics = {"m": Metric("m", 12.345678, "s", False), "n": Metric("n", 3.0, "x", True)}
    summary = update_references(path, [ReferenceUpdate("t", "cpu", metrics)])
    assert (summary.changed, summary.not_added) == (1, ["t on cpu: n"]), "an existing entry keeps its metrics"
    assert load_references(path).lookup("t", "cpu") == {"m": Reference(12.35, -0.05, 0.05, "")}
    update_references(path, [ReferenceUpdate("t", "gpu", metrics)])
    assert load_references(path).lookup("t", "gpu") == {
        "m": Reference(12.35, None, 0.2, "s"),
        "n": Reference(3.0, -0.2, None, "x"),
    }, "a new entry gets every measured metric, 20 % on its bad side"


# --- references that travel: host fingerprints, host-bound metrics, contention, the noise floor ---------------

HERE = HostFingerprint("AMD EPYC 7B13", 2, 8, "2.13.0+cpu")
STEPS = Reference(6, 0, 0, "steps")
SPEED = Reference(40.0, -0.5, None, "samples/s")


def _measured(throughput: float = 40.0, steps: float = 6.0) -> dict[str, Metric]:
    return {
        "throughput_sps": Metric("throughput_sps", throughput, "samples/s", True),
        "steady_steps": Metric("steady_steps", steps, "steps", True),
    }


def test_same_kind_of_host_matches_and_memory_may_differ_a_little() -> None:
    assert HERE.differences(HERE) == []
    assert HostFingerprint("AMD EPYC 7B13", 2, 9, "2.13.0+cpu").differences(HERE) == []
    assert HostFingerprint("AMD EPYC 7B13", 64, 256, "2.13.0+cpu").differences(HERE) == [
        "cpu_count 64 there, 2 here",
        "memory_gib 256 there, 8 here",
    ]


def test_an_entry_says_why_it_does_not_apply_here() -> None:
    other = HostFingerprint("Imaginary CPU 9000", 2, 8, "2.5.0")
    entry = ReferenceEntry({"throughput_sps": SPEED}, other)
    assert entry.elsewhere(HERE) == (
        "measured on another host: cpu_model 'Imaginary CPU 9000' there, 'AMD EPYC 7B13' here; "
        "torch '2.5.0' there, '2.13.0+cpu' here"
    )
    assert ReferenceEntry({"throughput_sps": SPEED}, HERE).elsewhere(HERE) == ""
    assert ReferenceEntry({"throughput_sps": SPEED}).elsewhere(HERE) == "", "no fingerprint: applies anywhere"


@pytest.mark.parametrize(
    ("unit", "host_bound", "floor"),
    [
        ("samples/s", True, 0.0),
        ("MB/s", True, 0.0),
        ("TFLOP/s", True, 0.0),
        ("ms", True, 1.0),
        ("s", True, 0.001),
        ("MiB", True, 1.0),
        ("GiB", True, 1 / 1024),
        ("J", True, 0.0),
        ("ratio", False, 0.005),
        ("%", False, 0.5),
        ("steps", False, 0.0),
        ("epochs", False, 0.0),
        ("", False, 0.0),
    ],
)
def test_units_decide_host_bound_and_the_noise_floor(unit: str, host_bound: bool, floor: float) -> None:
    assert is_host_bound(unit) is host_bound
    assert default_noise_floor(unit) == pytest.approx(floor)


def test_a_reference_overrides_the_unit() -> None:
    assert is_host_bound("ratio", True) and not is_host_bound("s", False)


def test_on_another_host_speed_is_not_judged_but_invariants_are() -> None:
    refs = {"throughput_sps": SPEED, "steady_steps": STEPS}
    verdicts = judge(
        _measured(throughput=5.0, steps=7.0), refs, "local", False, elsewhere="measured on another host: x"
    )
    speed, steps = verdicts
    assert speed.kind is VerdictKind.NO_REFERENCE and not speed.failed
    assert speed.reason == "measured on another host: x" and speed.host_bound
    assert "reference 40 not applied, measured on another host: x" in speed.message
    assert steps.kind is VerdictKind.FAIL, "steps do not depend on the host: still checked"
    strict = judge(_measured(), refs, "local", True, elsewhere="measured on another host: x")
    assert strict[0].failed and "(--hetero-require-references)" in strict[0].message


def test_the_override_makes_a_time_an_invariant() -> None:
    comm = {"comm_time_s": Reference(0, 0, 0, "s", host_bound=False)}
    [verdict] = judge({"comm_time_s": Metric("comm_time_s", 0.5, "s", False)}, comm, "local", False, elsewhere="x")
    assert verdict.kind is VerdictKind.FAIL


def test_contended_measurements_are_not_judged_on_host_bound_metrics() -> None:
    refs = {"throughput_sps": SPEED, "steady_steps": STEPS}
    speed, steps = judge(_measured(throughput=5.0, steps=7.0), refs, "local", False, contended=True)
    assert speed.kind is VerdictKind.CONTENDED and not speed.failed
    assert speed.band is VerdictKind.FAIL, "what the band alone said is kept"
    assert "measured while another job shared the resource: not judged" in speed.message
    assert steps.kind is VerdictKind.FAIL


def test_a_band_miss_below_the_noise_floor_passes() -> None:
    ref = Reference(4.1e-05, None, 0.2, "s")
    near = check(Metric("data_wait_s", 6.0e-05, "s", False), "data_wait_s", ref, "local")
    assert near.kind is VerdictKind.PASS and "less than the noise floor 0.001 s" in near.message
    far = check(Metric("data_wait_s", 0.01, "s", False), "data_wait_s", ref, "local")
    assert far.kind is VerdictKind.FAIL
    exact = Reference(4.1e-05, None, 0.2, "s", noise_floor=0)
    assert check(Metric("data_wait_s", 6.0e-05, "s", False), "data_wait_s", exact, "local").failed


def test_host_and_overrides_are_read(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text(
        "version: 1\nreferences:\n  t:\n    local:\n"
        "      host: {cpu_model: AMD EPYC 7B13, cpu_count: 2, memory_gib: 8, torch: 2.13.0+cpu}\n"
        "      mfu: {value: 0.3, lower: -0.5, upper: null, unit: ratio, host_bound: true, noise_floor: 0.01}\n"
    )
    entry = load_references(path).entry("t", "local")
    assert entry.host == HERE
    assert entry.metrics["mfu"] == Reference(0.3, -0.5, None, "ratio", None, True, 0.01)
    assert entry.noise_floors() == {"mfu": 0.01}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "      host: {cpu_model: x, memory_gib: 8}\n",
            "$.references.t.local.host: 'cpu_count' is a required property",
        ),
        ("      m: {value: 1, host_bound: maybe}\n", "$.references.t.local.m.host_bound: 'maybe' is not of type"),
        ("      m: {value: 1, noise_floor: -1}\n", "$.references.t.local.m.noise_floor: -1 is less than the minimum"),
    ],
)
def test_bad_host_and_overrides_name_their_json_path(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "references.yaml"
    path.write_text("version: 1\nreferences:\n  t:\n    local:\n" + text)
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_references(path)


def test_non_utf8_and_bad_yaml_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_bytes(b"version: 1\nreferences:\n  t: # caf\xe9\n")
    with pytest.raises(
        ConfigError, match=r"references.yaml:3: references must be UTF-8 text: byte 0xe9 \(offset 33\) is not"
    ):
        load_references(path)
    path.write_text("version: 1\nreferences:\n  t: [unclosed\n")
    with pytest.raises(ConfigError, match=r"references.yaml:4:1: references: not valid YAML: "):
        load_references(path)
