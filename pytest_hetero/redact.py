"""Keep secrets out of reports, logs and scripts.

Secrets are known two ways:

- by design: the catalogue marks a value secret (``{secret: true, value: ...}``) or takes it
  from the submitting environment (``{from_env: NAME}``); the loader registers each such value
  here (:func:`register_secret`), and every value registered is masked wherever it appears,
  whatever the name of the variable that holds it;
- by pattern, as a safety net: environment names with PASSWORD, SECRET or CREDENTIALS as a word, or
  ending in TOKEN, KEY or AUTH, unless the value is a mere switch (``1``, ``false``);
  config keys ending in ``password``, ``token``, ``api_key``, ...; ``KEY=value`` assignments of
  such keys in free text (setup lines, command lines); and passwords in URLs
  (``postgresql://u:pw@host``).

:func:`redact_tree` applies all of it to a JSON-like record, the one edge every output passes
(JSON report, HTML, history, provenance); :func:`scrub` to free text (errors, dry runs).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

__all__ = [
    "REDACTED",
    "is_secret",
    "is_secret_key",
    "is_secret_name",
    "redact_env",
    "redact_shared",
    "redact_tree",
    "redact_urls",
    "register_secret",
    "registered_secrets",
    "scrub",
    "secret_values",
]

REDACTED = "***"
# Secret-looking environment names: PASSWORD, SECRET or CREDENTIALS as a word anywhere (AWS_SECRET_ACCESS_KEY,
# PGPASSWORD), TOKEN, KEY or AUTH at the end (HF_TOKEN, API_KEY, HF_AUTH); not TOKENIZERS_PARALLELISM,
# KEYBOARD or SSH_AUTH_SOCK, and not a path to a secret (PASSWORD_FILE names a file, it is no secret).
_SECRET_WORD = re.compile(r"(?:^|[_.-])(?:PASSWORD|PASSWD|SECRETS?|CREDENTIALS?)(?:$|[_.-])(?!.*(?:FILE|PATH|DIR)$)")
_SECRET_END = re.compile(r"(?:PASSWORD|PASSWD|TOKEN|KEY|AUTH)$")
#: Values no secret takes: switches and flags (HF_HUB_DISABLE_TOKEN=1, automountServiceAccountToken: false).
_FLAGS = frozenset({"", "0", "1", "true", "false", "yes", "no", "on", "off", "none", "null"})
# A key that *ends* in a secret word: db_password, HF_TOKEN, api-key; not max_tokens or test_key.
_WORD = r"(?:password|passwd|secret|token|credentials?|api[_-]?key|access[_-]?key|private[_-]?key|auth)"
_SECRET_KEY = re.compile(rf"^[\w.-]*?{_WORD}$", re.IGNORECASE)
# KEY=value, KEY: value, --key=value, "key": "value" (JSON text inside an env value).
# A plain number is left alone: ``ms_per_token: 0.5`` is a measurement, not a secret.
_ASSIGNMENT = re.compile(
    rf"""(?<![\w-])([\w.-]*?{_WORD}"?\s*[=:]\s*"?)"""
    rf"""(?!(?:[-+]?[\d.]+(?:[eE][-+]?\d+)?|true|false|yes|no|on|off|null|none)(?:[\s"',;&}}]|$))([^\s"',;&}}]+)""",
    re.IGNORECASE,
)
#: Shorter registered values are masked where they are a whole value, not inside free text.
_MIN_SCRUB_LEN = 4
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
#: Text holding none of the secret words cannot hold a secret assignment (a cheap test before _ASSIGNMENT).
_ANY_WORD = re.compile(r"password|passwd|secret|token|credential|key|auth", re.IGNORECASE)

#: Values marked secret in the catalogue or read from the submitting environment by reference.
_REGISTERED: set[str] = set()


#: The registered values long enough to scrub from free text, longest first (no partial leftovers).
_REGISTERED_BY_LENGTH: list[str] = []


def register_secret(value: str) -> None:
    """Mask ``value`` in every output from now on (empty values are ignored)."""
    if value:
        _REGISTERED.add(value)
    _REGISTERED_BY_LENGTH[:] = sorted((v for v in _REGISTERED if len(v) >= _MIN_SCRUB_LEN), key=len, reverse=True)
    _scrub_alone.cache_clear()
    _SHARED.clear()


def registered_secrets() -> frozenset[str]:
    return frozenset(_REGISTERED)


def is_secret_name(name: str) -> bool:
    """Secret-looking environment names: ``DB_PASSWORD``, ``AWS_SECRET_ACCESS_KEY``, ``HF_TOKEN``, ``HF_AUTH``."""
    upper = name.upper()
    return bool(_SECRET_WORD.search(upper) or _SECRET_END.search(upper))


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Config keys ending in a secret word (``password``, ``db_token``, ``api_key``), not ``max_tokens``."""
    return bool(_SECRET_KEY.match(key))


def is_secret(name: str, value: str) -> bool:
    """An environment entry to keep out of outputs: its value registered as secret, or its name secret-looking
    and its value not a mere switch (``HF_HUB_DISABLE_TOKEN=1`` is shown)."""
    return value in _REGISTERED or (is_secret_name(name) and value.strip().lower() not in _FLAGS)


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: REDACTED if is_secret(k, v) else scrub(v) for k, v in env.items()}


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Values worth scrubbing from free text (short ones would erase too much), and the registered ones."""
    return [v for k, v in env.items() if is_secret_name(k) and len(v) >= _MIN_SCRUB_LEN] + sorted(_REGISTERED)


def redact_urls(text: str) -> str:
    """``postgresql://user:pw@host`` → ``postgresql://user:***@host``."""
    return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given and the registered secret values, URL passwords and secret assignments."""
    values = sorted({*secrets, *_REGISTERED}, key=len, reverse=True) if secrets else _REGISTERED_BY_LENGTH
    for value in values:  # longest first: no partial leftovers
        if len(value) >= _MIN_SCRUB_LEN:
            text = text.replace(value, REDACTED)
    if ("=" in text or ":" in text) and _ANY_WORD.search(text):
        text = _ASSIGNMENT.sub(lambda m: m.group(1) + (m.group(2) if m.group(2) == REDACTED else REDACTED), text)
    return redact_urls(text) if "://" in text else text


@functools.lru_cache(maxsize=8192)
def _scrub_alone(text: str) -> str:
    """:func:`scrub` with the registered secrets only; records repeat their strings (emptied on registering)."""
    return scrub(text)


def redact_tree(node: Any, done: frozenset[str] = frozenset()) -> Any:
    """A copy of JSON-like data with every string scrubbed and the values of secret-like keys masked.

    ``done``: keys of a top-level mapping whose values are redacted already (:func:`redact_shared`), kept as they are.
    """
    kind = type(node)
    if kind is str:
        return _scrub_alone(node)
    if kind is dict:
        return _redact_dict(node, done)
    if kind is list:
        return [redact_tree(item) for item in node]
    if isinstance(node, str):
        return _scrub_alone(node)
    if isinstance(node, Mapping):
        return _redact_dict(node)
    if isinstance(node, (list, tuple)):
        return [redact_tree(item) for item in node]
    return node


T = TypeVar("T")

#: Parts that many records share (their platform's, their workload's), redacted once: by part and by
#: the identity of the objects they were built from, which each entry keeps (so no id is reused).
_SHARED: dict[tuple[str, tuple[int, ...]], tuple[tuple[object, ...], Any]] = {}
_SHARED_MAX = 4096


def redact_shared(part: str, owners: tuple[object, ...], build: Callable[[], T]) -> T:
    """``redact_tree(build())``, once for each ``part`` of the same ``owners`` (emptied when a secret is registered).

    For what every case of a test on a platform repeats in its record. ``owners`` are the immutable
    objects ``build`` reads (a platform, a workload, their fingerprints). Each call returns its own
    copy (``pytest_hetero_result_record`` may change a record, nested parts included).
    """
    key = (part, tuple(map(id, owners)))
    found = _SHARED.get(key)
    if found is None or any(kept is not owner for kept, owner in zip(found[0], owners, strict=True)):
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        found = _SHARED[key] = (owners, redact_tree(build()))
    return _copy_json(found[1])  # type: ignore[no-any-return]


def _copy_json(node: Any) -> Any:
    """A copy of JSON-like data: new dicts and lists, the same (immutable) leaves."""
    kind = type(node)
    if kind is dict:
        return {key: _copy_json(value) for key, value in node.items()}
    if kind is list:
        return [_copy_json(item) for item in node]
    return node


def _redact_dict(node: Mapping[Any, Any], done: frozenset[str] = frozenset()) -> dict[Any, Any]:
    """One mapping; the common leaves (records are mostly strings, numbers and switches) handled in line."""
    out: dict[Any, Any] = {}
    for key, value in node.items():
        kind = type(value)
        if value is None or kind is bool or (done and key in done):
            out[key] = value  # a switch or nothing (no secret to mask), or a part redacted already
        elif isinstance(key, str) and is_secret_key(key) and _is_leaf(value):
            out[key] = REDACTED
        elif kind is str:
            out[key] = _scrub_alone(value)
        elif kind is int or kind is float:
            out[key] = value
        else:
            out[key] = redact_tree(value)
    return out


def _is_leaf(value: Any) -> bool:
    return value is not None and not isinstance(value, (Mapping, list, tuple, bool))
