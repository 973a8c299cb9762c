"""The student kit: built from this repository, it holds the release notebooks and a compresslib that
works but carries no answer key; its scan finds planted answers and hidden values."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compresslib.course.kit_scan import NUMBER, fixture_value_strings, scan_student_kit
from compresslib.course.notebooks import assignments
from compresslib.course.student_kit import (
    EXCLUDED_PACKAGES,
    KitError,
    build_student_kit,
    grading_kit,
    grading_unlocks,
    lock_source,
    reference_functions,
)
from compresslib.grading.fixtures import fixture_path

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = assignments(ROOT)
GRADED = [a for a in ASSIGNMENTS if fixture_path(a).exists() and "tests" in json.loads(fixture_path(a).read_text())]


def reference_answers_of(assignment: str) -> set[str]:
    """``module.function`` of every library function marked ``@reference_answer(assignment)``, read from the
    sources (not from the registry, which fills only as modules are imported)."""
    found = set()
    for path in sorted((ROOT / "compresslib").rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[1] in EXCLUDED_PACKAGES:
            continue
        module = ".".join(relative.with_suffix("").parts)
        found |= {f"{module}.{name}" for name, marks, _ in reference_functions(path.read_text()) if assignment in marks}
    return found


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_student_kit(ROOT, tmp_path_factory.mktemp("kit") / "student-kit")


# A student's environment has no editable install of this repository. This test environment has one,
# whose import hook would find instructor modules (compresslib.grading) the kit lacks: drop it first.
WITHOUT_EDITABLE_INSTALL = ("import sys\n"
                            "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')]\n")


def _run_in_kit(kit: Path, code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter whose ``compresslib`` is the kit's (not this repository's)."""
    return subprocess.run([sys.executable, "-c", WITHOUT_EDITABLE_INSTALL + code], cwd=kit, capture_output=True, text=True,
                          env={"PYTHONPATH": str(kit), "PATH": "/usr/bin:/bin", "HOME": str(kit)})


def test_the_kit_scan_finds_nothing(kit):
    assert scan_student_kit(ROOT, kit) == []


def test_the_kit_holds_the_releases_and_no_instructor_files(kit):
    for assignment in ASSIGNMENTS:
        assert (kit / "notebooks" / assignment / f"{assignment}.ipynb").exists()
    for absent in ("grading", "runs", "course"):
        assert not (kit / "compresslib" / absent).exists()
    assert not list(kit.rglob("wrong_answers*")) and not list(kit.rglob("*fixtures*"))
    assert "package-data" not in (kit / "pyproject.toml").read_text()


