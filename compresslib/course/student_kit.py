"""The student kit: what students receive instead of this repository.

``python -m compresslib.course student-kit --out DIR [--unlock ASSIGNMENT ...]`` writes::

    DIR/notebooks/<assignment>/<assignment>.ipynb   the releases (solutions and hidden tests stripped by nbgrader)
    DIR/compresslib/                                 the library without the answer key (see below)
    DIR/pyproject.toml, DIR/requirements.txt         to install it offline-friendly
    DIR/...                                          the student's README, Makefile and Jupyter settings
                                                     (copied from ``student_kit_template/``)
    DIR/KIT.json                                     what was locked and unlocked, and from which commit

The library keeps all the plumbing the notebooks import (data, models, training loops, plots, the
capture harnesses the grader runs) but

* ships no ``compresslib/grading`` (fixtures, judges, recorders), ``compresslib/runs`` or
  ``compresslib/course``;
* replaces the body of every function marked ``@reference_answer(<assignment>)`` by
  ``raise LockedAnswer(...)`` naming the notebook where the student writes it, unless every
  assignment it answers is unlocked (``--unlock``: the deadline has passed).

Grading uses the same builder: the sandbox that grades assignment A sees a kit with A and every later
assignment locked and the earlier ones unlocked (:func:`grading_kit`).
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from compresslib.course.notebooks import assignments, release_path

EXCLUDED_PACKAGES = ("grading", "runs", "course")
TEMPLATE = Path(__file__).parent / "student_kit_template"
LOCK_DECORATOR = "reference_answer"


class KitError(ValueError):
    """A student kit cannot be built as asked (an unknown assignment, a missing release)."""


def locked_message(qualname: str, assignments_: list[str]) -> str:
    where = " and ".join(assignments_)
    return (f"{qualname} is what you write in notebook {where}: the library's version is locked in the student kit "
            "until that assignment's deadline")


def _lock_marks(node: ast.AST) -> list[str] | None:
    """The assignments of a ``@reference_answer(...)`` decorator on ``node``, or None."""
    for decorator in getattr(node, "decorator_list", []):
        if isinstance(decorator, ast.Call):
            name = decorator.func.attr if isinstance(decorator.func, ast.Attribute) else getattr(decorator.func, "id", "")
            if name == LOCK_DECORATOR:
                return [arg.value for arg in decorator.args if isinstance(arg, ast.Constant)]
    return None


def reference_functions(source: str, tree: ast.AST | None = None) -> list[tuple[str, list[str], ast.FunctionDef]]:
    """``(qualified name, assignments, node)`` of every marked function (methods included) in a module
    (``tree``: the module already parsed)."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                marks = _lock_marks(child)
                if marks is not None:
                    found.append((prefix + child.name, marks, child))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")

    visit(tree if tree is not None else ast.parse(source), "")
    return found


def lock_source(source: str, locked: set[str]) -> tuple[str, list[str]]:
    """``source`` with the body of each marked function answering a ``locked`` assignment replaced by
    ``raise LockedAnswer(...)`` (its docstring kept). Returns the new source and the locked names."""
    lines = source.splitlines(keepends=True)
    names = []
    edits = []
    for qualname, marks, node in reference_functions(source):
        if not set(marks) & locked:
            continue
        body = node.body
        keep_docstring = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str)
        first = body[1] if keep_docstring and len(body) > 1 else (None if keep_docstring else body[0])
        indent = " " * (body[0].col_offset)
        message = locked_message(qualname, sorted(set(marks) & locked))
        replacement = f"{indent}from compresslib.answers import LockedAnswer\n\n{indent}raise LockedAnswer({message!r})\n"
        start = (first.lineno - 1) if first is not None else node.end_lineno
        edits.append((start, node.end_lineno, replacement))
        names.append(qualname)
    for start, end, replacement in sorted(edits, reverse=True):
        lines[start:end] = [replacement]
    text = "".join(lines)
    ast.parse(text)  # the locked module must still be valid Python
    return text, names


