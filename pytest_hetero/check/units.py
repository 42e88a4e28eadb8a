"""What a metric's unit says about it: whether it depends on the host, and its noise floor.

::

    dimension    units (examples)                 host-bound   default noise floor
    time         s, ms, us, ns, min, h            yes          1 ms
    rate         samples/s, MB/s, TFLOP/s, TFLOPS yes          none
    memory       B, KiB, MiB, GiB, KB, MB, GB     yes          1 MiB
    energy       J, kJ, Wh, kWh, W                yes          none
    fraction     ratio, fraction, %               no           0.005 (0.5 %)
    count        steps, epochs, samples, ...      no           none
    other        "" (a loss), anything else       no           none

A reference may say otherwise for one metric (``host_bound``, ``noise_floor``
in references.yaml): e.g. ``mfu`` is a ratio that does depend on the host.
"""

from __future__ import annotations

__all__ = ["default_noise_floor", "dimension", "is_host_bound"]

_SECONDS = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}
_BYTES = {
    "B": 1.0,
    "bytes": 1.0,
    "KiB": 2.0**10,
    "MiB": 2.0**20,
    "GiB": 2.0**30,
    "kB": 1e3,
    "KB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
}
_ENERGY = frozenset({"J", "kJ", "Wh", "kWh", "W", "kW"})
_FRACTIONS = {"ratio": 1.0, "fraction": 1.0, "%": 100.0}
_RATES = frozenset({"TFLOPS", "GFLOPS", "FLOPS"})
_COUNTS = frozenset({"steps", "epochs", "samples", "count", "iterations", "tokens", "batches"})

#: Host-bound dimensions: their figures change with the machine, not only with the code.
_HOST_BOUND = frozenset({"time", "rate", "memory", "energy"})
_TIME_FLOOR_S = 1e-3
_MEMORY_FLOOR_B = 2.0**20
_FRACTION_FLOOR = 0.005


def dimension(unit: str) -> str:
    """time, rate, memory, energy, fraction, count or other."""
    unit = unit.strip()
    if unit in _SECONDS:
        return "time"
    if "/" in unit or unit in _RATES:
        return "rate"
    if unit in _BYTES:
        return "memory"
    if unit in _ENERGY:
        return "energy"
    if unit in _FRACTIONS:
        return "fraction"
    return "count" if unit in _COUNTS else "other"


def is_host_bound(unit: str, override: bool | None = None) -> bool:
    """Whether a figure in ``unit`` depends on the host it was measured on (``override`` wins)."""
    return override if override is not None else dimension(unit) in _HOST_BOUND


def default_noise_floor(unit: str) -> float:
    """The smallest absolute change (in ``unit``) that may count as a regression; 0 for none."""
    unit = unit.strip()
    kind = dimension(unit)
    if kind == "time":
        return _TIME_FLOOR_S / _SECONDS[unit]
    if kind == "memory":
        return _MEMORY_FLOOR_B / _BYTES[unit]
    if kind == "fraction":
        return _FRACTION_FLOOR * _FRACTIONS[unit]
    return 0.0
