"""Workload programs (stdlib + torch only, so they run in stock vendor images).

``BUILTIN`` maps a workload name, as used in ``@pytest.mark.hetero(workload=...)``,
to the module that ``python -m`` starts.
"""

from __future__ import annotations

BUILTIN: dict[str, str] = {
    "resnet50": "pytest_hetero.workloads.resnet50",
}

__all__ = ["BUILTIN"]
