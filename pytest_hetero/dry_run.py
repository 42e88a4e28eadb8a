"""``--hetero-dry-run``: what would be submitted, and nothing else.

At the end of collection every case that would run is rendered (the batch
script, the manifest, the command line) under its node id; the cases skipped
as incompatible with their platform are listed once, with the reason, in a
summary instead. Then each rendered case *passes* without its body running
(nothing was submitted, so there is nothing to assert on), a case whose job
cannot be rendered *fails* with the reason, and incompatible cases are
*skipped* as in a real run.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_hetero.errors import HeteroError
from pytest_hetero.jobs import TimeLimits
from pytest_hetero.redact import scrub
from pytest_hetero.session import BENCH_KEY, HeteroSession

__all__ = ["RENDER_ERROR_KEY", "render_dry_run", "skip_reason"]

#: Why a case's job could not be rendered; its test fails with it.
RENDER_ERROR_KEY = pytest.StashKey[str]()


def skip_reason(item: pytest.Item) -> str | None:
    """The reason of a ``skip`` mark (incompatible platform, or the user's), if the item has one."""
    mark = item.get_closest_marker("skip")
    if mark is None:
        return None
    return str(mark.kwargs.get("reason") or (mark.args[0] if mark.args else "skipped"))


def render_dry_run(session: pytest.Session, hetero: HeteroSession) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    not_rendered: list[tuple[str, str]] = []
    for item in session.items:
        bench = item.stash.get(BENCH_KEY, None)
        if bench is None:
            continue
        reason = skip_reason(item)
        if reason is not None:
            not_rendered.append((item.nodeid, reason))
            continue
        try:
            text = TimeLimits.of(bench).describe() + "\n" + hetero.dry_run_text(item, bench)
        except HeteroError as exc:
            item.stash[RENDER_ERROR_KEY] = f"--hetero-dry-run: cannot render the job: {exc}"
            text = f"cannot render: {exc}"
        _write(reporter, f"dry run: {item.nodeid}", scrub(text))  # renderers hide secrets; this is the net
    if not_rendered:
        lines = [f"{nodeid}: {reason}" for nodeid, reason in not_rendered]
        _write(reporter, f"dry run: {len(not_rendered)} case(s) not rendered (skipped)", "\n".join(lines))


def _write(reporter: Any, title: str, text: str) -> None:
    if reporter is not None:
        reporter.write_sep("-", title)
        reporter.write_line(text)
