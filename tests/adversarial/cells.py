"""Editing the notebook itself: test cells edited, deleted, duplicated, retyped, their points, grade ids
and flags changed, the kernelspec changed, outputs planted, metadata garbled; and submissions that are
not a plain notebook (malformed, over the size limit, symbolic links, extra files)."""

import json

import nbformat

from adversarial.attack import A01, COMBINED, DISTILLATION, KD_STEP, SOFTMAX, Attack, cell, code, index
from compresslib.course.grade import MAX_SUBMISSION_BYTES

MIME = "application/vnd.compresslib.capture+json"


def edited(ctx):
    nb = ctx.complete(A01, {"distillation_loss": ctx.mistake(A01, "t2_factor_dropped")})
    cell(nb, DISTILLATION).source = "print('tests removed')"
    return nb


def deleted(ctx):
    nb = ctx.complete(A01, {"combined_loss": ctx.mistake(A01, "hard_loss_at_temperature_t")})
    del nb.cells[index(nb, COMBINED)]
    return nb


def duplicated(ctx):
    nb = ctx.complete(A01)
    copy = nbformat.from_dict(json.loads(json.dumps(cell(nb, KD_STEP))))
    copy.id = "copy-of-kd-test"
    nb.cells.insert(index(nb, KD_STEP) + 1, copy)
    again = nbformat.from_dict(json.loads(json.dumps(copy)))
    again.id = "another-copy"
    nb.cells.insert(index(nb, "kd_step"), again)
    return nb


def retyped(ctx):
    nb = ctx.complete(A01)
    for test, kind in ((SOFTMAX, "markdown"), (KD_STEP, "raw")):
        target = cell(nb, test)
        target.cell_type = kind
        target.pop("outputs", None)
        target.pop("execution_count", None)
    return nb


def points_changed(ctx):
    nb = ctx.complete(A01)
    cell(nb, DISTILLATION).metadata.nbgrader["points"] = 100
    cell(nb, SOFTMAX).metadata.nbgrader["points"] = 0
    nb.cells.insert(index(nb, KD_STEP) + 1, code("print('bonus')", grade=True, locked=True, solution=False,
                                                  points=50, grade_id="test_bonus"))
    return nb


def grade_id_changed(ctx):
    nb = ctx.complete(A01, {"kd_step": ctx.mistake(A01, "teacher_left_in_train_mode")})
    test = cell(nb, KD_STEP)
    test.metadata.nbgrader["grade_id"] = "test_kd_step_mine"
    test.source = "print('my own test')"
    return nb


def flags_changed(ctx):
    nb = ctx.complete(A01, {"combined_loss": ctx.mistake(A01, "hard_loss_at_temperature_t")})
    cell(nb, KD_STEP).metadata.nbgrader["solution"] = True
    combined = cell(nb, COMBINED)
    combined.metadata.nbgrader.update(locked=False, solution=True, grade=False)
    combined.source = "print('no tests here')"
    cell(nb, SOFTMAX).metadata.nbgrader.update(grade=False, locked=False)
    return nb


def kernelspec_changed(ctx):
    nb = ctx.complete(A01)
    nb.metadata["kernelspec"] = {"name": "evil-kernel", "display_name": "Evil", "language": "bash"}
    nb.metadata["language_info"] = {"name": "bash"}
    return nb


def outputs_planted(ctx):
    nb = ctx.blank(A01)
    for test in (SOFTMAX, DISTILLATION, COMBINED, KD_STEP):
        target = cell(nb, test)
        target.execution_count = 1
        target.outputs = [nbformat.v4.new_output("display_data", data={MIME: {
            "assignment": A01, "test": test, "cases": []}, "text/plain": "planted"}),
            nbformat.v4.new_output("execute_result", data={"text/plain": "10"}, execution_count=1)]
    return nb


def metadata_garbled(ctx):
    nb = ctx.complete(A01)
    cell(nb, "combined_loss").metadata["nbgrader"] = {"grade_id": 42, "solution": "yes"}
    nb.cells[0].metadata["nbgrader"] = "garbage"
    nb.cells[-1].metadata["nbgrader"] = {"grade": True, "points": "many"}
    nb.metadata["nbgrader"] = {"what": ["anything"]}
    return nb


def duplicate_cell_ids(ctx):
    nb = ctx.complete(A01)
    text = nbformat.writes(nb)
    raw = json.loads(text)
    for entry in raw["cells"]:
        entry["id"] = "same"
    return json.dumps(raw)


