"""Performance references and the one check function.

A reference is ``(value, lower, upper, unit)``. ``lower`` and ``upper`` are
signed fractional tolerances of ``|value|`` (absolute numbers when ``value``
is 0); ``None`` leaves that side unbounded::

    value  lower   upper   accepted band
    100    -0.01   +0.02   99 .. 102
    100    -0.1    None    90 .. +inf
    -50    -0.1    +0.1    -55 .. -45
    0      -0.5    +0.5    -0.5 .. 0.5   (absolute)

The band is checked on both sides: a result far better than its reference
fails too (the reference is stale; update it with --hetero-update-references).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from pytest_hetero.errors import ConfigError
from pytest_hetero.metrics import Metric
from pytest_hetero.schemas import load_schema, schema_errors

__all__ = [
    "Reference",
    "ReferenceBook",
    "Verdict",
    "VerdictKind",
    "candidate_keys",
    "check",
    "judge",
    "load_references",
]


@dataclass(frozen=True)
class Reference:
    value: float
    lower: float | None = None
    upper: float | None = None
    unit: str = ""
    xfail: str | None = None

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """The accepted band in the metric's unit (None = unbounded)."""
        scale = abs(self.value) if self.value else 1.0
        base = self.value if self.value else 0.0
        low = None if self.lower is None else base + scale * self.lower
        high = None if self.upper is None else base + scale * self.upper
        return low, high

    def band_text(self) -> str:
        low, high = self.bounds
        return f"[{'-inf' if low is None else f'{low:.4g}'}, {'+inf' if high is None else f'{high:.4g}'}]"


