"""The fixtures a benchmark test uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, NoReturn

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


class Case(NamedTuple):
    """What the autouse fixture hands the public ones: the case's platform and result (None: not a benchmark).

    The public fixtures take it instead of ``request``: pytest builds a fixture definition for every
    ``request`` a fixture asks for, each test again (about 10 µs each).
    """

    nodeid: str
    platform: Platform | None
    result: BenchmarkResult | None


@pytest.fixture(autouse=True)
def _hetero_platform(request: pytest.FixtureRequest) -> Case:
    """Runs the item's benchmark before the test body (a case without platform for plain tests)."""
    node = request.node
    bench = node.stash.get(BENCH_KEY, None)
    if bench is None:
        return Case(node.nodeid, None, None)
    session = request.config.stash[SESSION_KEY]
    if session.options.dry_run:  # rendered at collection; the body is not called (pytest_pyfunc_call)
        problem = node.stash.get(RENDER_ERROR_KEY, None)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        # Nothing ran: an empty result, for fixtures that ask for one.
        result = BenchmarkResult(node.nodeid, bench.test_key, bench.platform, bench.declaration.workload, "")
    else:
        result = run_benchmark(session, node, bench)
        node.user_properties.extend(junit_properties(result))
    node.stash[RESULT_KEY] = result
    return Case(node.nodeid, bench.platform, result)


def _not_a_benchmark(case: Case, fixture: str) -> NoReturn:
    pytest.fail(f"{case.nodeid}: the {fixture} fixture needs @pytest.mark.hetero(...) on the test", pytrace=False)


@pytest.fixture
def hetero_platform(_hetero_platform: Case) -> Platform:
    """The platform this case runs on."""
    if _hetero_platform.platform is None:
        _not_a_benchmark(_hetero_platform, "hetero_platform")
    return _hetero_platform.platform


@pytest.fixture
def hetero_result(_hetero_platform: Case) -> BenchmarkResult:
    """The collected, reference-checked result of the test's workload."""
    if _hetero_platform.result is None:
        _not_a_benchmark(_hetero_platform, "hetero_result")
    return _hetero_platform.result


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
