"""Workload programs (stdlib + torch only, so they run in stock vendor images).

``BUILTIN`` maps a workload name, as used in ``@pytest.mark.hetero(workload=...)``,
to the module that ``python -m`` starts.
"""

from __future__ import annotations

BUILTIN: dict[str, str] = {
    "resnet50": "pytest_hetero.workloads.resnet50",
    "cosmoflow": "pytest_hetero.workloads.cosmoflow",
    "deepcam": "pytest_hetero.workloads.deepcam",
    "unet3d": "pytest_hetero.workloads.unet3d",
}

__all__ = ["BUILTIN"]
