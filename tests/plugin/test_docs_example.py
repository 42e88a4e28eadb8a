"""The 'write your own workload' page: its example is run here, and the page shows it verbatim."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "examples"


def test_page_shows_the_example_files_verbatim() -> None:
    page = (DOCS / "write-a-workload.md").read_text()
    for name in ("matmul_workload.py", "test_matmul.py", "references.yaml"):
        assert (EXAMPLES / name).read_text().strip() in page, f"docs/write-a-workload.md is out of date with {name}"


def test_the_example_runs_and_reports(pytester: pytest.Pytester) -> None:
    for path in EXAMPLES.iterdir():
        shutil.copy(path, pytester.path / path.name)
    result = pytester.runpytest("--hetero-json=report.json", "--hetero-require-references")
    result.assert_outcomes(passed=1)
    record = json.loads((pytester.path / "report.json").read_text())["results"][0]
    assert record["metrics"]["gflops"]["unit"] == "GFLOP/s"
    assert [v["verdict"] for v in record["verdicts"] if v["metric"] == "gflops"] == ["pass"]
