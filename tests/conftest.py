"""Shared fixtures of pytest-hetero's own test suite."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

#: A trivial workload: prints the metrics given in its config, optionally after sleeping.
TRIVIAL_WORKLOAD = textwrap.dedent(
    """
    import json, os, sys, time
    config = json.loads(os.environ.get("HETERO_WORKLOAD_CONFIG", "{}"))
    time.sleep(config.get("sleep_s", 0))
    print("starting on", os.environ.get("HETERO_PLATFORM"))
    if config.get("exit_code"):
        print("boom: simulated crash", file=sys.stderr)
        sys.exit(config["exit_code"])
    metrics = [{"name": k, "value": v, "unit": "samples/s", "higher_is_better": True}
               for k, v in config.get("metrics", {"throughput_sps": 100.0}).items()]
    print(":::HETERO_METRICS " + json.dumps({"metrics": metrics, "workload": "trivial"}))
    """
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hetero-live-kubernetes",
        action="store_true",
        default=False,
        help="run tests/backends/test_k8s_live.py against the cluster KUBECONFIG names (default: skip)",
    )


@pytest.fixture
def bench_dir(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir with the trivial workload as ``work.py``."""
    pytester.makefile(".py", work=TRIVIAL_WORKLOAD)
    pytester.makeini("[pytest]\njunit_family = xunit1\n")
    return pytester
