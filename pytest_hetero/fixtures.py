"""The fixtures a benchmark test uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import pytest

from pytest_hetero.config.models import Platform
from pytest_hetero.dry_run import RENDER_ERROR_KEY
from pytest_hetero.jobs import Benchmark
from pytest_hetero.markers import Declaration
from pytest_hetero.reporting.junit import junit_properties
from pytest_hetero.results import BenchmarkResult
from pytest_hetero.session import BENCH_KEY, RESULT_KEY, SESSION_KEY
from pytest_hetero.stages import run_benchmark
from pytest_hetero.workload import Workload

__all__ = ["_hetero_platform", "hetero_platform", "hetero_result", "hetero_run"]


@pytest.fixture(autouse=True)
def _hetero_platform(request: pytest.FixtureRequest) -> Platform | None:
    """Runs the item's benchmark before the test body (None for plain tests)."""
    bench = request.node.stash.get(BENCH_KEY, None)
    if bench is None:
        return None
    session = request.config.stash[SESSION_KEY]
    if session.options.dry_run:  # rendered at collection; the body is not called (pytest_pyfunc_call)
        problem = request.node.stash.get(RENDER_ERROR_KEY, None)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        # Nothing ran: an empty result, for fixtures that ask for one.
        request.node.stash[RESULT_KEY] = BenchmarkResult(
            request.node.nodeid, bench.test_key, bench.platform, bench.declaration.workload, ""
        )
        dry_platform: Platform = bench.platform
        return dry_platform
    result = run_benchmark(session, request.node, bench)
    request.node.stash[RESULT_KEY] = result
    request.node.user_properties.extend(junit_properties(result))
    platform: Platform = bench.platform
    return platform


def _not_a_benchmark(request: pytest.FixtureRequest, fixture: str) -> NoReturn:
    pytest.fail(
        f"{request.node.nodeid}: the {fixture} fixture needs @pytest.mark.hetero(...) on the test", pytrace=False
    )


@pytest.fixture
def hetero_platform(request: pytest.FixtureRequest, _hetero_platform: Platform | None) -> Platform:
    """The platform this case runs on."""
    if _hetero_platform is None:
        _not_a_benchmark(request, "hetero_platform")
    return _hetero_platform


@pytest.fixture
def hetero_result(request: pytest.FixtureRequest, _hetero_platform: Platform | None) -> BenchmarkResult:
    """The collected, reference-checked result of the test's workload."""
    if _hetero_platform is None:
        _not_a_benchmark(request, "hetero_result")
    result: BenchmarkResult = request.node.stash[RESULT_KEY]
    return result


@pytest.fixture
def hetero_run(request: pytest.FixtureRequest) -> Callable[..., BenchmarkResult]:
    """Run another workload from inside the test body, on this case's platform.

    The escape hatch for special cases; it is not submitted ahead::

        def test_two_phases(hetero_run):
            warm = hetero_run("resnet50", {"train_steps": 2})
            assert warm.error is None
    """
    session = request.config.stash[SESSION_KEY]
    bench: Benchmark | None = request.node.stash.get(BENCH_KEY, None)
    platform = bench.platform if bench else session.catalogue.get("local")
    counter = iter(range(1, 1000))

    def run(workload: str | Workload, config: Mapping[str, Any] | None = None) -> BenchmarkResult:
        spec = workload if isinstance(workload, Workload) else Workload.builtin(workload, config)
        sub = Benchmark(
            declaration=Declaration(workload=spec),
            platform=platform,
            test_key=f"{request.node.path.name}::{request.node.name}#{next(counter)}",
            references_path=request.node.path.parent / "references.yaml",
        )
        return run_benchmark(session, request.node, sub, track=False)

    return run
