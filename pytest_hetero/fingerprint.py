"""Fingerprints: what a measurement was a measurement *of*, so that only like is compared with like.

Every record carries three hashes (16 hex digits of SHA-256 each):

=========================  ==================================================================
``workload.config_hash``   how the program is called: module or argv, and the config
                           (:attr:`pytest_hetero.workload.Workload.config_hash`)
``workload.fingerprint``   the config hash and the program's code: every source file
                           :mod:`pytest_hetero.sources` finds, by content (``workload.code``
                           lists each file's hash)
``platform.fingerprint``   the platform: backend kind and options, launcher kind and options,
                           accelerator, resources (not the time limit), environment variables,
                           container image, python/venv, setup lines and data roots
                           (``platform.fingerprint_parts`` has one hash per part)
=========================  ==================================================================

A secret's value (an environment variable named like ``*TOKEN*``, ``*KEY*`` …)
never enters a fingerprint, only its name: a rotated token is the same
platform, and nothing derived from the value is written anywhere.

Two records are comparable when all three agree; :func:`differences` says
which differ and what that means (the config changed, the program changed,
the platform changed). Records written before fingerprints existed have
empty ones: they compare by config hash with each other, never with newer
records.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_hetero.config.models import Platform
from pytest_hetero.redact import is_secret
from pytest_hetero.sources import command_files, module_files, search_roots
from pytest_hetero.workload import Workload, canonical_json

__all__ = ["Fingerprints", "code_hashes", "differences", "fingerprints", "platform_parts", "unpaired_notes"]

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Fingerprints:
    """The fingerprints of one benchmark: its workload (code + config) and its platform."""

    workload: str = ""  # "" when not recorded (reports of older versions)
    platform: str = ""
    code: Pairs = ()  # (file label, content hash), sorted
    platform_parts: Pairs = ()  # (part, hash), sorted

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> Fingerprints:
        """The fingerprints of a report record (JSON); empty where it has none."""
        workload, platform = record.get("workload", {}), record.get("platform", {})
        return cls(
            workload=str(workload.get("fingerprint") or ""),
            platform=str(platform.get("fingerprint") or ""),
            code=tuple(sorted((workload.get("code") or {}).items())),
            platform_parts=tuple(sorted((platform.get("fingerprint_parts") or {}).items())),
        )


def _digest(value: object) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:16]


def fingerprints(workload: Workload, platform: Platform, test_dir: Path) -> Fingerprints:
    """Fingerprints of ``workload`` (its code as found from ``test_dir``, the job's directory) on ``platform``."""
    code = tuple(code_hashes(workload, test_dir).items())  # sorted by label
    platform_hash, parts = _platform_fingerprint(platform)
    return Fingerprints(
        workload=_workload_digest(workload.config_hash, code),
        platform=platform_hash,
        code=code,
        platform_parts=parts,
    )


@functools.lru_cache(maxsize=1024)
def _workload_digest(config_hash: str, code: Pairs) -> str:
    """The cases of one test share their workload: its digest is taken once per config and code."""
    return _digest({"config_hash": config_hash, "code": dict(code)})


#: id(platform) -> (the platform, its fingerprint, its parts): a platform is fingerprinted once per run.
_PLATFORMS: dict[int, tuple[Platform, str, Pairs]] = {}


def _platform_fingerprint(platform: Platform) -> tuple[str, Pairs]:
    found = _PLATFORMS.get(id(platform))
    if found is None or found[0] is not platform:  # the platform itself is kept: its id is not reused
        parts = platform_parts(platform)
        found = _PLATFORMS[id(platform)] = (platform, _digest(parts), tuple(sorted(parts.items())))
    return found[1], found[2]


def code_hashes(workload: Workload, test_dir: Path) -> dict[str, str]:
    """File label -> content hash of the workload's code ({} when its source cannot be found here)."""
    if workload.module:
        files = module_files(workload.module, search_roots(test_dir))
    else:
        files = command_files(workload.command, test_dir)
    hashes = {label: _file_hash(path) for label, path in files.items()}
    return {label: digest for label, digest in sorted(hashes.items()) if digest}


def _file_hash(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return ""
    return _content_hash(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _content_hash(path: Path, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # cache keys: a changed file is hashed again
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return ""


def platform_parts(platform: Platform) -> dict[str, str]:
    """Part -> hash of everything about ``platform`` that can change a measurement."""
    env = platform.environment
    resources = dataclasses.replace(platform.resources, time_limit_min=0.0)  # a longer limit measures the same
    parts: dict[str, Any] = {
        "backend": {"kind": platform.backend.kind, "options": dict(platform.backend.options)},
        "launcher": {"kind": platform.launcher.kind, "options": dict(platform.launcher.options)},
        "accelerator": {**vars(platform.accelerator), "peak_tflops": dict(platform.accelerator.peak_tflops)},
        "resources": dataclasses.asdict(resources),
        "env": {name: None if is_secret(name, value) else value for name, value in sorted(env.env.items())},
        "image": env.container_image,
        "python": {"python": env.python, "venv": env.venv},
        "setup": list(env.setup),
        "data_roots": dict(platform.data_roots),
    }
    return {name: _digest(value) for name, value in parts.items()}


def differences(
    current: Fingerprints, current_hash: str, baseline: Fingerprints, baseline_hash: str, where: str
) -> list[str]:
    """Why a baseline measured something else, one reason each ([] when like with like).

    ``where`` names the baseline in the sentences, e.g. ``"in the baseline"``.
    """
    if bool(current.workload) != bool(baseline.workload):
        whose = f"the record {where}" if not baseline.workload else "the current record"
        return [f"{whose} has {_NONE} (written by an older pytest-hetero): what it measured is unknown"]
    reasons = []
    if current_hash != baseline_hash:
        reasons.append(f"workload config hash {current_hash} ≠ {baseline_hash} {where}: the config changed")
    elif current.workload != baseline.workload:
        changed = _changed(current.code, baseline.code)
        reasons.append(
            f"workload fingerprint {current.workload} ≠ {baseline.workload} {where}: the program changed{changed}"
        )
    if current.platform != baseline.platform:
        changed = _changed(current.platform_parts, baseline.platform_parts)
        reasons.append(
            f"platform fingerprint {current.platform} ≠ {baseline.platform} {where}: the platform changed{changed}"
        )
    return reasons


_NONE = "no fingerprints"


def unpaired_notes(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per benchmark whose baseline measured something else (the config, program or platform changed).

    ``records`` are report records; the lines come from their comparisons' notes.
    """
    notes = [c.get("note", "") for record in records for c in record.get("comparisons", [])]
    unlike = [note for note in notes if " ≠ " in note or _NONE in note]  # the sentences of differences()
    return [f"pytest-hetero: {note}" for note in dict.fromkeys(unlike)]


def _changed(current: Pairs, baseline: Pairs, shown: int = 3) -> str:
    """`` (a.py, b.py)``: the entries that differ, when both sides list them."""
    if not current or not baseline:
        return ""
    mine, theirs = dict(current), dict(baseline)
    names = sorted(name for name in mine.keys() | theirs.keys() if mine.get(name) != theirs.get(name))
    more = f", and {len(names) - shown} more" if len(names) > shown else ""
    return f" ({', '.join(names[:shown])}{more})" if names else ""