class VerdictKind(str, Enum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    XFAIL = "xfail"
    MISSING = "missing"
    NO_REFERENCE = "no-reference"


@dataclass(frozen=True)
class Verdict:
    metric: str
    kind: VerdictKind
    value: float | None
    reference: Reference | None
    message: str

    @property
    def failed(self) -> bool:
        return self.kind in (VerdictKind.FAIL, VerdictKind.MISSING)

    def as_dict(self) -> dict[str, Any]:
        ref = self.reference
        low, high = ref.bounds if ref else (None, None)
        return {
            "metric": self.metric,
            "verdict": self.kind.value,
            "value": self.value,
            "reference": None if ref is None else {"value": ref.value, "lower": ref.lower, "upper": ref.upper},
            "lower_bound": low,
            "upper_bound": high,
            "message": self.message,
        }


def check(metric: Metric | None, name: str, reference: Reference, platform: str) -> Verdict:
    """Compare one metric with its reference; the message names everything."""
    where = f"on platform {platform!r}"
    if metric is None or metric.value is None:
        kind = VerdictKind.XFAIL if reference.xfail else VerdictKind.MISSING
        return Verdict(name, kind, None, reference, f"{name}: no value measured {where} (reference {reference.value})")
    low, high = reference.bounds
    value = metric.value
    unit = f" {metric.unit or reference.unit}".rstrip()
    inside = (low is None or value >= low) and (high is None or value <= high)
    text = f"{name} = {value:.4g}{unit} {where}, reference {reference.value:.4g} band {reference.band_text()}"
    if inside:
        return Verdict(name, VerdictKind.PASS, value, reference, text)
    side = _side(value, low, metric.higher_is_better)
    if reference.xfail:
        return Verdict(name, VerdictKind.XFAIL, value, reference, f"{text}: {side} (xfail: {reference.xfail})")
    return Verdict(name, VerdictKind.FAIL, value, reference, f"{text}: {side}")


def judge(
    metrics: Mapping[str, Metric], references: Mapping[str, Reference], platform: str, require: bool
) -> list[Verdict]:
    """Verdicts for every referenced metric, and for every measured one without a reference."""
    verdicts = [check(metrics.get(name), name, ref, platform) for name, ref in references.items()]
    for name, metric in metrics.items():
        if name in references:
            continue
        text = f"{name} = {metric.format_value()} on platform {platform!r} has no reference"
        kind = VerdictKind.FAIL if require else VerdictKind.NO_REFERENCE
        verdicts.append(
            Verdict(name, kind, metric.value, None, text + (" (--hetero-require-references)" if require else ""))
        )
    return verdicts


def _side(value: float, low: float | None, higher_is_better: bool) -> str:
    below = low is not None and value < low
    worse = below == higher_is_better
    where = "below" if below else "above"
    return f"{where} the band ({'worse' if worse else 'better'} than the reference)"


@dataclass
class ReferenceBook:
    """References of one file: test key -> platform pattern -> metric -> Reference."""

    path: Path
    entries: dict[str, dict[str, dict[str, Reference]]]

    def locate(self, test_key: str, platform: str) -> tuple[str, str] | None:
        """The (test key, platform pattern) entry that applies: most specific key first,
        then an exact platform name before a glob."""
        for key in candidate_keys(test_key):
            by_platform = self.entries.get(key)
            if by_platform is None:
                continue
            if platform in by_platform:
                return key, platform
            for pattern in by_platform:
                if fnmatch.fnmatchcase(platform, pattern):
                    return key, pattern
        return None

    def lookup(self, test_key: str, platform: str) -> dict[str, Reference]:
        found = self.locate(test_key, platform)
        return {} if found is None else self.entries[found[0]][found[1]]

    def update(self, test_key: str, platform: str, metrics: Mapping[str, Metric]) -> None:
        """Set measured values in the entry that applies (its tolerances and xfail kept);
        a new entry gets 20 % on the bad side."""
        key, pattern = self.locate(test_key, platform) or (test_key, platform)
        current = self.entries.setdefault(key, {}).setdefault(pattern, {})
        for name, metric in metrics.items():
            if metric.value is None:
                continue
            old = current.get(name)
            lower, upper = (-0.2, None) if metric.higher_is_better else (None, 0.2)
            if old is not None:
                lower, upper = old.lower, old.upper
            current[name] = Reference(_round(metric.value), lower, upper, metric.unit, old.xfail if old else None)

    def save(self) -> None:
        self.path.write_text(yaml.safe_dump(self._as_data(), sort_keys=False, default_flow_style=None))

    def _as_data(self) -> dict[str, Any]:
        refs = {
            key: {plat: {m: _ref_data(by_plat[plat][m]) for m in sorted(by_plat[plat])} for plat in sorted(by_plat)}
            for key, by_plat in sorted(self.entries.items())
        }
        return {"version": 1, "references": refs}


def candidate_keys(test_key: str) -> list[str]:
    """Reference keys for a test, most specific first.

    ``test_x.py::test_y[bs64]`` → that, ``test_x.py::test_y``, ``test_y[bs64]``, ``test_y``.
    """
    base, _, params = test_key.partition("[")
    name = base.rsplit("::", 1)[-1]
    suffix = f"[{params}" if params else ""
    keys = [test_key, base, f"{name}{suffix}", name]
    return list(dict.fromkeys(keys))


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def _ref_data(ref: Reference) -> dict[str, Any]:
    data: dict[str, Any] = {"value": ref.value, "lower": ref.lower, "upper": ref.upper, "unit": ref.unit}
    if ref.xfail:
        data["xfail"] = ref.xfail
    return data


def load_references(path: Path) -> ReferenceBook:
    """Read and validate a references file; a missing file is an empty book."""
    if not path.exists():
        return ReferenceBook(path, {})
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read references: {exc}") from exc
    problems = schema_errors(data, load_schema("references")) or list(_tolerance_problems(data))
    if problems:
        raise ConfigError(f"{path}: invalid references ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    entries = {
        key: {plat: {m: _reference(r) for m, r in metrics.items()} for plat, metrics in by_plat.items()}
        for key, by_plat in data["references"].items()
    }
    return ReferenceBook(path, entries)


def _walk(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, by_plat in data["references"].items():
        for plat, metrics in by_plat.items():
            for metric, raw in metrics.items():
                yield f"$.references[{key!r}][{plat!r}][{metric!r}]", raw


def _tolerance_problems(data: dict[str, Any]) -> Iterator[str]:
    for path, raw in _walk(data):
        ref = _reference(raw)
        if ref.value and ref.lower is not None and ref.lower > 0:
            yield f"{path}.lower: {ref.lower} must be <= 0 (a signed fraction below the value)"
        if ref.value and ref.upper is not None and ref.upper < 0:
            yield f"{path}.upper: {ref.upper} must be >= 0 (a signed fraction above the value)"
        low, high = ref.bounds
        if low is not None and high is not None and low > high:
            yield f"{path}: empty band {ref.band_text()}"


def _reference(raw: Any) -> Reference:
    if isinstance(raw, list):
        value, lower, upper, *rest = raw
        return Reference(float(value), lower, upper, rest[0] if rest else "")
    return Reference(float(raw["value"]), raw.get("lower"), raw.get("upper"), raw.get("unit", ""), raw.get("xfail"))