# One locked reference answer per notebook, called as the notebook's plumbing would call it.
LOCKED_CALLS = {
    "01_soft_targets": ("distillation_loss",
                        "compresslib.distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), 2.0)"),
    "04_precision_rank_sharing": ("quantize_per_channel",
                                  "compresslib.quantize.quantize_per_channel(torch.ones(2, 3), 4)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("assignment", sorted(LOCKED_CALLS))
def test_a_locked_answer_raises_naming_its_notebook(kit, assignment):
    name, call = LOCKED_CALLS[assignment]
    done = _run_in_kit(kit, "import compresslib, compresslib.quantize, torch\n"
                            "print(compresslib.__file__)\n"
                            f"try:\n    {call}\n"
                            "except NotImplementedError as e:\n    print('LOCKED', e)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(kit)), "the kit's compresslib must be the one imported"
    assert f"LOCKED {name} is what you write in notebook {assignment}" in done.stdout


@pytest.mark.parametrize("assignment", GRADED)
def test_every_reference_answer_of_a_graded_notebook_is_locked(kit, assignment):
    marked = reference_answers_of(assignment)
    assert marked, f"no library function is marked @reference_answer({assignment!r})"
    locked = set(json.loads((kit / "KIT.json").read_text())["locked_functions"])
    assert marked <= locked, sorted(marked - locked)


@pytest.mark.slow
def test_the_kit_has_no_grading_package_to_import(kit):
    done = _run_in_kit(kit, "import compresslib.grading")
    assert done.returncode != 0 and "No module named 'compresslib.grading'" in done.stderr


@pytest.mark.slow
def test_the_plumbing_still_works_in_the_kit(kit):
    done = _run_in_kit(kit, "from compresslib.data import read_polarity_snippets\n"
                            "from compresslib.capture import capture\n"
                            "print(len(read_polarity_snippets()))")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 10_000


@pytest.mark.slow
def test_an_unlocked_assignment_ships_its_answers(tmp_path):
    kit = build_student_kit(ROOT, tmp_path / "kit", ["01_soft_targets"], with_notebooks=False, with_template=False)
    manifest = json.loads((kit / "KIT.json").read_text())
    assert manifest["unlocked"] == ["01_soft_targets"]
    assert not any(name.startswith("compresslib.distill.losses") for name in manifest["locked_functions"])
    done = _run_in_kit(kit, "import torch, compresslib\n"
                            "print(float(compresslib.distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), 2.0)))")
    assert done.returncode == 0, done.stderr
    assert abs(float(done.stdout) - 4 * 0.6931471805599453) < 1e-5  # T^2 H(uniform over 2) = 4 ln 2


def test_the_scan_finds_a_reference_answer_copied_into_the_kit(kit, tmp_path):
    leaky = tmp_path / "leaky"
    shutil.copytree(kit, leaky)
    source = (ROOT / "compresslib" / "prune" / "magnitude.py").read_text()
    (leaky / "compresslib" / "helpers_from_a_friend.py").write_text(source.replace("@reference_answer", "@staticmethod"))
    problems = scan_student_kit(ROOT, leaky)
    assert any("helpers_from_a_friend.py" in p and "reference answer" in p for p in problems), problems


@pytest.mark.parametrize("assignment", GRADED)
def test_the_scan_finds_a_hidden_value_in_any_file(kit, tmp_path, assignment):
    leaky = tmp_path / "leaky"
    shutil.copytree(kit, leaky)
    # one number of that notebook's hidden tests, written as the scan reads numbers
    value = min(v for v in fixture_value_strings([fixture_path(assignment)]) if NUMBER.fullmatch(v))
    (leaky / "notes.md").write_text(f"the answer should come out as {value}\n")
    problems = scan_student_kit(ROOT, leaky)
    assert any(p.startswith("notes.md") and "hidden tests" in p for p in problems), problems


def test_the_scan_finds_instructor_files(kit, tmp_path):
    leaky = tmp_path / "leaky"
    shutil.copytree(kit, leaky)
    shutil.copytree(ROOT / "compresslib" / "grading", leaky / "compresslib" / "grading")
    (leaky / "wrong_answers.py").write_text("# BEGIN HIDDEN TESTS\n")
    problems = "\n".join(scan_student_kit(ROOT, leaky))
    assert "instructor-only package compresslib/grading" in problems
    assert "wrong_answers.py: instructor-only file" in problems
    assert "BEGIN HIDDEN TESTS" in problems


def test_locking_keeps_the_docstring_and_signature():
    source = ('from compresslib.answers import reference_answer\n\n'
              '@reference_answer("01_x")\ndef f(a, b=2):\n    """Doc."""\n    c = a + b\n    return c * 2\n\n'
              'def g():\n    return 1\n')
    locked, names = lock_source(source, {"01_x"})
    assert names == ["f"]
    assert '"""Doc."""' in locked and "def f(a, b=2):" in locked and "c = a + b" not in locked
    assert "def g():\n    return 1" in locked
    assert lock_source(source, {"02_y"})[0] == source


def test_bad_requests_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(KitError, match="cannot unlock"):
        build_student_kit(ROOT, tmp_path / "kit", ["99_nothing"])
    assert not (tmp_path / "kit").exists()
    with pytest.raises(KitError, match="course directory"):
        build_student_kit(ROOT, ROOT / "kit")


def test_the_grading_kit_unlocks_only_earlier_assignments(tmp_path):
    assert grading_unlocks(ROOT, ASSIGNMENTS[0]) == []
    assert grading_unlocks(ROOT, ASSIGNMENTS[1]) == ASSIGNMENTS[:1]
    kit = grading_kit(ROOT, ASSIGNMENTS[1], folder=tmp_path)
    manifest = json.loads((kit / "KIT.json").read_text())
    assert manifest["unlocked"] == ASSIGNMENTS[:1] and ASSIGNMENTS[1] in manifest["locked"]
    assert grading_kit(ROOT, ASSIGNMENTS[1], folder=tmp_path) == kit  # cached while compresslib is unchanged


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_notebook_runs_top_to_bottom_in_the_kit_with_its_own_answers_locked(assignment, tmp_path):
    """Filled in with the solutions, each release runs, every cell (ungraded experiments included, at the
    quick size), in the kit that grades it: its own answers and every later assignment's locked, the
    earlier ones unlocked. So no cell of a notebook leans on the library's version of its own answers."""
    from dataclasses import replace

    from compresslib.course.notebooks import fill_release, read_notebook, release_path, solution_path
    from compresslib.grading.execute import execute_notebook
    from compresslib.grading.nbgrader_plugins import grading_policy
    from compresslib.grading.sandbox import availability

    kit = grading_kit(ROOT, assignment, folder=tmp_path)
    notebook = fill_release(read_notebook(release_path(ROOT, assignment)), read_notebook(solution_path(ROOT, assignment)))
    policy = replace(grading_policy(cell_timeout=300, notebook_timeout=900), skip_tags=())
    result = execute_notebook(notebook, kit, policy=policy, unsandboxed=not availability())
    failed = [(r.index, r.status, r.message) for r in result.cells if r.status not in ("ok", "skipped")]
    assert not failed, f"{assignment} did not run top to bottom in its grading kit: {failed}"
