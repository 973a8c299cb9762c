"""The kit's nbgrader preprocessors: scores decided outside the student's process.

nbgrader's own autograde executes each submission in a kernel and scores a test cell full marks
unless the cell shows an error (or any stderr output). Everything the student's code does in that
kernel can therefore change its score. The kit replaces both halves:

* :class:`SandboxedExecute` runs the notebook in a bubblewrap sandbox with the student kit (no
  reference answers) on its path; the hidden tests there only *report* what the student's functions
  return (:mod:`compresslib.capture`).
* :class:`ReplayExecution` does the same job when the notebook was already executed by a grading
  worker (``python -m compresslib.course grade`` runs many sandboxes in parallel and feeds nbgrader the
  results, so the gradebook keeps one writer).
* :class:`RestoreCellMetadata` (a sanitizing step, before nbgrader's own) gives every cell that claims
  an nbgrader grade id the metadata the gradebook recorded for it, so that a submission's edited flags,
  points or ids can neither make nbgrader reject the whole notebook nor turn a cell of its own into a
  graded test cell (:data:`SANITIZE_PREPROCESSORS` is the whole sanitizing list, for ``nbgrader
  autograde`` and the grading command alike).
* :class:`ScoreCaptures` then decides each test cell's score from its report alone, compared with the
  fixtures in this (trusted) process, and rewrites the cell's outputs so that nbgrader's
  ``SaveAutoGrades`` records exactly that score: the verdict as the only error output (or none), the
  student's own output kept as plain text. Warnings, stderr output and failing visible tests never cost
  points; a missing report (a crash, a timeout) does.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, NbGraderPreprocessor,
                                    OverwriteCells, OverwriteKernelspec)
from nbgrader.utils import is_grade
from traitlets import Bool, Float, Integer, Unicode

from compresslib.capture import MIME
from compresslib.grading.judging import Verdict, score_report

# Output data a feedback page may render; anything else a submission printed (HTML, JavaScript,
# widget views) is dropped so that no student output runs in the instructor's or a student's browser.
SAFE_MIME_TYPES = ("text/plain", "image/png", "image/jpeg")
EXECUTION_KEY = "compresslib"  # cell metadata written by the executor: {"status": ..., "seconds": ...}


def _stream(text: str, name: str = "stdout") -> NotebookNode:
    return nbformat.v4.new_output("stream", name=name, text=text)


def safe_outputs(outputs: list, error_prefix: str = "") -> list:
    """The outputs of one cell, made inert: stderr as plain text, errors as text, results as display
    data (so none of them can set a score), and only :data:`SAFE_MIME_TYPES` kept."""
    kept = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            kept.append(_stream(str(output.get("text", ""))))
        elif kind == "error":
            kept.append(_stream(f"{error_prefix}{output.get('ename', 'Error')}: {output.get('evalue', '')}\n"))
        elif kind in ("display_data", "execute_result", "update_display_data"):
            data = {k: v for k, v in dict(output.get("data", {})).items() if k in SAFE_MIME_TYPES}
            if data:
                kept.append(nbformat.v4.new_output("display_data", data=data))
    return kept


def captured_reports(outputs: list) -> list:
    return [output["data"][MIME] for output in outputs
            if output.get("output_type") in ("display_data", "execute_result", "update_display_data")
            and MIME in output.get("data", {})]


def verdict_of_cell(assignment: str, cell: NotebookNode) -> Verdict:
    """The score of one test cell, from the report its hidden tests displayed and nothing else."""
    grade_id = cell.metadata["nbgrader"]["grade_id"]
    reports = captured_reports(cell.get("outputs", []))
    if len(reports) == 1:
        report = reports[0]
        if isinstance(report, str):  # some front ends store JSON outputs as text
            try:
                report = json.loads(report)
            except (ValueError, RecursionError):
                return Verdict(False, "the hidden tests' report could not be read")
        return score_report(assignment, grade_id, report)
    if len(reports) > 1:
        return Verdict(False, "this cell produced more than one hidden-test report")
    status = cell.get("metadata", {}).get(EXECUTION_KEY, {}).get("status")
    reasons = {
        "timeout": "the cell ran past its time limit",
        "died": "the kernel died while running this cell (a crash, sys.exit or too much memory)",
        "not_run": "the notebook stopped before this cell (see the cells above)",
        "skipped": "this cell was skipped after the kernel failed in it",
    }
    reason = reasons.get(status, "its hidden tests did not run")
    return Verdict(False, f"no result from this cell's hidden tests: {reason}")


def verdict_outputs(verdict: Verdict, points) -> list:
    if verdict.passed:
        return [_stream(f"\u2714 hidden tests passed ({points:g} of {points:g} points)\n")]
    return [nbformat.v4.new_output("error", ename="GradingError", evalue=verdict.message,
                                   traceback=[f"GradingError: {verdict.message}"])]


class ScoreCaptures(NbGraderPreprocessor):
    """Score every autograded test cell from its hidden tests' report (see the module docstring)."""

    def preprocess(self, nb, resources):
        assignment = resources["nbgrader"]["assignment"]
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            outputs = cell.get("outputs", [])
            if is_grade(cell):
                verdict = verdict_of_cell(assignment, cell)
                points = float(cell.metadata["nbgrader"].get("points", 0))
                visible = safe_outputs(outputs, error_prefix="a visible test failed (not scored; the hidden tests decide): ")
                cell.outputs = visible + verdict_outputs(verdict, points)
            else:
                cell.outputs = safe_outputs(outputs)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):  # pragma: no cover - preprocess does the work
        return cell, resources


