"""Where a command-line subcommand's text goes: standard output, or a file (``-o``)."""

from __future__ import annotations

import sys
from pathlib import Path

from pytest_hetero.errors import ConfigError

__all__ = ["emit"]


def emit(text: str, output: Path | None) -> None:
    """Write ``text`` to ``output`` (its directory made), or to stdout when None; a failed write is a ConfigError."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}") from exc
