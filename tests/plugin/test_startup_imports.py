"""Issue 15: a run loads the optional libraries only when it uses them.

A trivial benchmark on the built-in local platform (no catalogue file, no
references, no history, no cost model, no reference update) must not import
PyYAML, jsonschema, ruamel.yaml, filelock, sqlite3, the Slurm and Kubernetes
backends, the cost model, the history store or the regression gate; a run that
reads a references file loads PyYAML then, and one that keeps history its store.
Run in a subprocess: the test process itself has imported all of them.
"""

from __future__ import annotations

import pytest

TRIVIAL = """
import pytest

@pytest.mark.hetero(command=["sh", "-c", 'echo \\':::HETERO_METRICS {"metrics": [{"name": "x_per_s", "value": 1}]}\\''])
def test_trivial(hetero_result):
    assert hetero_result.metric("x_per_s") == 1
"""

REPORT_MODULES = """
import sys

def pytest_unconfigure(config):
    loaded = sorted(name for name in sys.modules)
    (config.rootpath / "modules.txt").write_text("\\n".join(loaded))
"""

OPTIONAL = (
    "yaml",
    "jsonschema",
    "ruamel.yaml",
    "filelock",
    "sqlite3",
    "submitit",
    "kubernetes",
    "pytest_hetero.backends.slurm",
    "pytest_hetero.backends.kubernetes",
    "pytest_hetero.history.sql",
    "pytest_hetero.decide.costs",
    "pytest_hetero.check.reference_update",
    "pytest_hetero.history",
    "pytest_hetero.check.gate",
    "pytest_hetero.check.statistics",
)


def _loaded(pytester: pytest.Pytester, *args: str) -> set[str]:
    pytester.makepyfile(test_trivial=TRIVIAL)
    pytester.makeconftest(REPORT_MODULES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == 0, result.stdout.str()
    return set((pytester.path / "modules.txt").read_text().split())


def test_a_trivial_local_run_imports_no_optional_library(pytester: pytest.Pytester) -> None:
    loaded = _loaded(pytester)
    assert "pytest_hetero.backends.local" in loaded  # the check would pass on a run that did nothing
    assert sorted(name for name in OPTIONAL if name in loaded) == []


def test_a_references_file_loads_the_yaml_parser(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        references="version: 1\nreferences:\n  test_trivial.py::test_trivial:\n"
        '    "*": {x_per_s: {value: 1, lower: -0.5, upper: null}}\n',
    )
    loaded = _loaded(pytester)
    assert "yaml" in loaded
    assert "jsonschema" in loaded  # the references file is validated against its schema


def test_a_history_store_loads_the_history_modules(pytester: pytest.Pytester) -> None:
    loaded = _loaded(pytester, f"--hetero-history={pytester.path / 'history.sqlite'}")
    assert {"pytest_hetero.history", "pytest_hetero.history.sql", "sqlite3"} <= loaded
    assert (pytester.path / "history.sqlite").is_file()
