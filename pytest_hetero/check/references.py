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

The references of a host-bound platform (its jobs run on the pytest host)
carry the fingerprint of the host they were measured on (``host:``). On
another host, host-bound metrics (times, rates, memory: :mod:`.units`) get
``no-reference`` with the reason, while the others (steps, epochs, fractions,
a loss band) are still checked. A measurement taken while another job shared
the resource is not judged on its host-bound metrics (``contended``).

A value outside its band by less than the metric's noise floor (from the
reference value; :func:`~pytest_hetero.check.units.default_noise_floor`, or
``noise_floor`` in the reference) passes.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from pytest_hetero.check.units import default_noise_floor, is_host_bound
from pytest_hetero.config import safe_yaml
from pytest_hetero.errors import ConfigError
from pytest_hetero.host_fingerprint import HostFingerprint
from pytest_hetero.metrics import Metric
from pytest_hetero.schemas import load_schema, schema_errors

__all__ = [
    "HOST_KEY",
    "Reference",
    "ReferenceBook",
    "ReferenceEntry",
    "Verdict",
    "VerdictKind",
    "candidate_keys",
    "check",
    "judge",
    "load_references",
    "parse_yaml",
    "read_text",
]

#: The key of a platform entry that holds the host fingerprint, not a metric.
HOST_KEY = "host"


@dataclass(frozen=True)
class Reference:
    value: float
    lower: float | None = None
    upper: float | None = None
    unit: str = ""
    xfail: str | None = None
    #: Whether the figure depends on the host; None: decided by the unit.
    host_bound: bool | None = None
    #: The smallest absolute change (in the unit) the regression gate may call a regression; None: by the unit.
    noise_floor: float | None = None

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
    REGRESSION = "regression"  # inside its band (or without one), but the regression gate found a slowdown
    CONTENDED = "contended"  # measured while another job shared the resource: not judged


_FAILING = frozenset({VerdictKind.FAIL, VerdictKind.MISSING, VerdictKind.REGRESSION})


@dataclass(frozen=True)
class Verdict:
    """One metric's verdict: its reference band and (see :mod:`.verdicts`) the regression gate, combined."""

    metric: str
    kind: VerdictKind
    value: float | None
    reference: Reference | None
    message: str
    band: VerdictKind | None = None  # what the band alone said; None when it was not applied
    gate: str | None = None  # the regression gate's verdict on this metric, when it compared it
    reason: str = ""  # why the band was not applied or not judged (another host, contention)
    host_bound: bool = False

    @property
    def failed(self) -> bool:
        return self.kind in _FAILING

    def as_dict(self) -> dict[str, Any]:
        ref = self.reference
        low, high = ref.bounds if ref else (None, None)
        data = {
            "metric": self.metric,
            "verdict": self.kind.value,
            "value": self.value,
            "reference": None if ref is None else {"value": ref.value, "lower": ref.lower, "upper": ref.upper},
            "lower_bound": low,
            "upper_bound": high,
            "message": self.message,
            "band": None if self.band is None else self.band.value,
            "gate": self.gate,
            "host_bound": self.host_bound,
        }
        if self.reason:
            data["reason"] = self.reason
        return data


def check(metric: Metric | None, name: str, reference: Reference, platform: str) -> Verdict:
    """Compare one metric with its reference; the message names everything."""
    where = f"on platform {platform!r}"
    bound = is_host_bound(metric.unit if metric and metric.unit else reference.unit, reference.host_bound)
    if metric is None or metric.value is None:
        kind = VerdictKind.XFAIL if reference.xfail else VerdictKind.MISSING
        text = f"{name}: no value measured {where} (reference {reference.value})"
        return Verdict(name, kind, None, reference, text, kind, host_bound=bound)
    low, high = reference.bounds
    value = metric.value
    unit = f" {metric.unit or reference.unit}".rstrip()
    inside = (low is None or value >= low) and (high is None or value <= high)
    text = f"{name} = {value:.4g}{unit} {where}, reference {reference.value:.4g} band {reference.band_text()}"
    kind = VerdictKind.PASS
    floor = reference.noise_floor if reference.noise_floor is not None else default_noise_floor(unit.strip())
    if not inside and abs(value - reference.value) < floor:
        text = f"{text}: outside the band by less than the noise floor {floor:g}{unit}"
    elif not inside:
        text = f"{text}: {_side(value, low, metric.higher_is_better)}"
        kind = VerdictKind.FAIL
        if reference.xfail:
            text, kind = f"{text} (xfail: {reference.xfail})", VerdictKind.XFAIL
    return Verdict(name, kind, value, reference, text, kind, host_bound=bound)


def judge(
    metrics: Mapping[str, Metric],
    references: Mapping[str, Reference],
    platform: str,
    require: bool,
    *,
    elsewhere: str = "",
    contended: bool = False,
) -> list[Verdict]:
    """Verdicts for every referenced metric, and for every measured one without a reference.

    ``elsewhere``: why the references do not apply to this host (their host-bound metrics are
    then ``no-reference``); ``contended``: the measurement shared its resource with another job
    (host-bound metrics are then ``contended``, not judged).
    """
    verdicts = []
    for name, ref in references.items():
        metric = metrics.get(name)
        verdict = check(metric, name, ref, platform)
        if verdict.host_bound and metric is not None and metric.value is not None:
            if elsewhere:
                verdict = _not_here(verdict, metric.unit, platform, elsewhere, require)
            elif contended:
                verdict = _contended(verdict)
        verdicts.append(verdict)
    for name, metric in metrics.items():
        if name not in references:
            verdicts.append(_unreferenced(metric, platform, require, contended))
    return verdicts


