"""MLPerf ``:::MLLOG`` emitters and a runner for the MLPerf compliance checker.

``mlperf_logging`` is used when importable; otherwise a stdlib emitter prints
the identical line format, so a workload runs in a vendor image without it.
In a distributed run only rank 0 logs (:func:`make_mllogger` with
``enabled=False`` returns a logger that drops everything).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "MLLOG_PREFIX",
    "ComplianceReport",
    "MLLogger",
    "check_compliance",
    "make_mllogger",
    "mllog_lines",
]

MLLOG_PREFIX = ":::MLLOG "
Metadata = dict[str, Any] | None
_FINDINGS_SEPARATOR = "-" * 30


class MLLogger(Protocol):
    """The part of ``mlperf_logging.mllog`` the workloads use, typed."""

    def event(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        """Log a point-in-time event."""

    def start(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        """Log the start of an interval."""

    def end(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        """Log the end of an interval."""


def make_mllogger(mllog_file: str = "", use_mlperf_logging: bool = True, enabled: bool = True) -> MLLogger:
    """Return an MLLOG emitter that writes to stdout (and ``mllog_file`` if set).

    Uses ``mlperf_logging.mllog`` when importable, else a stdlib emitter
    printing the identical ``:::MLLOG {json}`` lines. ``enabled=False`` (ranks
    other than 0) returns a logger that drops every event.
    """
    if not enabled:
        return _NullLogger()
    if use_mlperf_logging:
        try:
            return _MlperfLogger(mllog_file)
        except ImportError:
            pass
    return _StdlibMLLogger(mllog_file)


class _NullLogger:
    def event(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        """Drop the event."""

    def start(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        """Drop the event."""

    def end(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        """Drop the event."""


class _MlperfLogger:
    """Typed wrapper around the (untyped) shared ``mlperf_logging`` logger."""

    # mllog looks this many frames above its own method for the call site;
    # 2 skips this wrapper so the log names the workload's line.
    _STACK_OFFSET = 2

    def __init__(self, mllog_file: str) -> None:
        from mlperf_logging import mllog

        if mllog_file:
            mllog.config(filename=mllog_file)
        self._logger: Any = mllog.get_mllogger()

    def event(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        self._logger.event(key, value, metadata, stack_offset=self._STACK_OFFSET)

    def start(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        self._logger.start(key, value, metadata, stack_offset=self._STACK_OFFSET)

    def end(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        self._logger.end(key, value, metadata, stack_offset=self._STACK_OFFSET)


class _StdlibMLLogger:
    """The ``:::MLLOG`` line format of mlperf_logging 4.x, without the package."""

    def __init__(self, mllog_file: str) -> None:
        self._logger = logging.getLogger("pytest_hetero.mllog")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._logger.handlers.clear()
        self._logger.addHandler(logging.StreamHandler(sys.stdout))
        if mllog_file:
            self._logger.addHandler(logging.FileHandler(mllog_file))

    def event(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        self._log("POINT_IN_TIME", key, value, metadata)

    def start(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        self._log("INTERVAL_START", key, value, metadata)

    def end(self, key: str, value: Any = None, metadata: Metadata = None) -> None:
        self._log("INTERVAL_END", key, value, metadata)

    def _log(self, event_type: str, key: str, value: Any, metadata: Metadata) -> None:
        caller = sys._getframe(2)  # the workload line that called event/start/end
        full_metadata: dict[str, Any] = {
            "file": caller.f_code.co_filename,
            "lineno": caller.f_lineno,
        }
        full_metadata.update(metadata or {})
        record = {
            "namespace": "",
            "time_ms": int(time.time() * 1e3),
            "event_type": event_type,
            "key": key,
            "value": value,
            "metadata": full_metadata,
        }
        self._logger.info(MLLOG_PREFIX + json.dumps(record))


# --------------------------------------------------------------------------
# The compliance checker
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ComplianceReport:
    """What ``mlperf_logging.compliance_checker`` said about one log.

    ``messages`` are the checker's findings, one per failed rule (empty when
    it printed SUCCESS); ``output`` is everything it printed.
    """

    returncode: int
    output: str
    messages: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.returncode == 0


def mllog_lines(stdout_text: str) -> list[str]:
    """The ``:::MLLOG`` lines of a workload's stdout."""
    return [line for line in stdout_text.splitlines() if line.startswith(MLLOG_PREFIX)]


def check_compliance(
    lines: Iterable[str], usage: str, ruleset: str, workdir: Path, timeout_s: float = 120.0
) -> ComplianceReport:
    """Write ``lines`` to ``workdir`` and run the checker on them (needs mlperf-logging)."""
    log_path = workdir / "mllog.txt"
    log_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    argv = [sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", usage, "--ruleset", ruleset]
    argv += ["--log_output", str(workdir / "checker.log"), str(log_path)]
    result = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=timeout_s, check=False)
    output = result.stdout + result.stderr
    return ComplianceReport(result.returncode, output, _findings(output))


def _findings(output: str) -> tuple[str, ...]:
    # the checker prints its findings as one WARNING, separated by dashed lines
    if "WARNING - " not in output:
        return ()
    findings = output.split("WARNING - ", 1)[1].split("ERROR - FAILED")[0]
    return tuple(m.strip() for m in findings.split(_FINDINGS_SEPARATOR) if m.strip())
