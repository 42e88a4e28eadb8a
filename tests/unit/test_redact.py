"""What the pattern safety net of redact.py masks, and what it must leave readable."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_hetero.redact import REDACTED, is_secret, redact_env, scrub


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HF_TOKEN", "hf_abcdef"),
        ("HF_AUTH", "zzzz"),
        ("PGPASSWORD", "hunter22"),
        ("DB_PASSWORD", "hunter22"),
        ("AWS_SECRET_ACCESS_KEY", "abc/def"),
        ("SECRET_KEY_BASE", "deadbeef"),
        ("WANDB_API_KEY", "0123abcd"),
    ],
)
def test_secret_looking_names_are_masked(name: str, value: str) -> None:
    assert is_secret(name, value)
    assert redact_env({name: value}) == {name: REDACTED}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TOKENIZERS_PARALLELISM", "false"),  # TOKEN inside a word
        ("KEYBOARD", "us"),
        ("SSH_AUTH_SOCK", "/tmp/agent.sock"),
        ("PASSWORD_FILE", "/run/secrets/db"),  # names the file, is not the secret
        ("HF_HUB_DISABLE_TOKEN", "1"),  # a switch: no secret is "1" or "false"
        ("USE_AUTH", "false"),
    ],
)
def test_names_that_only_look_secret_and_switches_stay_readable(name: str, value: str) -> None:
    assert not is_secret(name, value)
    assert redact_env({name: value}) == {name: value}


def test_assignments_mask_values_but_not_switches() -> None:
    text = "automountServiceAccountToken: false\nHF_TOKEN=hf_123 enable_auth=true token: abcdef ms_per_token: 0.5"
    assert scrub(text) == (
        "automountServiceAccountToken: false\nHF_TOKEN=*** enable_auth=true token: *** ms_per_token: 0.5"
    )


def test_registered_secrets_are_scrubbed_longest_first_with_or_without_more(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_hetero.redact as redact

    monkeypatch.setattr(redact, "_REGISTERED", set())
    monkeypatch.setattr(redact, "_REGISTERED_BY_LENGTH", [])
    redact.register_secret("abcd")
    redact.register_secret("abcdefgh")  # contains the first: masked whole, not as "***efgh"
    redact.register_secret("xyz")  # too short for free text
    assert scrub("pw abcdefgh and abcd, xyz") == f"pw {REDACTED} and {REDACTED}, xyz"
    assert scrub("pw abcdefgh and qrstuvw", ["qrstuvw"]) == f"pw {REDACTED} and {REDACTED}"
    redact.register_secret("abcdefghij")  # registered later: the order follows
    assert scrub("abcdefghij") == REDACTED


def _fresh_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_hetero.redact as redact

    monkeypatch.setattr(redact, "_REGISTERED", set())
    monkeypatch.setattr(redact, "_REGISTERED_BY_LENGTH", [])
    monkeypatch.setattr(redact, "_SHARED", {})


def test_a_shared_part_is_redacted_once_until_a_secret_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_hetero.redact as redact

    _fresh_secrets(monkeypatch)
    owner = object()
    built: list[int] = []

    def build() -> dict[str, object]:
        built.append(1)
        return {"command": ["run", "--db=s3cr3t-value"], "api_key": "abc", "n": 1}

    first = redact.redact_shared("part", (owner,), build)
    assert first == {"command": ["run", "--db=s3cr3t-value"], "api_key": REDACTED, "n": 1}
    second = redact.redact_shared("part", (owner,), build)
    assert second == first and len(built) == 1  # built and redacted once
    assert second is not first and second["command"] is not first["command"]  # each caller's own copy
    redact.register_secret("s3cr3t-value")  # a secret known later is masked in what is built next
    again = redact.redact_shared("part", (owner,), build)
    assert again["command"] == ["run", f"--db={REDACTED}"] and len(built) == 2


def test_shared_parts_are_told_apart_by_part_and_by_owner_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_hetero.redact as redact

    _fresh_secrets(monkeypatch)
    one, other = [1], [1]  # equal, not the same object
    assert redact.redact_shared("a", (one,), lambda: "one") == "one"
    assert redact.redact_shared("a", (other,), lambda: "other") == "other"
    assert redact.redact_shared("b", (one,), lambda: "b of one") == "b of one"
    assert redact.redact_shared("a", (one,), lambda: "rebuilt") == "one"


def test_the_records_of_a_test_redact_their_common_parts_once_and_each_get_a_copy() -> None:
    from pytest_hetero.config.models import Accelerator, BackendConfig, Platform
    from pytest_hetero.fingerprint import fingerprints
    from pytest_hetero.redact import redact_tree
    from pytest_hetero.results import BenchmarkResult, _platform_record, _workload_record
    from pytest_hetero.workload import Workload

    platform = Platform("local", Accelerator("cpu"), BackendConfig("local"))
    workload = Workload(name="w", command=("sh", "-c", "run --password=hunter22"), config={"db_password": "x", "n": 2})
    prints = fingerprints(workload, platform, Path.cwd())  # cases of a test share them (jobs.Shared)
    one = BenchmarkResult("a[local-0]", "t[0]", platform, workload, "", fingerprints=prints)
    two = BenchmarkResult("a[local-1]", "t[1]", platform, workload, "", fingerprints=prints)
    first, second = one.to_record("passed"), two.to_record("passed")
    # What the record always said: the whole of each part through redact_tree.
    assert first["platform"] == redact_tree(_platform_record(platform, one.fingerprints))
    shared = redact_tree(_workload_record(workload, one.fingerprints))
    assert first["workload"] == {**shared, "seeds": [], "reported": {}}
    assert first["workload"]["config"] == {"db_password": REDACTED, "n": 2}
    assert first["workload"]["command"] == ["sh", "-c", f"run --password={REDACTED}"]
    # Each record has its own copy: a result-record hook may change one without touching the next.
    first["workload"]["config"]["n"] = 3
    first["platform"]["tags"].append("changed")
    third = BenchmarkResult("a[local-2]", "t[2]", platform, workload, "", fingerprints=prints).to_record("passed")
    assert second["workload"]["config"] == third["workload"]["config"] == {"db_password": REDACTED, "n": 2}
    assert "changed" not in second["platform"]["tags"] and "changed" not in third["platform"]["tags"]