def _not_here(verdict: Verdict, unit: str, platform: str, elsewhere: str, require: bool) -> Verdict:
    ref = verdict.reference
    assert ref is not None
    value = "n/a" if verdict.value is None else f"{verdict.value:.4g}"
    measured = f"{verdict.metric} = {value} {unit or ref.unit}".rstrip()
    text = f"{measured} on platform {platform!r}: reference {ref.value:.4g} not applied, {elsewhere}"
    kind = VerdictKind.FAIL if require else VerdictKind.NO_REFERENCE
    suffix = " (--hetero-require-references)" if require else ""
    return Verdict(verdict.metric, kind, verdict.value, None, text + suffix, None, reason=elsewhere, host_bound=True)


_CONTENDED_REASON = "measured while another job shared the resource"


def _contended(verdict: Verdict) -> Verdict:
    text = f"{verdict.message} [{_CONTENDED_REASON}: not judged]"
    return Verdict(
        verdict.metric,
        VerdictKind.CONTENDED,
        verdict.value,
        verdict.reference,
        text,
        verdict.band,
        reason=_CONTENDED_REASON,
        host_bound=True,
    )


def _unreferenced(metric: Metric, platform: str, require: bool, contended: bool) -> Verdict:
    bound = is_host_bound(metric.unit)
    text = f"{metric.name} = {metric.format_value()} on platform {platform!r} has no reference"
    if require:
        return Verdict(metric.name, VerdictKind.FAIL, metric.value, None, f"{text} (--hetero-require-references)")
    reason = _CONTENDED_REASON if contended and bound else ""
    return Verdict(metric.name, VerdictKind.NO_REFERENCE, metric.value, None, text, reason=reason, host_bound=bound)


def _side(value: float, low: float | None, higher_is_better: bool) -> str:
    below = low is not None and value < low
    worse = below == higher_is_better
    where = "below" if below else "above"
    return f"{where} the band ({'worse' if worse else 'better'} than the reference)"


@dataclass(frozen=True)
class ReferenceEntry:
    """The references of one test on one platform pattern, and the host they were measured on."""

    metrics: Mapping[str, Reference] = field(default_factory=dict)
    host: HostFingerprint | None = None

    def elsewhere(self, here: HostFingerprint) -> str:
        """Why these references do not apply on ``here`` ('' when they do, or carry no fingerprint)."""
        differences = [] if self.host is None else self.host.differences(here)
        return f"measured on another host: {'; '.join(differences)}" if differences else ""

    def noise_floors(self) -> dict[str, float]:
        """The metrics whose noise floor the references set."""
        return {name: ref.noise_floor for name, ref in self.metrics.items() if ref.noise_floor is not None}


@dataclass
class ReferenceBook:
    """References of one file: test key -> platform pattern -> entry (metric -> Reference, host)."""

    path: Path
    entries: dict[str, dict[str, ReferenceEntry]]

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

    def entry(self, test_key: str, platform: str) -> ReferenceEntry:
        found = self.locate(test_key, platform)
        return ReferenceEntry() if found is None else self.entries[found[0]][found[1]]

    def lookup(self, test_key: str, platform: str) -> Mapping[str, Reference]:
        return self.entry(test_key, platform).metrics


def candidate_keys(test_key: str) -> list[str]:
    """Reference keys for a test, most specific first.

    ``test_x.py::test_y[bs64]`` → that, ``test_x.py::test_y``, ``test_y[bs64]``, ``test_y``.
    """
    base, _, params = test_key.partition("[")
    name = base.rsplit("::", 1)[-1]
    suffix = f"[{params}" if params else ""
    keys = [test_key, base, f"{name}{suffix}", name]
    return list(dict.fromkeys(keys))


def read_text(path: Path, what: str) -> str:
    """A file's text; unreadable, oversized or non-UTF-8 content is a ConfigError naming the file."""
    return safe_yaml.read_text(path, what)


def parse_yaml(path: Path, what: str) -> Any:
    """Parse a YAML file within bounds (:mod:`pytest_hetero.config.safe_yaml`); errors name file and line."""
    return safe_yaml.load_yaml(path, what)


def load_references(path: Path) -> ReferenceBook:
    """Read and validate a references file; a missing file is an empty book."""
    if not path.exists():
        return ReferenceBook(path, {})
    data = parse_yaml(path, "references")
    problems = schema_errors(data, load_schema("references")) + list(safe_yaml.non_finite_paths(data))
    problems = problems or list(_tolerance_problems(data))
    if problems:
        raise ConfigError(f"{path}: invalid references ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    entries = {
        key: {plat: _entry(section) for plat, section in by_plat.items()} for key, by_plat in data["references"].items()
    }
    return ReferenceBook(path, entries)


def _entry(section: Mapping[str, Any]) -> ReferenceEntry:
    host = section.get(HOST_KEY)
    metrics = {name: _reference(raw) for name, raw in section.items() if name != HOST_KEY}
    return ReferenceEntry(metrics, None if host is None else HostFingerprint.from_mapping(host))


def _walk(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, by_plat in data["references"].items():
        for plat, section in by_plat.items():
            for metric, raw in section.items():
                if metric != HOST_KEY:
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
    floor = raw.get("noise_floor")
    return Reference(
        float(raw["value"]),
        raw.get("lower"),
        raw.get("upper"),
        raw.get("unit", ""),
        raw.get("xfail"),
        raw.get("host_bound"),
        None if floor is None else float(floor),
    )
