"""The student's path, tested the way a student takes it: the student kit installed offline into a fresh
environment, `make lab` (JupyterLab on a free loopback port, with a token), and headless Chromium driven
through the UI: the file browser, the cell editor, Kernel > Restart Kernel and Run All Cells, and
nbgrader's Validate button.

Screenshots of the moments a student meets are written to this run's temporary folder and copied into
docs/student/ (the README's pictures) only when UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from jupyterlab_ui import Notebook, chromium_path, start_chromium, start_lab, stop_tree
from student_kit import QUICK_UNDER_VALIDATE, build_student_kit, fresh_environment, install_kit, validation_notebook

from compresslib.course.examples import wrong_answers
from compresslib.course.notebooks import assignments, grade_id, solution_code

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "notebooks").iterdir() if (p / f"{p.name}.ipynb").exists())
SCREENSHOTS = ROOT / "docs" / "student"
# Validate interrupts a cell after this many seconds (the kit's nbgrader config reads it; 120 by default).
VALIDATE_TIMEOUT_S = 20
# Each notebook, run top to bottom at the quick size with its solutions, within this limit.
RUN_ALL_LIMIT_S = 240
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """The student kit as handed out with the last assignment (every earlier one unlocked, since a later
    notebook may use an earlier one's answers, e.g. notebook 02 uses 01's combined loss), installed
    offline into a fresh environment; returns (kit folder, environment). That each notebook also runs
    with its OWN answers locked is tested without a browser (tests/test_student_kit.py)."""
    if chromium_path() is None:
        message = "no chromium on PATH: `make test` installs Debian's chromium where it can (apt-get, as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    work = tmp_path_factory.mktemp("student")
    kit = build_student_kit(work / "kit", unlock=tuple(assignments(ROOT)[:-1]))
    environment = work / "env"
    fresh_environment(environment)
    log = install_kit(kit, environment)
    assert "--no-index --no-deps --no-build-isolation" in log
    return kit, environment


@pytest.fixture(scope="module")
def lab(kit, tmp_path_factory):
    kit_path, environment = kit
    env = {"COMPRESSLIB_PROFILE": "quick", "COMPRESSLIB_VALIDATE_TIMEOUT": str(VALIDATE_TIMEOUT_S)}
    server = start_lab(kit_path, environment, tmp_path_factory.mktemp("lab"), env)
    yield server
    survivors = stop_tree(server.process)
    assert not survivors, f"processes left running after JupyterLab stopped: {survivors}"


@pytest.fixture(scope="module")
def page(lab, tmp_path_factory):
    """A Chromium page on the student's JupyterLab (Playwright over CDP: no browser download)."""
    from playwright.sync_api import sync_playwright

    process, endpoint = start_chromium(tmp_path_factory.mktemp("chromium"))
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.connect_over_cdp(endpoint)
        tab = browser.contexts[0].new_page()
        tab.set_viewport_size(VIEWPORT)
        tab.set_default_timeout(60_000)
        tab.console_errors = []
        tab.on("console", lambda message: message.type == "error" and tab.console_errors.append(message.text))
        tab.goto(f"{lab.url}/lab?token={lab.token}")
        tab.locator(".jp-DirListing-item").first.wait_for()
        yield tab
        browser.close()
    finally:
        playwright.stop()
        survivors = stop_tree(process)
        assert not survivors, f"processes left running after Chromium stopped: {survivors}"


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """shot(page, name): a PNG of the page in this run's folder, copied to docs/student/ on UPDATE_SCREENSHOTS=1."""
    folder = tmp_path_factory.mktemp("screenshots")
    taken = []

    def take(page, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"))
        taken.append(folder / f"{name}.png")

    yield take
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for path in taken:
            shutil.copy(path, SCREENSHOTS / path.name)


def release_cells(kit_path: Path, assignment: str) -> list:
    return nbformat.read(str(kit_path / "notebooks" / assignment / f"{assignment}.ipynb"), as_version=4).cells


def walkthrough(assignment: str) -> nbformat.NotebookNode:
    """The executed walkthrough: its solution cells, and its outputs as what the student's run should show."""
    nb = nbformat.read(str(ROOT / "solutions" / assignment / f"{assignment}.ipynb"), as_version=4)
    assert any(cell.get("outputs") for cell in nb.cells), f"solutions/{assignment} is not executed: run `make release`"
    return nb


def answers(assignment: str) -> dict[str, str]:
    """grade_id -> the code a student types into that solution cell (the walkthrough's solution)."""
    return {grade_id(c): solution_code(c.source) for c in walkthrough(assignment).cells
            if c.get("metadata", {}).get("nbgrader", {}).get("solution")}


def test_kit_installs_offline_with_its_own_compresslib(kit, tmp_path):
    kit_path, environment = kit
    where = subprocess.check_output([str(environment / "bin" / "python"), "-c", "import compresslib; print(compresslib.__file__)"],
                                    cwd=tmp_path, text=True).strip()
    assert Path(where).is_relative_to(environment), f"compresslib imported from {where}, not the kit's install"
    assert (environment / "etc" / "jupyter" / "nbgrader_config.py").exists()


def test_make_validate_in_the_kit_runs_a_notebook_elsewhere_at_the_quick_size(kit, tmp_path):
    """`make validate NB=...` on a notebook outside the kit, without COMPRESSLIB_PROFILE: it runs at the
    quick size (nbgrader sets NBGRADER_EXECUTION) and succeeds."""
    nb = validation_notebook(QUICK_UNDER_VALIDATE, "print('an experiment')")
    path = tmp_path / "elsewhere" / "profile.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, str(path))
    env = {k: v for k, v in os.environ.items() if k != "COMPRESSLIB_PROFILE"}
    done = subprocess.run(["make", "validate", f"VENV={kit[1]}", f"NB={path}"], cwd=kit[0], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Success! Your notebook passes all the tests." in done.stdout, done.stdout + done.stderr


def test_student_sees_only_students_tools(lab, page, shot):
    """`make lab` starts as root with a warning; the Nbgrader menu holds the Assignment List only; no
    Create Assignment sidebar; the formgrader and course list are not served."""
    if os.geteuid() == 0:
        assert "WARNING: you are root" in lab.log_text() and "--allow-root" in lab.log_text()
    page.locator("#jp-MainMenu .lm-MenuBar-item", has_text="Nbgrader").click()
    items = [t.split("\t")[0] for t in page.locator(".lm-Menu:visible .lm-Menu-item:visible").all_inner_texts()]
    shot(page, "nbgrader-menu")
    page.keyboard.press("Escape")
    assert [t for t in items if t.strip()] == ["Assignment List"]
    assert page.locator(".lm-TabBar-tab[title*='Create Assignment']").count() == 0
    assert lab.status("/formgrader") == 404 and lab.status("/formgraders") == 404
    assert "compresslib: Validate fails any cell that errors" in lab.log_text()


def test_notebook_01_as_a_student_works_it(kit, lab, page, shot):
    """Blank: Run All stops at the first NotImplementedError. A T^2-less distillation loss: its visible
    test names the mistake, and Validate lists that cell. The right answers: Validate says Success!
    The lecture's question is answered in a collapsed cell, after the student's own answer cell."""
    assignment = "01_soft_targets"
    cells = release_cells(kit[0], assignment)
    nb = Notebook.open_from_file_browser(page, lab, f"{assignment}/{assignment}.ipynb", cells)
    shot(page, "01-open")

    nb.restart_and_run_all(RUN_ALL_LIMIT_S)
    errors = nb.errors()
    first_test = nb.index_of("test_softmax_with_temperature")
    assert [e.index for e in errors] == [first_test], [e.describe() for e in errors]
    assert "NotImplementedError" in errors[0].outputs
    assert all(nb.prompt(i) == "[ ]:" for i in nb.code_cells() if i > first_test), "Run All went on after the error"
    nb.show(first_test)
    shot(page, "02-blank-stops-at-first-function")

    solutions = answers(assignment)
    no_t_squared = wrong_answers(ROOT, assignment)["t2_factor_dropped"]["code"]
    for cell_id, code in solutions.items():
        nb.set_source(nb.index_of(cell_id), no_t_squared if cell_id == "distillation_loss" else code)
    test = nb.index_of("test_distillation_loss")
    nb.run_cells(nb.index_of("softmax_with_temperature"), first_test, nb.index_of("distillation_loss"), test)
    assert "visible tests passed" in nb.output_text(first_test)
    assert re.search(r"AssertionError: .*T\^2", nb.output_text(test)), nb.output_text(test)
    nb.show(test)
    shot(page, "03-visible-test-names-the-mistake")

    verdict = nb.validate()
    assert "Success" not in verdict and "T^2" in verdict, verdict
    assert verdict.count("The following cell failed") == 1, verdict
    nb.scroll_dialog_to_end()
    shot(page, "04-validate-lists-the-failing-cell")
    nb.close_dialog()

    nb.set_source(nb.index_of("distillation_loss"), solutions["distillation_loss"])
    verdict = nb.validate()
    assert "Success! Your notebook passes all the tests." in verdict, verdict
    shot(page, "05-validate-success")
    nb.close_dialog()

    question = next(i for i, c in enumerate(cells) if c.source.startswith("**Your answer.**"))
    answer = nb.cell(question + 1).locator("details")
    answer.locator("summary").wait_for(state="visible")
    assert not answer.get_by_text("Both forward passes").is_visible(), "the answer shows before it is opened"
    answer.locator("summary").click()
    answer.get_by_text("Both forward passes").wait_for(state="visible")
    nb.close()


def test_validate_fails_a_notebook_whose_experiment_ran_too_long(kit, lab, page, shot):
    """A notebook whose graded test passes but whose experiment runs past Validate's time limit: Validate
    interrupts it and lists it as failed (nbgrader 0.9.6 alone said "Success!")."""
    sleeper = "import time\n\ntime.sleep(600)  # an experiment that takes far too long"
    nb = validation_notebook('print("visible tests passed")', sleeper)
    path = kit[0] / "notebooks" / "too_long.ipynb"
    nbformat.write(nb, str(path))
    ui = Notebook.open_from_file_browser(page, lab, path.name, nb.cells)
    start = time.monotonic()
    verdict = ui.validate()
    assert "Success" not in verdict, verdict
    assert verdict.count("The following cell failed") == 1 and "CellTimeoutError" in verdict, verdict
    assert "time.sleep(600)" in verdict
    assert time.monotonic() - start > VALIDATE_TIMEOUT_S
    shot(page, "06-validate-fails-a-cell-past-the-time-limit")
    ui.close_dialog()
    ui.close()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_runs_top_to_bottom_with_its_solutions(kit, lab, page, shot, assignment):
    """Typed-in solutions, Restart Kernel and Run All Cells: no traceback anywhere, "visible tests passed"
    under every test cell, the walkthrough's plots as images, within the time limit; saved and reopened,
    no widget shows "model not found"."""
    cells = release_cells(kit[0], assignment)
    path = f"{assignment}/{assignment}.ipynb"
    nb = Notebook.open_from_file_browser(page, lab, path, cells)
    for cell_id, code in answers(assignment).items():
        nb.set_source(nb.index_of(cell_id), code)
    seconds = nb.restart_and_run_all(RUN_ALL_LIMIT_S)
    print(f"{assignment}: run all in {seconds:.1f} s")

    errors = nb.errors()
    assert not errors, f"{assignment}: " + "\n\n".join(e.describe() for e in errors)
    tests = [i for i, c in enumerate(cells) if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    silent = [nb.report(i).describe() for i in tests if "visible tests passed" not in nb.output_text(i)]
    assert tests and not silent, f"{assignment}: test cells without 'visible tests passed':\n" + "\n\n".join(silent)
    plots = {c.id for c in walkthrough(assignment).cells if any("image/png" in o.get("data", {}) for o in c.get("outputs", []))}
    missing = [i for i, c in enumerate(cells) if c.id in plots and nb.images(i) == 0]
    assert not missing, f"{assignment}: no image rendered in cells {missing}"
    if assignment == "01_soft_targets":
        first_plot = next(i for i, c in enumerate(cells) if c.id in plots)
        nb.show(max(i for i in tests if i < first_plot), outputs=True)  # a passing test, then a plot
        shot(page, "07-plots-and-passing-tests")

    nb.save()
    if nb.panel.locator(".jp-OutputArea-output .jupyter-widgets").count():
        page.reload()
        page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for()
        nb = Notebook(page, lab, path, cells)
        nb.wait_until_idle(RUN_ALL_LIMIT_S)
        broken = nb.panel.get_by_text("model not found")
        assert broken.count() == 0, f"{assignment}: {broken.count()} saved widgets show 'model not found' after a reload"
    nb.close()
