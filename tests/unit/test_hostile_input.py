"""Hostile and broken input (issue 14): a clear usage error naming the file and place, never a traceback.

Catalogue and references files that are binary, UTF-16, alias bombs or nested without end;
NaN and infinite numbers; duplicate keys; nonsense marker arguments; deeply nested report JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_hetero.check.references import load_references
from pytest_hetero.config.loader import load_catalogue
from pytest_hetero.config.safe_yaml import load_yaml
from pytest_hetero.config.yaml_bounded import MAX_DEPTH, MAX_EXPANDED_NODES
from pytest_hetero.errors import ConfigError
from pytest_hetero.markers import read_declaration

CATALOGUE = "version: 1\nplatforms:\n  - name: x\n    accelerator: {kind: cpu}\n    backend: {kind: local}\n"
BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", r"x\.yaml:1: platform catalogue must be UTF-8 text: this is a binary"),
        (CATALOGUE.encode("utf-16"), r"x\.yaml: platform catalogue must be UTF-8 text, not UTF-16"),
        (b"version: 1\n# caf\xe9\n", r"x\.yaml:2: platform catalogue must be UTF-8 text: byte 0xe9"),
        (BILLION_LAUGHS.encode(), rf"x\.yaml:\d+:\d+: .*expands to more than {MAX_EXPANDED_NODES} values"),
        (b"[" * 100_000 + b"]" * 100_000, rf"x\.yaml: .*nested deeper than {MAX_DEPTH} levels"),
        (b"a: {" * 5000 + b"}" * 5000, rf"nested deeper than {MAX_DEPTH} levels"),
        (CATALOGUE.encode() + b"version: 2\n", r"x\.yaml:6:1: .*duplicate key 'version' \(first given on line 1\)"),
    ],
    ids=["binary", "utf16", "latin1", "alias-bomb", "deep-flow", "deep-mappings", "duplicate-key"],
)
def test_hostile_catalogue_is_a_clear_error(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=problem):
        load_catalogue(path)


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as stream:
        stream.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(ConfigError, match=r"big\.yaml: platform catalogue: larger than 16 MiB; not read"):
        load_catalogue(path)


def test_alias_bomb_stays_within_bounded_memory(tmp_path: Path) -> None:
    """In a child limited to 1 GiB of address space the bomb is refused (unbounded, it needs ~10^9 values)."""
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    code = (
        "import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from pathlib import Path\nfrom pytest_hetero.config.safe_yaml import load_yaml\nfrom pytest_hetero.errors "
        "import ConfigError\ntry:\n    load_yaml(Path(sys.argv[1]), 'catalogue')\nexcept ConfigError as e:\n"
        "    print('refused:', e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "expands to more than" in done.stdout


def test_anchors_and_merge_keys_within_bounds_still_load(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {k: 1}\none: {<<: *b, k: 2}\ntwo: *b\n")
    assert load_yaml(path, "catalogue") == {"base": {"k": 1}, "one": {"k": 2}, "two": {"k": 1}}


def test_absurd_time_limit_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "platforms.yaml"
    path.write_text(CATALOGUE + "    resources: {time_limit_min: 1.0e+300}\n")
    with pytest.raises(ConfigError, match=r"\$\.platforms\[0\]\.resources\.time_limit_min: 1e\+300 is greater than"):
        load_catalogue(path)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_time_limit_is_refused_with_its_path(tmp_path: Path, value: str) -> None:
    path = tmp_path / "platforms.yaml"
    path.write_text(CATALOGUE + f"    resources: {{time_limit_min: {value}}}\n")
    with pytest.raises(ConfigError, match=r"\$\.platforms\[0\]\.resources\.time_limit_min: .* is not a finite number"):
        load_catalogue(path)


def test_nan_reference_is_refused_when_loading(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text("version: 1\nreferences:\n  test_x:\n    local:\n      throughput_sps: [.nan, -0.1, 0.1]\n")
    with pytest.raises(ConfigError, match=r"\$\.references\.test_x\.local\.throughput_sps\[0\]: nan is not a finite"):
        load_references(path)


def test_duplicate_reference_key_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "references.yaml"
    path.write_text(
        "version: 1\nreferences:\n  test_x:\n    local:\n      throughput_sps: [100, -0.1, 0.1]\n"
        "      throughput_sps: [200, -0.1, 0.1]\n"
    )
    with pytest.raises(ConfigError, match=r"yaml:6:7: .*duplicate key 'throughput_sps' \(first .* line 5\)"):
        load_references(path)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"timeout_min": float("nan")}, "timeout_min=nan: expected a number > 0 and <= 1e\\+06"),
        ({"timeout_min": -1}, "timeout_min=-1: expected a number > 0 and <= 1e\\+06"),
        ({"timeout_min": float("inf")}, "timeout_min=inf: expected a number > 0 and <= 1e\\+06"),
        ({"timeout_min": 1e300}, "timeout_min=1e\\+300: expected a number > 0 and <= 1e\\+06"),
        ({"min_memory_gb": True}, "min_memory_gb=True: expected a number > 0 and <= 1e\\+06"),
        ({"min_accelerators": -2}, "min_accelerators=-2: expected a whole number >= 0"),
        ({"config": {"when": object()}}, r"config\['when'\] = <object object at .*>: not JSON data"),
        ({"config": {"lr": float("nan")}}, r"config\['lr'\] = nan: not JSON data"),
        ({"config": {"p": Path("/x")}}, r"config\['p'\] = PosixPath\('/x'\): not JSON data"),
    ],
)
def test_marker_nonsense_is_a_usage_error(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=rf"t\.py::t: @pytest\.mark\.hetero {problem}"):
        read_declaration({"command": ["true"], **kwargs}, "t.py::t")


def test_huge_repeat_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--hetero-repeat=99999999999999999999")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hetero-repeat '99999999999999999999': expected a whole number from 1 to 1000*"])


def test_hostile_catalogue_in_a_run_is_a_usage_error_and_runs_nothing(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", platforms=BILLION_LAUGHS)
    pytester.makepyfile(
        test_b="import pytest\n@pytest.mark.hetero(command=['touch', 'ran'])\ndef test_b(hetero_result): pass\n"
    )
    result = pytester.runpytest("--platforms-file=platforms.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *platforms.yaml:*: platform catalogue: not valid YAML: expands to more*"])
    assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / "ran").exists()


@pytest.mark.parametrize("command", ["report", "compare", "history"])
def test_cli_on_deeply_nested_json_is_a_usage_error(tmp_path: Path, command: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"results": ' + "[" * 200_000 + "]" * 200_000 + "}")
    shallow = tmp_path / "shallow.json"
    nested: object = 1
    for _ in range(70):  # past the bound, well within Python's recursion limit
        nested = [nested]
    shallow.write_text(json.dumps({"results": nested}))
    args = {
        "report": [str(path)],
        "compare": [str(path), str(path)],
        "history": [str(tmp_path / "h.db"), "--add", str(path)],
    }[command]
    for target in (path, shallow):
        args = [str(target) if a == str(path) else a for a in args]
        done = subprocess.run(
            [sys.executable, "-m", "pytest_hetero.cli", command, *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 4, done.stderr
        assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr
        assert f"{target.name}: cannot read the report: JSON nested" in done.stderr


def test_nan_metric_without_reference_fails_the_case(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".py", work='print(\':::HETERO_METRICS {"metrics": [{"name": "throughput_sps", "value": NaN}]}\')\n'
    )
    pytester.makepyfile(
        test_b="import pytest\n@pytest.mark.hetero(command=['python', 'work.py'])\ndef test_b(hetero_result): pass\n"
    )
    result = pytester.runpytest("--hetero-json=report.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*collect: *stdout.log:1: metrics[[]0[]]: metric 'throughput_sps' has the non-finite*"]
    )
    record = json.loads((pytester.path / "report.json").read_text())["results"][0]
    assert record["error"]["stage"] == "collect"


def test_non_json_parametrize_value_swept_into_the_config_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_b="import pytest\nfrom pathlib import Path\n"
        "@pytest.mark.parametrize('data', [Path('/x')])\n"
        "@pytest.mark.hetero(command=['touch', 'ran'], params=['data'])\n"
        "def test_b(hetero_result, data): pass\n"
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_b.py::test_b*config[[]'data'[]] = PosixPath('/x'): not JSON data*"])
    assert not (pytester.path / "ran").exists()