class RestoreCellMetadata(NbGraderPreprocessor):
    """Make the nbgrader metadata of every cell what the gradebook recorded for its grade id.

    nbgrader's sanitizing trusts the flags a submission carries: with a test cell's ``solution`` flag
    set, or its grade id renamed, OverwriteCells raises ("Inconsistent checksums", a KeyError) and
    the whole notebook is not graded; a cell of the student's own that carries a dependent test's grade
    id could be taken for that test. Here, before DeduplicateIds and OverwriteCells: a cell whose grade
    id the gradebook knows for this notebook gets exactly the recorded metadata (grade, solution,
    locked, task, points, cell type, checksum), so OverwriteCells then restores a locked cell's source;
    any other nbgrader metadata (an unknown or malformed id) is removed, making it an ordinary cell.
    A grade id held by several cells stays with the last of them, as with nbgrader's DeduplicateIds,
    and the others become ordinary cells (DeduplicateIds leaves them an empty ``nbgrader`` dict, on
    which OverwriteCells' ``add_missing_cells`` fails with a KeyError: a copied test cell would stop
    the whole notebook from being graded)."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
            sources = {c.name: (c.cell_type, bool(c.locked), c.checksum) for c in notebook.source_cells}
            points = {c.name: float(c.max_score) for c in notebook.grade_cells}
            solutions = {c.name for c in notebook.solution_cells}
            tasks = {c.name for c in notebook.task_cells}
        seen = set()
        for cell in reversed(nb.cells):
            if "nbgrader" not in cell.get("metadata", {}):
                continue
            claimed = cell.metadata["nbgrader"]
            grade_id = claimed.get("grade_id") if isinstance(claimed, dict) else None
            if not isinstance(grade_id, str) or grade_id not in sources or grade_id in seen:
                del cell.metadata["nbgrader"]
                continue
            seen.add(grade_id)
            cell_type, locked, checksum = sources[grade_id]
            restored = {"grade": grade_id in points, "grade_id": grade_id, "locked": locked,
                        "schema_version": 3, "solution": grade_id in solutions, "task": grade_id in tasks,
                        "cell_type": cell_type, "checksum": checksum}
            if grade_id in points:
                restored["points"] = points[grade_id]
            cell.metadata["nbgrader"] = nbformat.from_dict(restored)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):  # pragma: no cover - preprocess does the work
        return cell, resources


# nbgrader's sanitizing before execution, with the cells' metadata first restored from the gradebook.
SANITIZE_PREPROCESSORS = [ClearOutput, RestoreCellMetadata, DeduplicateIds, OverwriteKernelspec, OverwriteCells,
                          CheckCellMetadata]


def _course_root(preprocessor) -> Path:
    root = preprocessor.config.get("CourseDirectory", {}).get("root", "")
    return Path(root or os.getcwd()).resolve()


class SandboxedExecute(NbGraderPreprocessor):
    """Execute the notebook in the grading sandbox (bubblewrap), the student kit on its path and the
    hidden inputs bound in; refuses to run unsandboxed unless ``unsandboxed`` is set."""

    unsandboxed = Bool(False, help="Run kernels without the bubblewrap sandbox (trusted submissions only: "
                                   "a submission can then read and change anything this user can)").tag(config=True)
    cell_timeout = Integer(120, help="Seconds a cell may run before it is interrupted (and its kernel "
                                     "replaced if it does not stop)").tag(config=True)
    notebook_timeout = Integer(600, help="Seconds a whole notebook may run").tag(config=True)
    memory_gb = Float(4.0, help="Memory limit of one sandbox, in GiB").tag(config=True)

    def policy(self):
        return grading_policy(self.cell_timeout, self.notebook_timeout, self.memory_gb)

    def preprocess(self, nb, resources):
        from compresslib.course.student_kit import grading_kit
        from compresslib.grading.execute import execute_notebook_json
        from compresslib.grading.fixtures import write_inputs

        assignment = resources["nbgrader"]["assignment"]
        kit = grading_kit(_course_root(self), assignment)
        with tempfile.TemporaryDirectory(prefix="grader-inputs-") as folder:
            inputs = write_inputs(assignment, Path(folder) / "inputs.json")
            result = execute_notebook_json(nbformat.writes(nb), kit=str(kit), inputs=str(inputs),
                                           policy=self.policy(), unsandboxed=self.unsandboxed, assignment=assignment)
        return annotate(nbformat.reads(result["notebook"], as_version=4), result["cells"]), resources

    def preprocess_cell(self, cell, resources, index):  # pragma: no cover
        return cell, resources


def grading_policy(cell_timeout: float = 120, notebook_timeout: float = 600, memory_gb: float = 4.0):
    """How the kit runs a submission: the executor's defaults, these limits, and the notebooks' ungraded
    experiments (cells tagged ``grader-skip``) left out."""
    from dataclasses import replace

    from compresslib.capture import GRADER_SKIP_TAG
    from compresslib.grading.execute import ExecutionPolicy
    from compresslib.grading.sandbox import SandboxLimits

    return ExecutionPolicy(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                           limits=replace(SandboxLimits(), memory_bytes=int(memory_gb * 2**30)),
                           skip_tags=(GRADER_SKIP_TAG,))


def annotate(nb: NotebookNode, records: list[dict]) -> NotebookNode:
    """Write each cell's execution record (status, seconds) into its metadata for the scorer."""
    for record in records:
        index = record.get("index")
        if isinstance(index, int) and 0 <= index < len(nb.cells):
            nb.cells[index].metadata[EXECUTION_KEY] = {k: record[k] for k in ("status", "seconds") if k in record}
    return nb


class ReplayExecution(NbGraderPreprocessor):
    """Take the outputs of a notebook a grading worker already executed (``staging_directory/<student>/
    <assignment>/<notebook>.ipynb``) instead of executing it again. The staged notebook must have
    exactly the cells of the sanitized submission."""

    staging_directory = Unicode("", help="Folder of executed notebooks written by the grading command").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        path = Path(self.staging_directory) / info["student"] / info["assignment"] / f"{info['notebook']}.ipynb"
        if not path.exists():
            raise FileNotFoundError(f"no executed notebook staged at {path}")
        executed = nbformat.read(path, as_version=4)
        if [(c.cell_type, c.source) for c in executed.cells] != [(c.cell_type, c.source) for c in nb.cells]:
            raise ValueError(f"the executed notebook at {path} does not match the sanitized submission")
        for cell, done in zip(nb.cells, executed.cells):
            if cell.cell_type == "code":
                cell.outputs = done.get("outputs", [])
                cell.execution_count = done.get("execution_count")
            if EXECUTION_KEY in done.get("metadata", {}):
                cell.metadata[EXECUTION_KEY] = done.metadata[EXECUTION_KEY]
        return nb, resources

    def preprocess_cell(self, cell, resources, index):  # pragma: no cover
        return cell, resources
