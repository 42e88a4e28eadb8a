"""Hooks pytest-hetero adds; implement them in a conftest.py or a plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_hetero.backends.base import Backend, JobSpec
    from pytest_hetero.config.models import Platform
    from pytest_hetero.results import ResultRecord


def pytest_hetero_register(config: pytest.Config) -> None:
    """Register backends, launchers and accelerator kinds, before the catalogue is loaded.

    Names registered here are valid in platforms.yaml (``backend.kind``,
    ``launcher.kind``, ``accelerator.kind``)::

        # conftest.py, or a plugin installed with a pytest11 entry point
        from pytest_hetero.backends import register_backend
        from pytest_hetero.launchers import register_launcher

        def pytest_hetero_register(config):
            register_backend("flux", "my_flux.backend:FluxBackend", install_hint="pip install my-flux")
            register_launcher("flux-run", FluxRunLauncher)  # a class works too
    """


@pytest.hookspec(firstresult=True)
def pytest_hetero_make_backend(platform: Platform, config: pytest.Config) -> Backend | None:
    """Create the backend for ``platform``; the first non-None result wins.

    The built-in implementation (``trylast``) looks ``platform.backend.kind``
    up in the backend registry. Override it to use a fake in your own tests::

        # conftest.py
        from pytest_hetero.backends.fake import FakeBackend, FakeResult

        def pytest_hetero_make_backend(platform, config):
            if platform.name == "dgx-sim":
                return FakeBackend(platform, handler=lambda spec: FakeResult(metrics={"throughput_sps": 2400.0}))
    """


@pytest.hookspec(firstresult=True)
def pytest_hetero_modify_jobspec(spec: JobSpec, item: pytest.Item) -> JobSpec | None:
    """Return a changed copy of ``spec`` before it is submitted (None keeps it).

    The first non-None result is used::

        # conftest.py
        import dataclasses

        def pytest_hetero_modify_jobspec(spec, item):
            env = {**spec.env, "NCCL_DEBUG": "INFO"}
            return dataclasses.replace(spec, env=env)
    """


def pytest_hetero_result_record(record: ResultRecord, item: pytest.Item) -> None:
    """Add fields to a result record before it is reported (mutate ``record``).

    Runs where the test ran (an xdist worker, too)::

        # conftest.py
        def pytest_hetero_result_record(record, item):
            record.setdefault("extra", {})["ticket"] = "PERF-123"
    """
