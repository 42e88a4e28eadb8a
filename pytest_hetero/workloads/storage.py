"""Where a run's data lives: the filesystem of each data root, from the mount table. Stdlib only.

Results on shared storage differ by the filesystem far more than by the
accelerator (the EPCC comparison found Lustre against Ceph, and staging,
dominating), so every record says, per data root (``$HETERO_DATA_<NAME>``,
the config's ``data_dir``, the staging target), which mount holds it:
filesystem type, a kind (``lustre``, ``cephfs``, ``ceph-rbd``, ``nfs``,
``tmpfs``, ``overlay``, ``local``, ``other``), the mount source, the mount
point and the mount and superblock options, read from ``/proc/self/mountinfo``
(the innermost mount whose point contains the path, after resolving links).
Where there is no mount table (not Linux) the entry says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_hetero.workloads.protocol import DATA_ENV_PREFIX

__all__ = ["MOUNTINFO", "Mount", "data_roots_storage", "kind_of", "mount_of", "parse_mountinfo"]

MOUNTINFO = Path("/proc/self/mountinfo")
_LOCAL = {"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs", "vfat", "exfat", "ntfs3"}
_KINDS = {"lustre": "lustre", "ceph": "cephfs", "fuse.ceph-fuse": "cephfs", "nfs": "nfs", "nfs4": "nfs"}
_KINDS |= {"tmpfs": "tmpfs", "ramfs": "tmpfs", "overlay": "overlay", "gpfs": "gpfs", "beegfs": "beegfs"}


@dataclass(frozen=True)
class Mount:
    """One line of the mount table."""

    mount_point: str
    fstype: str
    source: str
    options: str  # per-mount options, then the superblock's (without duplicates)

    @property
    def kind(self) -> str:
        return kind_of(self.fstype, self.source)

    def to_json(self) -> dict[str, str]:
        fields = {"fstype": self.fstype, "kind": self.kind, "source": self.source}
        return {**fields, "mount_point": self.mount_point, "options": self.options}


def kind_of(fstype: str, source: str) -> str:
    """A coarse class of the filesystem: what decides how a dataset read behaves."""
    if source.startswith("/dev/rbd"):
        return "ceph-rbd"  # a Ceph block device, whatever filesystem is on it
    if fstype in _KINDS:
        return _KINDS[fstype]
    return "local" if fstype in _LOCAL else "other"


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of ``/proc/<pid>/mountinfo`` text, in table order (later mounts hide earlier ones)."""
    mounts = []
    for line in text.splitlines():
        before, sep, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        super_options = tail[2] if len(tail) > 2 else ""
        options = list(dict.fromkeys([*fields[5].split(","), *super_options.split(",")]))
        mounts.append(Mount(_unescape(fields[4]), tail[0], _unescape(tail[1]), ",".join(o for o in options if o)))
    return mounts


def mount_of(path: str | Path, mounts: list[Mount]) -> Mount | None:
    """The innermost mount holding ``path`` (links resolved; the last mounted wins on a tie)."""
    resolved = Path(os.path.realpath(path))
    best: Mount | None = None
    for mount in mounts:
        point = Path(mount.mount_point)
        if (resolved == point or point in resolved.parents) and (
            best is None or len(point.parts) >= len(Path(best.mount_point).parts)
        ):
            best = mount
    return best


def _read_mounts() -> list[Mount] | None:
    try:
        return parse_mountinfo(MOUNTINFO.read_text())
    except OSError:
        return None


def data_roots_storage(
    environ: Mapping[str, str], data_dir: str = "", staged_to: str = "", mounts: list[Mount] | None = None
) -> dict[str, dict[str, Any]]:
    """Per data root (``$HETERO_DATA_<NAME>`` by lower-cased name, ``dataset``: the config's
    ``data_dir``, ``staged``: the staging target): its path and its mount."""
    roots = {
        name.removeprefix(DATA_ENV_PREFIX).lower(): path
        for name, path in sorted(environ.items())
        if name.startswith(DATA_ENV_PREFIX) and path
    }
    roots.update({name: path for name, path in (("dataset", data_dir), ("staged", staged_to)) if path})
    table = _read_mounts() if mounts is None else mounts
    described: dict[str, dict[str, Any]] = {}
    for name, path in roots.items():
        mount = None if table is None else mount_of(path, table)
        entry: dict[str, Any] = {"path": path, "exists": os.path.exists(path)}
        entry.update(mount.to_json() if mount else {"fstype": "unknown", "kind": "unknown"})
        described[name] = entry
    return described
