"""Per-test metrics as JUnit ``<property>`` elements.

pytest writes ``item.user_properties`` into ``<testcase><properties>``. That
element is valid under ``junit_family = xunit1`` (and ``legacy``); GitLab and
Jenkins read it under ``xunit2`` too, although the xunit2 XSD does not allow it.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from pytest_hetero.diskspace import no_space_message
from pytest_hetero.reporting.html_cells import band_text
from pytest_hetero.results import BenchmarkResult

__all__ = ["junit_properties", "junit_write_failed"]


def junit_write_failed(config: pytest.Config, exc: OSError, problems: list[str]) -> bool:
    """Whether ``exc`` is pytest's ``--junitxml`` writer failing (a full disk); if so, note it in ``problems``.

    The partial file is removed: a CI job then reports the JUnit file missing, not a parse error.
    """
    if not any(frame.filename.endswith("junitxml.py") for frame in traceback.extract_tb(exc.__traceback__)):
        return False
    path = Path(config.option.xmlpath) if getattr(config.option, "xmlpath", None) else None
    if path is not None:
        path.unlink(missing_ok=True)
    problems.append(f"could not write the JUnit report {path}: {no_space_message(exc)}")
    return True


def junit_properties(result: BenchmarkResult) -> list[tuple[str, object]]:
    props: list[tuple[str, object]] = [
        ("hetero.platform", result.platform.name),
        ("hetero.workload", result.workload.name),
        ("hetero.config_hash", result.workload.config_hash),
    ]
    if result.job_id:
        props.append(("hetero.job_id", result.job_id))
    for name, metric in result.metrics.items():
        props.append((f"hetero.metric.{name}", "" if metric.value is None else metric.value))
        props.append((f"hetero.unit.{name}", metric.unit))
    for verdict in result.verdicts:
        props.append((f"hetero.verdict.{verdict.metric}", verdict.kind.value))
        band = band_text(verdict.as_dict())
        if band:  # the accepted range, so a CI page shows why a value passed or failed
            props.append((f"hetero.band.{verdict.metric}", band))
    if result.failed_stage:
        props.append(("hetero.failed_stage", result.failed_stage))
    if result.contended:  # other jobs shared its resource group while it ran
        props.append(("hetero.contended", "true"))
    return props
