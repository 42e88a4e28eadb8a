"""The source files of a workload program, found without running or importing it.

A workload's fingerprint (:mod:`pytest_hetero.fingerprint`) covers its code,
so this module finds that code the way Python would load it, statically:

- ``module=``: the module's file (a package's ``__init__.py``, and its
  ``__main__.py`` for ``python -m package``), the ``__init__.py`` of its parent
  packages, and every module of the *same project* it imports, transitively:
  ``import``/``from … import`` statements anywhere in the file (in functions
  too) and ``"package.module:Class"`` strings naming a project module (the
  lazy registries' form). The project is the module's top-level package; a top-level
  module's project is its directory (never a site-packages directory).
  Nothing is imported, so torch and vendor SDKs are never loaded.
- ``command=``: every argument naming an existing file, relative to the test
  file's directory (the job's working directory) or absolute, except an
  absolute program (the interpreter) and files over :data:`MAX_FILE_BYTES`
  (data, not code); a ``.py`` script's own imports are followed as for a
  top-level module, and ``-m MODULE`` as for ``module=``.

Labels are paths relative to the directory the code was found in (a
``sys.path`` entry, or the test directory), so moving a checkout does not
change them. Files are parsed once per (path, size, mtime).
"""

from __future__ import annotations

import ast
import functools
import os
import stat
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["MAX_FILE_BYTES", "command_files", "find_module", "module_files", "search_roots"]

#: Larger command arguments are data, not program text, and are not fingerprinted.
MAX_FILE_BYTES = 4 * 1024 * 1024
_SITE_DIRS = ("site-packages", "dist-packages")


def find_module(name: str, roots: Sequence[Path]) -> tuple[Path, Path] | None:
    """``(root, file)`` of module ``name`` in the first root that has it; a package gives its ``__init__.py``."""
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    for root in roots:
        base = root.joinpath(*parts)
        for candidate in (base / "__init__.py", base.parent / f"{parts[-1]}.py"):
            if candidate.is_file():
                return root, candidate
    return None


def module_files(name: str, roots: Sequence[Path]) -> dict[str, Path]:
    """Label -> file of module ``name`` and the project modules it imports ({} when not found)."""
    found = find_module(name, roots)
    if found is None:
        return {}
    root, path = found
    top = name.split(".")[0]
    packaged = "." in name or path.name == "__init__.py"
    if not packaged and _is_site_dir(root):
        return {path.name: path}
    follow = _Walk(root, top if packaged else None)
    for end in range(1, name.count(".") + 1):  # the parent packages run first
        follow.add(".".join(name.split(".")[:end]))
    follow.add(name)
    if path.name == "__init__.py":
        follow.add(f"{name}.__main__")  # python -m package
    return follow.run()


def command_files(command: Sequence[str], test_dir: Path) -> dict[str, Path]:
    """Label -> file of the scripts (and their project imports) a ``command=`` names."""
    files: dict[str, Path] = {}
    for index, token in enumerate(command):
        if index > 0 and command[index - 1] == "-m":
            files.update(module_files(token, search_roots(test_dir)))
            continue
        path = _argument_file(token, test_dir, program=index == 0)
        if path is None:
            continue
        files[_label(path, test_dir)] = path
        if path.suffix == ".py" and not _is_site_dir(path.parent):
            walk = _Walk(path.parent, None)
            walk.visit(path)
            files.update({_label(p, test_dir): p for p in walk.run().values()})
    return files


def _argument_file(token: str, test_dir: Path, *, program: bool) -> Path | None:
    """The file ``token`` names (relative to ``test_dir``), if any: one ``stat``, no path objects on the way."""
    if not token or token.startswith("-") or "\n" in token:
        return None
    absolute = os.path.isabs(token)
    if absolute and program:
        return None  # the interpreter or a system tool, not the benchmark's code
    name = token if absolute else os.path.join(test_dir, token)
    try:
        found = os.stat(name)
    except (OSError, ValueError):
        return None
    return Path(name) if stat.S_ISREG(found.st_mode) and found.st_size <= MAX_FILE_BYTES else None


def _label(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def search_roots(test_dir: Path) -> list[Path]:
    """Where ``python -m`` started in ``test_dir`` looks for modules: there first, then ``sys.path``."""
    return [test_dir, *(Path(entry or ".").absolute() for entry in sys.path)]


def _is_site_dir(directory: Path) -> bool:
    """Installed packages or the standard library: never a project's directory."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return any(part in _SITE_DIRS for part in directory.parts) or directory.is_relative_to(stdlib)


class _Walk:
    """Breadth-first over the project's modules reachable from the ones added."""

    def __init__(self, root: Path, top: str | None) -> None:
        self.root, self.top = root, top
        self.files: dict[str, Path] = {}
        self.queue: list[tuple[str, Path]] = []
        self.seen: set[str] = set()

    def add(self, name: str) -> None:
        """Follow module ``name`` if it belongs to the project and exists."""
        if name in self.seen or (self.top is not None and name.split(".")[0] != self.top):
            return
        self.seen.add(name)
        found = find_module(name, [self.root])
        if found is not None:
            self.queue.append((name, found[1]))

    def visit(self, path: Path, name: str = "") -> None:
        self.queue.append((name, path))

    def run(self) -> dict[str, Path]:
        while self.queue:
            name, path = self.queue.pop(0)
            label = _label(path, self.root)
            if label in self.files:
                continue
            self.files[label] = path
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            for target in _imported_names(path, package):
                parts = target.split(".")
                for end in range(1, len(parts) + 1):
                    self.add(".".join(parts[:end]))
        return dict(sorted(self.files.items()))


def _imported_names(path: Path, package: str) -> tuple[str, ...]:
    try:
        stat = path.stat()
    except OSError:
        return ()
    return _parse_imports(path, package, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _parse_imports(path: Path, package: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    """Module names ``path`` imports or names in dotted strings (size and mtime key the cache)."""
    del size, mtime_ns
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return ()
    return tuple(dict.fromkeys(_names(tree, package)))


def _names(tree: ast.AST, package: str) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            if base is None:
                continue
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.count(":") == 1:
            dotted, attribute = node.value.split(":")  # a lazy "package.module:Class" reference
            if attribute.isidentifier() and all(part.isidentifier() for part in dotted.split(".")):
                yield dotted


def _absolute(module: str | None, level: int, package: str) -> str | None:
    """The absolute name of ``from <level dots><module> import``; None when it leaves the package."""
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts) or (level - 1 == len(parts) and not module):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base) or None
