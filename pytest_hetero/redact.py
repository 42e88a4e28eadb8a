"""Keep secrets out of reports and logs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["REDACTED", "is_secret_name", "redact_env", "redact_urls", "scrub", "secret_values"]

REDACTED = "***"
_SECRET = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|KEY|CREDENTIAL", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Environment variable names containing TOKEN, PASSWORD, SECRET, KEY, ..."""
    return bool(_SECRET.search(name))


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: REDACTED if is_secret_name(k) else v for k, v in env.items()}


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Values worth scrubbing from free text (short ones would erase too much)."""
    return [v for k, v in env.items() if is_secret_name(k) and len(v) >= 4]


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def redact_urls(text: str) -> str:
    """``postgresql://user:pw@host`` → ``postgresql://user:***@host``."""
    return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)


def scrub(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        text = text.replace(value, REDACTED)
    return redact_urls(text)
