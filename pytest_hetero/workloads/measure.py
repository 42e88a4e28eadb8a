"""Measurements beside the step timings: host memory, model FLOPs and MFU.

Stdlib at import time (torch is imported inside the FLOP counter), so
:mod:`.common` can re-export :func:`peak_rss_mb`.

Model FLOPs are counted once, by :func:`.flops.count_train_flops` (torch's
``FlopCounterMode`` with a convolution-backward formula that is right for
grouped convolutions) over one forward + backward pass of a copy of the model
built on the ``meta`` device: no memory, no time on the accelerator, and the
same count on every platform. Only matrix multiplications and convolutions
are counted, as MFU conventionally does. MFU needs the platform's peak: the plugin passes
the catalogue's ``accelerator.peak_tflops`` as JSON in
``HETERO_PEAK_TFLOPS_JSON`` (e.g. ``{"bf16": 312, "fp32": 19.5}``, TFLOP/s per
accelerator).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pytest_hetero.workloads.flops import count_train_flops
from pytest_hetero.workloads.protocol import PEAK_TFLOPS_ENV, WorkloadMetric

__all__ = ["count_train_flops", "flops_metrics", "mfu", "peak_rss_mb", "peak_tflops"]


def peak_tflops(precision: str, environ: Mapping[str, str] | None = None) -> float | None:
    """The accelerator's stated peak for ``precision`` (TFLOP/s), or None."""
    env = os.environ if environ is None else environ
    text = env.get(PEAK_TFLOPS_ENV, "")
    if not text:
        return None
    try:
        table = json.loads(text)
        value = float(table[precision])
    except (ValueError, KeyError, TypeError):
        return None
    return value if value > 0 else None


def mfu(
    flops_per_step: float | None, steps_per_s: float, peak_tflops_per_device: float | None, devices: int
) -> float | None:
    """Model FLOPs utilisation: achieved model FLOP/s over the devices' total peak."""
    if not flops_per_step or not peak_tflops_per_device or steps_per_s <= 0:
        return None
    return flops_per_step * steps_per_s / (peak_tflops_per_device * 1e12 * devices)


def flops_metrics(
    flops_per_step: float | None, steps_per_s: float, precision: str, devices: int
) -> list[WorkloadMetric]:
    """``model_tflops``, and ``mfu`` where the platform states its peak for ``precision``."""
    if flops_per_step is None or not math.isfinite(steps_per_s):
        return []
    found = [WorkloadMetric("model_tflops", flops_per_step * steps_per_s / 1e12, "TFLOP/s", True)]
    utilisation = mfu(flops_per_step, steps_per_s, peak_tflops(precision), devices)
    if utilisation is not None:
        found.append(WorkloadMetric("mfu", utilisation, "ratio", True))
    return found


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process in MiB, or None if unknown.

    Linux: ``VmHWM`` of /proc/self/status. ``ru_maxrss`` is not used there
    because it keeps the pre-exec high-water mark of the launching process.
    Elsewhere: ``resource.getrusage``, then psutil (Windows ``peak_wset``).
    """
    for probe in (_vm_hwm_mb, _rusage_peak_mb, _psutil_peak_mb):
        value = probe()
        if value is not None:
            return value
    return None


def _vm_hwm_mb() -> float | None:
    try:
        text = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    return None


def _rusage_peak_mb() -> float | None:
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bytes_per_unit = 1 if sys.platform == "darwin" else 1024
    return peak * bytes_per_unit / 2**20


def _psutil_peak_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    info = psutil.Process().memory_info()
    return float(getattr(info, "peak_wset", info.rss)) / 2**20