def _library_files(root: Path) -> Iterable[Path]:
    package = root / "compresslib"
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        if relative.parts and relative.parts[0] in EXCLUDED_PACKAGES:
            continue
        if "__pycache__" in relative.parts or path.suffix in (".pyc",) or path.is_dir():
            continue
        yield path


def _kit_pyproject(root: Path) -> str:
    """The repository's pyproject without the package data of the (absent) grading package."""
    text = (root / "pyproject.toml").read_text()
    kept, skipping = [], False
    for line in text.splitlines():
        if line.strip() == "[tool.setuptools.package-data]":
            skipping = True
            continue
        if skipping and line.startswith("["):
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


def _commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_library(root: Path, out: Path, locked: set[str]) -> list[str]:
    """Copy compresslib into ``out/compresslib`` with the answers of ``locked`` assignments locked."""
    locked_names = []
    for path in _library_files(root):
        target = out / "compresslib" / path.relative_to(root / "compresslib")
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py":
            text, names = lock_source(path.read_text(), locked)
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            locked_names += [f"{module}.{name}" for name in names]
            target.write_text(text)
        else:
            shutil.copy2(path, target)
    return locked_names


def build_student_kit(root: Path, out: Path, unlock: Iterable[str] = (), *, with_notebooks: bool = True,
                      with_template: bool = True) -> Path:
    """Write the student kit of the course at ``root`` into ``out`` (emptied first). Raises KitError for
    an unknown assignment in ``unlock`` or a missing release, before writing anything."""
    root, out = Path(root).resolve(), Path(out).resolve()
    names = assignments(root)
    unlock = list(dict.fromkeys(unlock))
    unknown = [a for a in unlock if a not in names]
    if unknown:
        raise KitError(f"cannot unlock {unknown}: the assignments are {names}")
    if with_notebooks:
        missing = [a for a in names if not release_path(root, a).exists()]
        if missing:
            raise KitError(f"no release for {missing}: run `make release` (nbgrader generate_assignment) first")
    if out == root or root in out.parents and out.parent == root:
        raise KitError(f"refusing to write the kit over the course directory itself: {out}")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    locked = set(names) - set(unlock)
    locked_names = write_library(root, out, locked)
    (out / "pyproject.toml").write_text(_kit_pyproject(root))
    shutil.copy2(root / "requirements.txt", out / "requirements.txt")
    if with_notebooks:
        for assignment in names:
            target = out / "notebooks" / assignment / f"{assignment}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(release_path(root, assignment), target)
    if with_template and TEMPLATE.is_dir():
        shutil.copytree(TEMPLATE, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = {"built": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": _commit(root), "assignments": names,
                "unlocked": sorted(unlock), "locked": sorted(locked), "locked_functions": sorted(locked_names)}
    (out / "KIT.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def grading_unlocks(root: Path, assignment: str) -> list[str]:
    """The assignments unlocked in the sandbox that grades ``assignment``: those before it."""
    names = assignments(root)
    if assignment not in names:
        raise KitError(f"unknown assignment {assignment!r}: the assignments are {names}")
    return names[: names.index(assignment)]


def _library_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in _library_files(root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def grading_kit(root: Path, assignment: str, folder: Path | None = None) -> Path:
    """The library the grading sandbox of ``assignment`` puts on its path (rebuilt when compresslib
    changes): ``build/grading-kits/<assignment>-<digest>/``."""
    root = Path(root).resolve()
    folder = folder or root / "build" / "grading-kits"
    target = folder / f"{assignment}-{_library_digest(root)}"
    if not (target / "KIT.json").exists():
        partial = target.with_name(target.name + ".partial")
        build_student_kit(root, partial, grading_unlocks(root, assignment), with_notebooks=False, with_template=False)
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    return target
