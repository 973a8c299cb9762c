"""Prove a student kit holds no answer key: every file in it scanned for what must not be there.

* instructor-only files: ``compresslib/grading``, ``runs``, ``course``, fixture files, wrong-answer
  catalogs, solution notebooks, nbgrader's solution and hidden-test markers;
* the reference answers of locked assignments: every statement of a locked reference body that occurs
  nowhere else in the library nor in the code the releases give students (the statements that *are* the
  answer) is searched for, as a parsed statement, in every Python file and notebook code cell of the kit;
* the hidden tests' values: every number with seven or more significant digits in the grading fixtures
  (inputs, expected and catalogued wrong outputs) is searched for, in several formats, in every file.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from compresslib.course.student_kit import EXCLUDED_PACKAGES, reference_functions

FORBIDDEN_NAMES = re.compile(r"(^|/)(fixtures|wrong_answers[^/]*|solutions|gradebook\.db)(/|$)")
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")
TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".txt", ".json", ".toml", ".cfg", ".yml", ".yaml", ".html", ".csv", ""}


def _statements(tree: ast.AST) -> Iterator[ast.stmt]:
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            yield node


def _key(statement: ast.stmt) -> str:
    return ast.dump(statement, annotate_fields=False)


def _significant(statement: ast.stmt) -> bool:
    """Statements too small to be an answer on their own (``return x``, imports, docstrings) are skipped."""
    if isinstance(statement, ast.Import | ast.ImportFrom | ast.Pass | ast.Break | ast.Continue):
        return False
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return False
    return len(_key(statement)) >= 60


def answer_statements(root: Path, locked: set[str]) -> dict[str, str]:
    """``{statement key: "module.function"}`` for the statements found only in locked reference bodies
    (not elsewhere in the shipped library, not in the releases' given code, e.g. the lecture's kd_step)."""
    inside, outside = {}, set()
    for _, source in _kit_code(root / "notebooks"):
        try:
            outside.update(_key(statement) for statement in _statements(ast.parse(source)))
        except SyntaxError:
            continue
    for path in sorted((root / "compresslib").rglob("*.py")):
        relative = path.relative_to(root / "compresslib")
        if relative.parts[0] in EXCLUDED_PACKAGES:
            continue
        source = path.read_text()
        tree = ast.parse(source)
        locked_nodes = {id(node): name for name, marks, node in reference_functions(source, tree) if set(marks) & locked}
        in_locked = set()
        for node in ast.walk(tree):
            if id(node) in locked_nodes:
                for statement in node.body:
                    for inner in _statements(statement):
                        in_locked.add(id(inner))
                        if _significant(inner):
                            inside.setdefault(_key(inner), f"{path.relative_to(root)}:{locked_nodes[id(node)]}")
        for statement in _statements(tree):
            if id(statement) not in in_locked:
                outside.add(_key(statement))
    return {key: where for key, where in inside.items() if key not in outside}


def _kit_code(kit: Path) -> Iterator[tuple[str, str]]:
    """(where, source) of every Python file and notebook code cell in the kit."""
    for path in sorted(kit.rglob("*.py")):
        yield str(path.relative_to(kit)), path.read_text(errors="replace")
    for path in sorted(kit.rglob("*.ipynb")):
        try:
            cells = json.loads(path.read_text())["cells"]
        except (ValueError, KeyError):
            continue
        for i, cell in enumerate(cells):
            if cell.get("cell_type") == "code":
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                yield f"{path.relative_to(kit)} cell {i}", source


def _numbers(value) -> Iterator[float]:
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)


def fixture_value_strings(fixtures: Iterable[Path]) -> set[str]:
    """Distinctive renderings (7+ significant digits) of every number in the grading fixtures."""
    found = set()
    for path in fixtures:
        for x in _numbers(json.loads(path.read_text()).get("tests", {})):
            if x != x or abs(x) in (float("inf"),) or abs(x) < 1e-3:
                continue
            digits = len(re.sub(r"[^0-9]", "", f"{abs(x):.15g}").lstrip("0"))
            if digits < 7:
                continue
            found.update({repr(x), f"{x:.10g}", f"{x:.8g}", f"{x:.7g}"})
    return {s for s in found if len(re.sub(r"[^0-9]", "", s)) >= 7}


def scan_student_kit(root: Path, kit: Path) -> list[str]:
    """Every problem found in the kit at ``kit`` built from the course at ``root`` (empty when clean)."""
    root, kit = Path(root).resolve(), Path(kit).resolve()
    problems = []
    manifest = json.loads((kit / "KIT.json").read_text())
    files = [p for p in sorted(kit.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    for path in files:
        relative = path.relative_to(kit).as_posix()
        parts = relative.split("/")
        if parts[0] == "compresslib" and len(parts) > 2 and parts[1] in EXCLUDED_PACKAGES:
            problems.append(f"{relative}: instructor-only package compresslib/{parts[1]}")
        elif FORBIDDEN_NAMES.search(relative):
            problems.append(f"{relative}: instructor-only file")
    texts = {p.relative_to(kit).as_posix(): p.read_text(errors="replace") for p in files if p.suffix in TEXT_SUFFIXES}
    for where, text in texts.items():
        for marker in MARKERS:
            if marker in text:
                problems.append(f"{where}: contains the nbgrader marker {marker!r}")
    answers = answer_statements(root, set(manifest["locked"]))
    for where, source in _kit_code(kit):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for statement in _statements(tree):
            key = _key(statement)
            if key in answers:
                problems.append(f"{where} line {statement.lineno}: a statement of the reference answer {answers[key]}")
    values = fixture_value_strings(sorted((root / "compresslib" / "grading" / "fixtures").glob("*.json")))
    for where, text in texts.items():
        hits = sorted(set(NUMBER.findall(text)) & values)
        if hits:
            problems.append(f"{where}: contains {hits[0]}, a value of the hidden tests ({len(hits)} in all)")
    return problems
