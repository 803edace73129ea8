"""The project modules a stage runs: the static import closure of its entry modules.

Every ``import`` statement of a project module counts, wherever it stands (top level, inside a
function, under ``TYPE_CHECKING``): a lazy import is still code the stage may run. Importing
``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``, so those count too. Two imports are
not statements and are added by rule: ``components.families`` imports every family descriptor it
discovers (``components/families/*/family.py``), and a family's training code is imported by name
(``Family.task_module``), which the stage lists among its entry modules (tools/dvc_yaml.py).

A family's own stages follow only their own descriptor through discovery (``closure``'s
``descriptors``): the other families' descriptors are imported to validate params.yaml as a whole,
so they can refuse it but cannot change what this family's stage computes. That is the rule the
stage's params already follow (its own family's keys, though every section is validated), and it
keeps an edit to one family's config from rerunning every other family's stages. A descriptor that
a stage's code imports by a statement is followed as any module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("components", "pipelines")  # what a stage's code is made of (tests/ and bench/ are not)
DISCOVERED = {"components.families": "components/families/*/family.py"}  # imports made by discovery


def module_path(name: str, root: Path = REPO) -> Path | None:
    """The file of project module ``name`` (a package's ``__init__.py``), or None."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def statement_imports(name: str, root: Path = REPO) -> frozenset[str]:
    """The project modules module ``name`` imports by a statement (every import statement in the file)."""
    path = module_path(name, root)
    if path is None:
        return frozenset()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .a import b
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # from pkg import submodule
    return frozenset(m for m in found if m.split(".")[0] in PROJECT_PACKAGES and module_path(m, root))


@cache
def discovered(name: str, root: Path = REPO) -> tuple[str, ...]:
    """The modules ``name`` imports by discovery (``DISCOVERED``), sorted: none for most modules."""
    return tuple(_module_name(path, root) for pattern in [p for mod, p in DISCOVERED.items() if mod == name]
                 for path in sorted(root.glob(pattern)))


def closure(entries: Iterable[str], root: Path = REPO, descriptors: Iterable[str] | None = None) -> set[str]:
    """Every project module that importing (and running) ``entries`` may execute, with the
    packages above each one. ``descriptors``: of the modules imported by discovery, the ones to
    follow (None: all of them; a family's stages pass their own family's)."""
    follow = None if descriptors is None else set(descriptors)
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen or module_path(name, root) is None:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages' __init__
        todo.extend(statement_imports(name, root))
        todo.extend(m for m in discovered(name, root) if follow is None or m in follow)
    return seen


def closure_files(entries: Iterable[str], root: Path = REPO, descriptors: Iterable[str] | None = None) -> set[str]:
    """:func:`closure` as repository-relative file paths."""
    return {module_path(name, root).relative_to(root).as_posix() for name in closure(entries, root, descriptors)}


def compress(files: set[str], root: Path = REPO) -> list[str]:
    """``files`` with every folder whose Python files are all listed (at every depth) replaced by
    the folder: what a dvc.yaml ``deps`` list names. Sorted."""
    out = set(files)
    folders = sorted({str(Path(f).parent) for f in files}, key=lambda d: d.count("/"))
    for folder in folders:
        members = {p.relative_to(root).as_posix() for p in (root / folder).rglob("*.py")
                   if "__pycache__" not in p.parts}
        if members and members <= files:
            out = {f for f in out if not f.startswith(folder + "/")} | {folder}
    # a folder inside a listed folder is covered already
    return sorted(f for f in out if not any(f.startswith(d + "/") for d in out if d != f))


def covered(path: str, deps: Iterable[str]) -> bool:
    """Whether a dvc.yaml ``deps`` list covers ``path`` (the path itself or a folder above it)."""
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)