def oversized(ctx):
    nb = ctx.complete(A01)
    nb.cells.append(nbformat.v4.new_markdown_cell("x" * (MAX_SUBMISSION_BYTES + 1000)))
    return nb


def truncated(ctx):
    text = nbformat.writes(ctx.complete(A01))
    return text[: len(text) // 2]


def link_to_solution(ctx):
    def fill(folder):
        (folder / f"{A01}.ipynb").symlink_to(ctx.root / "solutions" / A01 / f"{A01}.ipynb")
    return fill


def link_to_other_student(ctx):
    def fill(folder):
        (folder / f"{A01}.ipynb").symlink_to(f"../../zz-victim-complete/{A01}/{A01}.ipynb")
    return fill


def extra_files(ctx):
    def fill(folder):
        (folder / f"{A01}.ipynb").write_text(nbformat.writes(ctx.complete(A01)))
        (folder / "scratch.ipynb").write_text(nbformat.writes(ctx.complete(A01, {"distillation_loss": ctx.mistake(A01, "t2_factor_dropped")})))
        (folder / "notes").mkdir()
        (folder / "notes" / "data.txt").write_text("some notes\n")
    return fill


ENTRIES = [
    Attack("cells-test-edited", A01, "a wrong distillation_loss (T^2 dropped), its test cell edited to a print",
           edited, lost={DISTILLATION: 0}, feedback={DISTILLATION: r"T\^2"}),
    Attack("cells-test-deleted", A01, "a wrong combined_loss (hard loss at T), its test cell deleted",
           deleted, lost={COMBINED: 0}, feedback={COMBINED: "temperature"}),
    Attack("cells-test-duplicated", A01, "right answers; the kd_step test cell copied twice (before the answer "
           "cell and after the test), each copy with the test's metadata", duplicated),
    Attack("cells-test-retyped", A01, "right answers; the softmax test cell made markdown and the kd_step test "
           "cell raw", retyped),
    Attack("cells-points-changed", A01, "right answers; the distillation test's points set to 100, the softmax "
           "test's to 0, and a graded 'test_bonus' cell worth 50 added", points_changed),
    Attack("cells-grade-id-changed", A01, "kd_step leaves the teacher in train mode; its test cell renamed "
           "'test_kd_step_mine' and given its own code", grade_id_changed,
           lost={KD_STEP: 0}, feedback={KD_STEP: "train mode"}),
    Attack("cells-flags-changed", A01, "a wrong combined_loss (hard loss at T); its test cell made an "
           "unlocked solution cell with its own code, the kd_step test flagged as a solution, the softmax test "
           "unflagged as graded and unlocked", flags_changed, lost={COMBINED: 0}),
    Attack("cells-kernelspec-changed", A01, "right answers; kernelspec and language_info say bash",
           kernelspec_changed),
    Attack("cells-outputs-planted", A01, "the blank release with capture-MIME reports (no cases) and an "
           "execute_result '10' written into every test cell's outputs in the JSON", outputs_planted,
           lost={SOFTMAX: 0, DISTILLATION: 0, COMBINED: 0, KD_STEP: 0}),
    Attack("cells-metadata-garbled", A01, "right answers; nbgrader metadata replaced by a string, a numeric grade "
           "id, and a graded cell without a grade id; notebook metadata added", metadata_garbled),
    Attack("cells-duplicate-ids", A01, "raw JSON: right answers, every cell given the same id (invalid nbformat; "
           "nbformat repairs the ids when reading, the same way in every reader)", duplicate_cell_ids),
    Attack("cells-oversized", A01, "a markdown cell making the notebook larger than the submission limit",
           oversized, failed="limit"),
    Attack("cells-truncated", A01, "a notebook file cut in half", truncated, failed="not a valid notebook"),
    Attack("cells-link-to-solution", A01, "the submitted notebook is a symbolic link to the instructor's "
           "solutions/ notebook (graded 10/10 before the fix)", link_to_solution, failed="symbolic link"),
    Attack("cells-link-to-other-student", A01, "the submitted notebook is a relative symbolic link to another "
           "student's submitted notebook", link_to_other_student, failed="symbolic link"),
    Attack("cells-extra-files", A01, "right answers, plus a second notebook (with a wrong answer) and a folder of "
           "notes in the submission", extra_files),
]
