"""The result of one benchmark on one platform, and its report record."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from pytest_hetero.check.references import Verdict
from pytest_hetero.config.models import Platform
from pytest_hetero.contention import Contention, ContentionRecord
from pytest_hetero.fingerprint import Fingerprints
from pytest_hetero.metrics import Metric
from pytest_hetero.redact import redact_env, redact_shared, redact_tree
from pytest_hetero.workload import Workload
from pytest_hetero.workloads.protocol import repeat_seed

if TYPE_CHECKING:  # the gate and its history store load only when a run compares (--hetero-compare)
    from pytest_hetero.check.gate import MetricComparison, Series

__all__ = [
    "PROVENANCE_REF",
    "RECORD_VERSION",
    "BenchmarkResult",
    "ErrorRecord",
    "JobRecord",
    "PlatformRecord",
    "ResultRecord",
    "WorkloadRecord",
]

RECORD_VERSION = 1
#: Where a record's provenance is: the report's (a JSON pointer). Reports before it repeated it in every record.
PROVENANCE_REF = "#/provenance"


class PlatformRecord(TypedDict):
    name: str
    backend: str
    launcher: str
    accelerator: dict[str, Any]
    nodes: int
    tags: list[str]
    source: str
    fingerprint: str  # pytest_hetero.fingerprint: backend, launcher, env, image, venv, resources ...
    fingerprint_parts: dict[str, str]  # part -> its hash, to say what changed


class SharedWorkloadRecord(TypedDict):
    """What every case of a test repeats about its workload."""

    name: str
    module: str | None
    command: list[str]
    config: dict[str, Any]
    config_hash: str  # how it is called and its config
    fingerprint: str  # the config hash and the code
    code: dict[str, str]  # source file -> content hash


class WorkloadRecord(SharedWorkloadRecord):
    seeds: list[int | None]  # each repeat's seed, as job.ids (None: the workload's default)
    reported: dict[str, Any]  # what the workload itself said in its metrics record


class JobRecord(TypedDict):
    id: str | None
    ids: list[str]
    state: str | None
    exit_code: int | None
    argv: list[str]
    env: dict[str, str]  # secrets redacted
    workdir: str
    logs: dict[str, str]


class ErrorRecord(TypedDict):
    stage: str | None
    message: str


class _OptionalRecord(TypedDict, total=False):
    skip_reason: str


class ResultRecord(_OptionalRecord):
    """One test's record in the JSON report (``schemas/report.schema.json``, ``results[]``).

    Typed in the plugin; a plain dict only where it crosses a boundary (the xdist
    transport, the JSON file, the history store, the CLI reading reports).
    """

    nodeid: str
    test: str
    outcome: str
    platform: PlatformRecord
    workload: WorkloadRecord
    metrics: dict[str, dict[str, Any]]
    verdicts: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]
    stage_timings_s: dict[str, float]
    job: JobRecord
    error: ErrorRecord | None
    contention: ContentionRecord  # what ran beside it: pytest_hetero.contention
    started_at: str
    references_file: str
    provenance: dict[str, Any]  # {"ref": PROVENANCE_REF} and the workload's own, if any


@dataclass
class BenchmarkResult:
    """What one test measured; filled stage by stage."""

    nodeid: str
    test_key: str
    platform: Platform
    workload: Workload
    workdir: str
    env: dict[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    state: str | None = None
    exit_code: int | None = None
    metrics: dict[str, Metric] = field(default_factory=dict)
    workload_info: dict[str, Any] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    comparisons: list[MetricComparison] = field(default_factory=list)
    stage_timings_s: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    failed_stage: str | None = None
    log_paths: dict[str, str] = field(default_factory=dict)
    references_file: str = ""
    skip_reason: str | None = None
    #: Another job shared the platform's resource group during this one's measured window.
    contended: bool = False
    #: Its resource group, its jobs' windows and what overlapped them; sets ``contended``.
    contention: Contention = field(default_factory=Contention)
    #: Of the workload's code and config, and of the platform: what this result may be compared with.
    fingerprints: Fingerprints = field(default_factory=Fingerprints)
    started_at: float = field(default_factory=time.time)

    @property
    def job_id(self) -> str | None:
        """The (first) backend job id; repeats have one id each in ``job_ids``."""
        return self.job_ids[0] if self.job_ids else None

    def failure_messages(self) -> list[str]:
        """Why the benchmark fails on performance: the failed verdicts (band and gate combined, see
        :mod:`pytest_hetero.check.verdicts`), then regressions of metrics without a verdict."""
        judged = {v.metric for v in self.verdicts}
        misses = [v.message for v in self.verdicts if v.failed]
        return misses + [c.message for c in self.comparisons if c.regressed and c.metric not in judged]

    def metric(self, name: str) -> float | None:
        """The value of a measured metric (None when absent)."""
        found = self.metrics.get(name)
        return None if found is None else found.value

    def series(self) -> Series:
        """What the regression gate looks its baseline up by: like with like."""
        from pytest_hetero.check.gate import Series

        return Series(self.test_key, self.platform.name, self.workload.config_hash, self.nodeid, self.fingerprints)

    def _shared_parts(self) -> tuple[PlatformRecord, SharedWorkloadRecord]:
        """What every case of the test on this platform repeats, redacted once (:func:`redact_shared`)."""
        platform, prints, workload = self.platform, self.fingerprints, self.workload
        return (
            redact_shared("platform", (platform, prints), lambda: _platform_record(platform, prints)),
            redact_shared("workload", (workload, prints), lambda: _workload_record(workload, prints)),
        )

    def to_record(self, outcome: str) -> ResultRecord:
        """The JSON report record (see ``schemas/report.schema.json``).

        The run's provenance (host, packages, commit, machine info) is the report's, once:
        the record refers to it (:data:`PROVENANCE_REF`) and adds only what its workload
        reported about the device it ran on.
        """
        shared_platform, shared_workload = self._shared_parts()
        record: ResultRecord = {
            "nodeid": self.nodeid,
            "test": self.test_key,
            "outcome": outcome,
            "platform": shared_platform,
            "workload": {
                **shared_workload,
                "seeds": [repeat_seed(self.workload.seed, index) for index in range(len(self.job_ids))],
                "reported": redact_tree(self.workload_info),
            },
            "metrics": {name: m.as_dict() for name, m in self.metrics.items()},
            "verdicts": [v.as_dict() for v in self.verdicts],
            "comparisons": [c.as_dict() for c in self.comparisons],
            "stage_timings_s": {stage: round(seconds, 6) for stage, seconds in self.stage_timings_s.items()},
            "job": {
                "id": self.job_id,
                "ids": self.job_ids,
                "state": self.state,
                "exit_code": self.exit_code,
                "argv": self.argv,
                "env": redact_env(self.env),
                "workdir": self.workdir,
                "logs": self.log_paths,
            },
            "error": None if self.error is None else {"stage": self.failed_stage, "message": self.error},
            "contention": self.contention.as_record(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "references_file": self.references_file,
            "provenance": _provenance(self.workload_info),
        }
        if self.skip_reason:
            record["skip_reason"] = self.skip_reason
        # The one edge every output passes: no secret beyond it (the shared parts are redacted already).
        redacted: ResultRecord = redact_tree(record, done=_SHARED_PARTS)
        return redacted


def _provenance(workload_info: dict[str, Any]) -> dict[str, Any]:
    """A reference to the report's provenance, plus the workload's own (device facts), if it said any."""
    found = workload_info.get("provenance")
    return {"ref": PROVENANCE_REF, "workload": found} if found else {"ref": PROVENANCE_REF}


#: A record's parts that :func:`redact_shared` redacted.
_SHARED_PARTS = frozenset({"platform", "workload"})


def _workload_record(workload: Workload, fingerprints: Fingerprints) -> SharedWorkloadRecord:
    """The workload's part of a record that its cases share (without their seeds and what they reported)."""
    return {
        "name": workload.name,
        "module": workload.module,
        "command": list(workload.command),
        "config": dict(workload.config),
        "config_hash": workload.config_hash,
        "fingerprint": fingerprints.workload,
        "code": dict(fingerprints.code),
    }


def _platform_record(platform: Platform, fingerprints: Fingerprints) -> PlatformRecord:
    acc = platform.accelerator
    return {
        "name": platform.name,
        "backend": platform.backend.kind,
        "launcher": platform.launcher.kind,
        "accelerator": {
            "kind": acc.kind,
            "model": acc.model,
            "count_per_node": acc.count_per_node,
            "used_per_node": platform.accelerators_per_node,  # what a job gets: its share of a node's cost
        },
        "nodes": platform.resources.nodes,
        "tags": list(platform.tags),
        "source": platform.source,
        "fingerprint": fingerprints.platform,
        "fingerprint_parts": dict(fingerprints.platform_parts),
    }
