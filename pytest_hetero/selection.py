"""Which platforms a run uses: ``--platform`` selectors against the catalogue.

A selector is, in this order of precedence:

=====================  ========================================================
``NAME`` or a glob     platforms whose name matches (``a100-*``, ``cerebras-cs2``)
``tag:TAG``            platforms carrying the tag
``kind:KIND``          platforms whose accelerator is of that kind
``TAG`` / ``KIND``     when no name matches: platforms with that tag or of that
                       accelerator kind (``--platform cerebras`` picks every
                       platform whose accelerator is a Cerebras system)
``all``                every platform of the file
=====================  ========================================================

Selectors repeat and take comma lists; the default is ``local``. Tags, kinds
and ``all`` cover the file's platforms; the built-in ``local`` only by name
(or when no file is loaded). A selector that matches nothing is a usage error
naming the closest names, tags and kinds.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable

from pytest_hetero.config.models import Catalogue, Platform
from pytest_hetero.errors import ConfigError, UnknownPlatformError

__all__ = ["select_platforms"]


def select_platforms(catalogue: Catalogue, selectors: Iterable[str]) -> list[Platform]:
    """Platforms matching any selector, in catalogue order; default ``local``."""
    wanted = list(selectors) or ["local"]
    chosen: set[str] = set()
    for selector in wanted:
        matches = _matches(catalogue, selector)
        if not matches:
            raise UnknownPlatformError(_unknown(catalogue, selector))
        chosen.update(matches)
    platforms = [p for p in catalogue.platforms if p.name in chosen]
    for platform in platforms:
        _check_resolved(platform)
    return platforms


def _check_resolved(platform: Platform) -> None:
    """A selected platform's ``from_env`` references must be set: a usage error before anything runs."""
    missing = platform.environment.missing
    if missing:
        unset = ", ".join(f"environment.env.{name}: from_env {var}" for name, var in sorted(missing.items()))
        raise ConfigError(
            f"{platform.source}: platform {platform.name!r}: {unset}: not set in the submitting environment; "
            "export it before running pytest, or do not select this platform"
        )


def _own(catalogue: Catalogue) -> list[Platform]:
    """The file's platforms: the built-in 'local' is selected only by name, or when there is no file."""
    return [p for p in catalogue.platforms if p.source == catalogue.source]


def _matches(catalogue: Catalogue, selector: str) -> list[str]:
    own = _own(catalogue)
    if selector == "all":
        return [p.name for p in own]
    if selector.startswith("tag:"):
        return [p.name for p in own if selector[4:] in p.tags]
    if selector.startswith("kind:"):
        return [p.name for p in own if p.accelerator.kind == selector[5:]]
    by_name = [name for name in catalogue.names() if fnmatch.fnmatchcase(name, selector)]
    if by_name:
        return by_name
    return [p.name for p in own if selector in p.tags or selector == p.accelerator.kind]


def _unknown(catalogue: Catalogue, selector: str) -> str:
    own = _own(catalogue)
    tags = sorted({tag for p in own for tag in p.tags})
    kinds = sorted({p.accelerator.kind for p in own})
    bare = selector.split(":", 1)[-1]
    candidates = [*catalogue.names(), *tags, *kinds]
    close = list(dict.fromkeys(difflib.get_close_matches(bare, candidates, n=4, cutoff=0.5)))
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"--platform {selector!r} matches no platform in {catalogue.source}{hint} "
        f"(known platforms: {', '.join(catalogue.names())}; tags: {', '.join(tags) or '-'}; "
        f"accelerator kinds: {', '.join(kinds) or '-'})"
    )
