"""pytest-hetero: ML benchmarks as parametrised pytest tests across accelerators.

This module stays import-light (stdlib only): workload programs import
``pytest_hetero.workloads`` inside vendor containers that have no pytest.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
