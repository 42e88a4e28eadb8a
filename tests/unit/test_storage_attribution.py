"""Storage attribution: which filesystem holds each data root, and where time to train went."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_reports import record, report

from pytest_hetero.reporting.markdown import render_summary
from pytest_hetero.reporting.terminal import summary_lines
from pytest_hetero.workloads.common import StepTimer
from pytest_hetero.workloads.data import StagingResult
from pytest_hetero.workloads.storage import data_roots_storage, kind_of, mount_of, parse_mountinfo
from pytest_hetero.workloads.timesplit import attribution, time_split

# Lines as a Lustre client, a CephFS kernel mount, an RBD-backed ext4, NFS and tmpfs write them.
MOUNTINFO = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,discard
30 22 0:40 / /lustre rw,relatime shared:20 - lustre 10.0.0.1@o2ib:/scratch rw,flock,lazystatfs
31 22 0:41 / /ceph rw,noatime shared:21 - ceph 10.0.0.2:6789:/volumes/ds rw,name=bench,acl
32 22 251:0 / /data/imagenet ro,relatime shared:22 - ext4 /dev/rbd0 ro,stripe=16
33 22 0:42 / /home rw,relatime shared:23 - nfs4 nas:/export/home rw,vers=4.2,rsize=1048576
34 22 0:43 / /dev/shm rw,nosuid,nodev shared:24 - tmpfs tmpfs rw,size=1024k
35 30 0:44 / /lustre/my\\040data rw,relatime shared:25 - lustre 10.0.0.1@o2ib:/proj rw
"""


@pytest.mark.parametrize(
    ("path", "kind", "source"),
    [
        ("/lustre/datasets/cosmoflow", "lustre", "10.0.0.1@o2ib:/scratch"),
        ("/ceph/deepcam", "cephfs", "10.0.0.2:6789:/volumes/ds"),
        ("/data/imagenet/train", "ceph-rbd", "/dev/rbd0"),
        ("/home/u/kits19", "nfs", "nas:/export/home"),
        ("/dev/shm/staged", "tmpfs", "tmpfs"),
        ("/lustre/my data/x", "lustre", "10.0.0.1@o2ib:/proj"),  # the innermost mount, escapes undone
        ("/var/tmp", "local", "/dev/vda1"),
    ],
)
def test_each_path_gets_its_innermost_mount(path: str, kind: str, source: str) -> None:
    mount = mount_of(path, parse_mountinfo(MOUNTINFO))
    assert mount is not None and (mount.kind, mount.source) == (kind, source)


def test_options_join_the_mounts_and_the_superblocks() -> None:
    mount = mount_of("/home/u", parse_mountinfo(MOUNTINFO))
    assert mount is not None and mount.options == "rw,relatime,vers=4.2,rsize=1048576"
    assert kind_of("fuse.ceph-fuse", "ceph-fuse") == "cephfs" and kind_of("weirdfs", "x") == "other"


def test_every_data_root_and_the_staging_target_is_described(tmp_path: Path) -> None:
    environ = {"HETERO_DATA_COSMOFLOW": "/lustre/datasets/cosmoflow", "HETERO_DATA_NODE_LOCAL": "/dev/shm", "X": "y"}
    roots = data_roots_storage(environ, "/ceph/ds", "/dev/shm/x", mounts=parse_mountinfo(MOUNTINFO))
    assert {name: entry["kind"] for name, entry in roots.items()} == {
        "cosmoflow": "lustre",
        "node_local": "tmpfs",
        "dataset": "cephfs",
        "staged": "tmpfs",
    }
    assert roots["cosmoflow"]["options"] == "rw,relatime,flock,lazystatfs"


def test_this_machines_mount_table_is_read() -> None:
    roots = data_roots_storage({"HETERO_DATA_HERE": "/"})
    assert roots["here"]["fstype"] not in ("", "unknown") and roots["here"]["mount_point"] == "/"


def test_the_time_split_names_the_dominant_part() -> None:
    split = time_split(compute_steps_s=4.0, data_wait_s=6.0, communication_s=1.0, staging_s=2.0, time_to_train_s=11.0)
    assert split["seconds"] == {"compute": 3.0, "data_wait": 6.0, "staging": 2.0, "communication": 1.0, "other": 1.0}
    assert split["dominant"] == "data_wait" and math.isclose(split["fractions"]["data_wait"], 6.0 / 13.0)
    empty = time_split(compute_steps_s=0, data_wait_s=math.nan, communication_s=0, staging_s=0, time_to_train_s=0)
    assert empty["dominant"] == "unknown"


def test_attribution_records_the_staging_copy(tmp_path: Path) -> None:
    @dataclass
    class Run:
        timer: StepTimer
        staging: StagingResult | None
        time_to_train_s: float

    timer = StepTimer(0, 1, compute_s=[1.0, 1.0], data_wait_s=[0.5, 0.5])
    run = Run(timer, StagingResult(tmp_path / "src", tmp_path / "dst", 4096, 2, 7.0), 3.5)
    found = attribution(run, {"data": "real"}, 0.0, environ={})
    assert found["time_split"]["dominant"] == "staging"
    assert found["storage"]["staging"] == {
        "source": str(tmp_path / "src"),
        "target": str(tmp_path / "dst"),
        "bytes": 4096,
        "files": 2,
        "time_s": 7.0,
    }
    assert set(found["storage"]["roots"]) == {"dataset", "staged"}


def test_the_terminal_roll_up_names_the_dominant_part() -> None:
    case = record(metrics={"throughput_sps": [412.0]}, band=(360.0, None))
    split = time_split(compute_steps_s=4.0, data_wait_s=6.0, communication_s=1.0, staging_s=2.0, time_to_train_s=11.0)
    case["workload"]["reported"] = {"time_split": split}
    lines = summary_lines([case])  # type: ignore[list-item]
    assert lines[1].endswith("passed: 1 pass; time mostly data wait (46%)")
    plain = record(metrics={"throughput_sps": [412.0]}, band=(360.0, None))
    assert "time mostly" not in summary_lines([plain])[1]  # type: ignore[list-item]


def test_the_markdown_summary_says_where_the_time_went_and_where_the_data_lay() -> None:
    case = record(metrics={"throughput_sps": [412.0]}, band=(360.0, None))
    split = time_split(compute_steps_s=1.0, data_wait_s=0.5, communication_s=0, staging_s=8.5, time_to_train_s=1.5)
    roots = data_roots_storage({"HETERO_DATA_COSMOFLOW": "/lustre/ds"}, mounts=parse_mountinfo(MOUNTINFO))
    case["workload"]["reported"] = {"time_split": split, "storage": {"roots": roots}}
    text = render_summary([report([case])])
    assert "### Where the time went" in text
    assert (
        "`test_resnet50` on `a100`: time mostly staging (85%); data: cosmoflow on lustre (10.0.0.1@o2ib:/scratch)"
        in text
    )
    assert "Where the time went" not in render_summary([report([record(metrics={"throughput_sps": [1.0]})])])
