"""A public fake backend, like httpx's ``MockTransport``.

It runs nothing: a handler turns each :class:`JobSpec` into a
:class:`FakeResult` (what the "job" printed and how it ended). Use it to test
benchmark suites, references and reports without hardware::

    # conftest.py
    from pytest_hetero.backends.fake import FakeBackend, FakeResult

    def pytest_hetero_make_backend(platform, config):
        if platform.backend.kind == "fake":
            return FakeBackend(platform, handler=lambda spec: FakeResult(metrics={"throughput_sps": 42.0}))

Without a handler, the platform's ``backend.options`` describe the result
(``metrics``, ``exit_code``, ``state``, ``stdout``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from pytest_hetero.backends.base import (
    Backend,
    BackendOptions,
    JobHandle,
    JobOutput,
    JobSpec,
    JobState,
    check_options,
    narrow_handle,
)
from pytest_hetero.config.models import BackendConfig, Platform
from pytest_hetero.workloads.common import METRICS_PREFIX

__all__ = ["FakeBackend", "FakeResult"]

_METRIC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["value"],
    "properties": {
        "value": {"type": ["number", "null"]},
        "unit": {"type": "string"},
        "higher_is_better": {"type": "boolean"},
    },
}


@dataclass(frozen=True)
class FakeResult:
    """How a fake job ends. ``metrics`` maps a name to a value or a full entry."""

    metrics: Mapping[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    state: JobState = JobState.COMPLETED
    stdout: str = ""
    stderr: str = ""

    def render_stdout(self) -> str:
        entries = [_entry(name, value) for name, value in self.metrics.items()]
        record = json.dumps({"metrics": entries, "workload": "fake"})
        text = self.stdout + ("\n" if self.stdout and not self.stdout.endswith("\n") else "")
        return text + (f"{METRICS_PREFIX}{record}\n" if entries else "")


def _entry(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {"name": name, "unit": "", "higher_is_better": True, **value}
    return {"name": name, "value": value, "unit": "", "higher_is_better": True}


@dataclass(frozen=True)
class FakeOptions(BackendOptions):
    """``backend.options`` of the fake backend: the result of every job when no handler is given."""

    metrics: Mapping[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    state: JobState = JobState.COMPLETED
    stdout: str = ""

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> FakeOptions:
        values = dict(raw)
        if "state" in values:
            values["state"] = JobState(values["state"])
        return super().from_mapping(values)


@dataclass(kw_only=True)
class FakeJobHandle(JobHandle):
    """A fake job: finished from the start, with the handler's result."""

    result: FakeResult


class FakeBackend(Backend):
    """Finishes every job at once with the handler's :class:`FakeResult`."""

    name = "fake"
    options_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "metrics": {"type": "object", "additionalProperties": _METRIC},
            "exit_code": {"type": "integer"},
            "state": {"enum": [s.value for s in JobState]},
            "stdout": {"type": "string"},
        },
    }
    _ids = itertools.count(1)
    options: FakeOptions

    def __init__(self, platform: Platform, handler: Callable[[JobSpec], FakeResult] | None = None) -> None:
        # A conftest may stand the fake in for any platform's backend: another kind's options are not the fake's.
        own = platform.backend.kind == self.name
        super().__init__(platform if own else replace(platform, backend=BackendConfig(kind=self.name)))
        self.platform = platform
        self.handler = handler or self._from_options
        self.submitted: list[JobSpec] = []
        self.cancelled: list[str] = []

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any]) -> FakeOptions:
        return FakeOptions.from_mapping(check_options(cls.options_schema, raw))

    def _from_options(self, spec: JobSpec) -> FakeResult:
        options = self.options
        return FakeResult(
            metrics=dict(options.metrics), exit_code=options.exit_code, state=options.state, stdout=options.stdout
        )

    def submit(self, spec: JobSpec) -> FakeJobHandle:
        self.submitted.append(spec)
        result = self.handler(spec)
        spec.workdir.mkdir(parents=True, exist_ok=True)
        spec.stdout_path.write_text(result.render_stdout())
        spec.stderr_path.write_text(result.stderr)
        return FakeJobHandle(job_id=f"fake-{next(self._ids)}", spec=spec, result=result)

    def status(self, handle: JobHandle) -> JobState:
        return narrow_handle(handle, FakeJobHandle).result.state

    def cancel(self, handle: JobHandle) -> None:
        self.cancelled.append(handle.job_id)

    def collect(self, handle: JobHandle) -> JobOutput:
        result = narrow_handle(handle, FakeJobHandle).result
        return JobOutput(
            job_id=handle.job_id,
            state=result.state,
            exit_code=result.exit_code,
            stdout_path=handle.spec.stdout_path,
            stderr_path=handle.spec.stderr_path,
            elapsed_s=0.0,
        )
