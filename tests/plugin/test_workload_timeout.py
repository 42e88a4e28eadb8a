"""A workload that runs past the test's timeout_min is reported as a timeout, not as a crash or an OOM kill."""

from __future__ import annotations

import json

import pytest

TESTS = """
import pytest

POLITE = "import time; time.sleep(60)"
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"

@pytest.mark.hetero(command=["python", "-c", POLITE], timeout_min=0.03)
def test_polite():
    pass

@pytest.mark.hetero(command=["python", "-c", STUBBORN], timeout_min=0.03)
def test_stubborn():
    pass

@pytest.mark.hetero(command=["python", "-c", "import sys; sys.exit(124)"], timeout_min=5)
def test_exits_124_early():
    pass
"""


def test_a_workload_past_its_timeout_min_is_a_timeout(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_t=TESTS)
    result = pytester.runpytest_subprocess("--hetero-json=o.json", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    errors = {
        r["test"].rsplit("::", 1)[-1]: r["error"] for r in json.loads((pytester.path / "o.json").read_text())["results"]
    }
    for test in ("test_polite", "test_stubborn"):  # 1.8 s, stopped by SIGTERM or, ignoring it, SIGKILL
        assert errors[test]["stage"] == "wait", errors[test]
        assert "ran past the test's timeout_min (2 s)" in errors[test]["message"], errors[test]
        assert "out of memory" not in errors[test]["message"]
    # Its own exit 124 long before the bound is the workload's, not a timeout.
    assert "exited with status 124" in errors["test_exits_124_early"]["message"]
