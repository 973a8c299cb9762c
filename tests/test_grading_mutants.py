"""Held-out wrong answers (``tests/mutants/<assignment>.py``, plausible mistakes outside each notebook's
catalog) must each lose at least one hidden test: how well the hidden tests generalise beyond the
mistakes they were written against. Generic over every file in ``tests/mutants/``; in-process."""

import ast
import importlib.util
from pathlib import Path

import pytest
from graded import ROOT, grade_all, solution_namespace

from compresslib.course.notebooks import from_source, source_path

MUTANTS_DIR = Path(__file__).parent / "mutants"


def corpus(path: Path) -> dict:
    """The entries of one mutant file (``MUTANTS``, or a catalog-style ``WRONG_ANSWERS``)."""
    spec = importlib.util.spec_from_file_location(f"mutants_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "MUTANTS", None) or getattr(module, "WRONG_ANSWERS", {})


def notebook_imports(assignment: str) -> dict:
    """The import statements of the notebook's code cells before its first solution cell, executed: the
    names the solution cells rely on (torch, nn, F, ...), without running any setup work."""
    namespace: dict = {}
    for cell in from_source(source_path(ROOT, assignment)).cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            break
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
            exec(compile(ast.Module(body=imports, type_ignores=[]), f"<{assignment} imports>", "exec"), namespace)
    return namespace


ENTRIES = [(path.stem, name) for path in sorted(MUTANTS_DIR.glob("*.py")) for name in sorted(corpus(path))]


@pytest.mark.parametrize(("assignment", "name"), ENTRIES)
def test_each_held_out_wrong_answer_fails_a_hidden_test(assignment, name):
    entry = corpus(MUTANTS_DIR / f"{assignment}.py")[name]
    namespace = solution_namespace(assignment, notebook_imports(assignment), {entry["cell"]: entry["code"]})
    verdicts = grade_all(assignment, namespace)
    assert any(not verdict.passed for verdict in verdicts.values()), f"{name} kept full marks"
