"""What the pattern safety net of redact.py masks, and what it must leave readable."""

from __future__ import annotations

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
