"""Grade a whole class: sandboxed execution in parallel, trusted scoring and one gradebook writer.

``python -m compresslib.course grade ASSIGNMENT --submissions DIR [--workers N] [--scheduler ADDRESS]``

1. Before any work: the assignment must be released (in the gradebook), the sandbox must work (or
   ``--unsandboxed`` be given), every submission is read and validated; a malformed one is reported and
   skipped, never stops the others.
2. Each submission is sanitized as nbgrader's autograde does (outputs cleared, test cells restored
   from the gradebook), then executed by a worker in its own sandbox with the grading kit (the student
   kit with this assignment locked) and the hidden inputs. Workers come from an existing engine's
   executor: a local process pool by default, Dask distributed with ``--scheduler tcp://HOST:PORT``
   (same code path; the kit travels to remote workers as an archive).
3. As each execution comes back, this process alone runs nbgrader's autograde on it with the executed
   outputs replayed (:class:`~compresslib.grading.nbgrader_plugins.ReplayExecution`) and scored by
   :class:`~compresslib.grading.nbgrader_plugins.ScoreCaptures`, writes feedback, and at the end exports
   the grades. The gradebook has one writer.

A rerun skips submissions already graded and unchanged; ``--regrade STUDENT`` grades one again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from compresslib.course import nbgrader_steps as steps
from compresslib.course.notebooks import NotebookError, read_notebook
from compresslib.course.student_kit import grading_kit

MAX_SUBMISSION_BYTES = 20_000_000


class GradingSetupError(RuntimeError):
    """Grading cannot start as asked; the message says what to do. Raised before any submission is touched."""


@dataclass
class Outcome:
    """What happened to one student's submission."""

    student: str
    status: str  # graded | skipped | failed
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # e.g. "cell 12 ran past its time limit"
    timings: dict[str, float] = field(default_factory=dict)  # where the seconds went (see grade_class)
    error: str | None = None


@dataclass
class ClassReport:
    assignment: str
    outcomes: dict[str, Outcome]
    seconds: float
    workers: int
    executor: str
    sandboxed: bool

    def by_status(self, status: str) -> list[str]:
        return sorted(s for s, o in self.outcomes.items() if o.status == status)

    def to_json(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "outcomes"},
                "outcomes": {s: asdict(o) for s, o in sorted(self.outcomes.items())}}


# --- the nbgrader side (this process only) ---------------------------------------------------------


def course_config(root: Path, **overrides):
    """The course's nbgrader configuration (``nbgrader_config.py``), with ``overrides``
    (``{"Class.trait": value}``) applied."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (root / "nbgrader_config.py").exists():
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    for dotted, value in overrides.items():
        section, trait = dotted.split(".")
        setattr(getattr(config, section), trait, value)
    return config


def _api(root: Path, config):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def replay_config(root: Path, staging: Path):
    """The course configuration with execution replaced by the staged results, scored by the kit."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from compresslib.grading.nbgrader_plugins import SANITIZE_PREPROCESSORS, ReplayExecution, ScoreCaptures

    preprocessors = [ReplayExecution, ScoreCaptures, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                     SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    return course_config(root, **{"Autograde.sanitize_preprocessors": SANITIZE_PREPROCESSORS,
                                  "Autograde.autograde_preprocessors": preprocessors,
                                  "ReplayExecution.staging_directory": str(staging)})


def sanitize(root: Path, config, assignment: str, student: str, path: Path) -> nbformat.NotebookNode:
    """A submitted notebook as nbgrader's autograde prepares it before execution (the same preprocessors
    as :func:`replay_config`): outputs cleared, cell metadata restored from the gradebook, ids
    deduplicated, kernelspec and locked/test cells restored from the gradebook."""
    from compresslib.grading.nbgrader_plugins import SANITIZE_PREPROCESSORS

    nb = read_notebook(path)
    resources = {"nbgrader": {"student": student, "assignment": assignment, "notebook": path.stem,
                              "db_url": f"sqlite:///{root / 'gradebook.db'}"}}
    for preprocessor in SANITIZE_PREPROCESSORS:
        nb, resources = preprocessor(config=config).preprocess(nb, resources)
    return nb


def submitted_notebooks(root: Path, student: str, assignment: str, names: Iterable[str]) -> list[Path]:
    """The notebooks of one submission that the assignment has (``names``; others, such as a scratch copy,
    are left alone as nbgrader leaves them), or NotebookError: none of them, a file over
    :data:`MAX_SUBMISSION_BYTES`, or a symbolic link or other special file anywhere in the student's
    folder (reading through a link named ``<assignment>.ipynb`` would grade whatever it points to: the
    instructor's solution, another student's notebook)."""
    student_dir = root / "submitted" / student
    folder = steps.submission_dir(root, student, assignment)
    for path in [student_dir, folder, *folder.rglob("*")]:
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            raise NotebookError(f"{path.relative_to(root)} is a symbolic link or a special file: a submission "
                                "must hold plain files only")
    names = set(names)
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.stem in names)
    if not notebooks:
        raise NotebookError(f"the submission holds no notebook of {assignment} ({', '.join(sorted(names))})")
    for path in notebooks:
        if path.stat().st_size > MAX_SUBMISSION_BYTES:
            raise NotebookError(f"{path.name} is {path.stat().st_size} bytes, over the "
                                f"{MAX_SUBMISSION_BYTES}-byte limit")
    return notebooks


def _released_notebooks(root: Path, assignment: str) -> list[str]:
    """The notebooks of ``assignment`` in the gradebook (empty when it is not released)."""
    from nbgrader.api import Gradebook, MissingEntry

    if not (root / "gradebook.db").exists():
        return []
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        try:
            return [notebook.name for notebook in gradebook.find_assignment(assignment).notebooks]
        except MissingEntry:
            return []


# --- the worker side (any process or machine) --------------------------------------------------------


def kit_archive(kit: Path) -> bytes:
    """The grading kit as a gzipped tar (what travels to remote workers)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(kit, arcname=kit.name)
    return buffer.getvalue()


def _local_kit(kit: str | bytes) -> str:
    """A kit path on this worker: ``kit`` itself, or the archive unpacked once into a cache by digest."""
    if isinstance(kit, str):
        return kit
    digest = hashlib.sha256(kit).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / "compresslib-kits" / digest
    if not cache.exists():
        partial = Path(tempfile.mkdtemp(prefix=f"{digest}-", dir=cache.parent if cache.parent.exists() else None))
        with tarfile.open(fileobj=io.BytesIO(kit), mode="r:gz") as archive:
            archive.extractall(partial, filter="data")
        (cache.parent).mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.rename(next(partial.iterdir()), cache)
        shutil.rmtree(partial, ignore_errors=True)
    return str(cache)


def execute_submission(assignment: str, notebook_json: str, kit: str | bytes, inputs_json: str, policy: dict,
                       unsandboxed: bool) -> dict:
    """Run one sanitized submission in a sandbox (on a worker); plain data in, plain data out."""
    from compresslib.grading.execute import execute_notebook_json

    with tempfile.TemporaryDirectory(prefix="grader-inputs-") as folder:
        inputs = Path(folder) / "inputs.json"
        inputs.write_text(inputs_json)
        return execute_notebook_json(notebook_json, kit=_local_kit(kit), inputs=str(inputs), policy=policy,
                                     unsandboxed=unsandboxed, assignment=assignment)


@contextlib.contextmanager
def worker_pool(workers: int, scheduler: str | None):
    """``(executor, kind, kit_transport)``: a local process pool, or a Dask cluster's executor."""
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise GradingSetupError("--scheduler needs Dask distributed: pip install distributed") from None
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as error:
            raise GradingSetupError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
        try:
            yield client.get_executor(pure=False), f"dask ({scheduler})", client
        finally:
            client.close()
    else:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
        try:
            yield pool, f"process pool ({workers})", None
        finally:
            pool.shutdown(cancel_futures=True)


# --- the coordinator --------------------------------------------------------------------------------


def _notes(records: Iterable[dict]) -> list[str]:
    """What went wrong in a submission's execution, one short note per cell (tagged or empty cells that
    were skipped on purpose are not worth a note)."""
    words = {"timeout": "ran past its time limit", "died": "killed the kernel", "not_run": "was not run"}
    notes = [f"cell {r['index']} {words[r['status']]}" for r in records if r.get("status") in words]
    dropped = sum(r.get("dropped_bytes", 0) or 0 for r in records)
    if dropped:
        notes.append(f"{dropped} bytes of output dropped")
    return notes


def grade_class(root: Path, assignment: str, *, students: list[str] | None = None, regrade: Iterable[str] = (),
                workers: int = 2, scheduler: str | None = None, unsandboxed: bool = False, policy=None,
                feedback: bool = True, progress: bool = True) -> ClassReport:
    """Grade every submission of ``assignment`` in ``root/submitted/`` (see the module docstring)."""
    from compresslib.grading.fixtures import hidden_inputs
    from compresslib.grading.nbgrader_plugins import grading_policy
    from compresslib.grading.sandbox import availability

    root = Path(root).resolve()
    start = time.perf_counter()
    released = _released_notebooks(root, assignment)
    if not released:
        raise GradingSetupError(f"{assignment} is not in the gradebook: release it first "
                                f"(`nbgrader generate_assignment {assignment}` or `make release`)")
    if workers < 1:
        raise GradingSetupError(f"--workers must be at least 1, got {workers}")
    if not unsandboxed:
        status = availability()
        if not status:
            raise GradingSetupError(f"the grading sandbox does not work here ({status.reason}). Install bubblewrap "
                                    "(apt-get install bubblewrap) and allow user namespaces, or pass --unsandboxed "
                                    "to grade trusted submissions without it")
    policy = (policy or grading_policy()).to_dict()
    regrade = set(regrade)
    all_students = sorted(p.name for p in (root / "submitted").iterdir()
                          if (p / assignment).is_dir()) if (root / "submitted").is_dir() else []
    unknown = sorted(set(students or []) - set(all_students)) + sorted(regrade - set(all_students))
    if unknown:
        raise GradingSetupError(f"no submission of {assignment} from {unknown} in {root / 'submitted'}")
    students = sorted(students or all_students)

    already = steps.scores(root, assignment) if (root / "gradebook.db").exists() else {}
    config = course_config(root)
    outcomes: dict[str, Outcome] = {}
    todo: dict[str, dict[str, nbformat.NotebookNode]] = {}
    sanitizing: dict[str, float] = {}
    for student in students:
        if student not in regrade and student in already and steps.is_graded(root, student, assignment, released):
            outcomes[student] = Outcome(student, "skipped", already[student].score, already[student].max_score)
            continue
        try:
            started = time.perf_counter()
            notebooks = submitted_notebooks(root, student, assignment, released)
            todo[student] = {path.stem: sanitize(root, config, assignment, student, path) for path in notebooks}
            sanitizing[student] = time.perf_counter() - started
        except Exception as error:  # a malformed notebook costs only its own student
            outcomes[student] = Outcome(student, "failed", error=f"{type(error).__name__}: {error}")

    staging = root / "build" / "grading-staging"
    kit = grading_kit(root, assignment)
    inputs_json = json.dumps(hidden_inputs(assignment))
    api = _api(root, replay_config(root, staging))
    # nbgrader's gradebook, used in-process, makes SQLAlchemy warn about objects it adds lazily; harmless.
    warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session")
    with worker_pool(workers, scheduler) as (executor, kind, client):
        kit_argument = client.scatter(kit_archive(kit), broadcast=True) if client is not None else str(kit)
        futures = {}
        for student, notebooks in todo.items():
            for name, nb in notebooks.items():
                future = executor.submit(execute_submission, assignment, nbformat.writes(nb), kit_argument,
                                         inputs_json, policy, unsandboxed)
                futures[future] = (student, name, time.perf_counter())
        results: dict[str, dict[str, dict]] = {s: {} for s in todo}
        bar = tqdm(total=len(futures), desc=f"grading {assignment}", unit="notebook", disable=not progress)
        for future in as_completed(futures):
            student, name, submitted = futures[future]
            bar.update(1)
            try:
                results[student][name] = future.result()
            except Exception as error:
                outcomes[student] = Outcome(student, "failed", error=f"execution failed: {type(error).__name__}: {error}")
                continue
            if len(results[student]) == len(todo[student]) and student not in outcomes:
                try:
                    outcome = _record(root, api, assignment, student, results[student], staging, feedback)
                except Exception as error:  # one student's results that nbgrader cannot take never stop the batch
                    outcomes[student] = Outcome(student, "failed", error=f"recording the grades failed: "
                                                f"{type(error).__name__}: {str(error)[:500]}")
                    continue
                outcome.seconds = sum(r.get("seconds", 0.0) for r in results[student].values())
                outcome.timings["sanitize"] = round(sanitizing.get(student, 0.0), 3)
                for result in results[student].values():
                    for key, value in (result.get("timings") or {}).items():
                        outcome.timings[key] = round(outcome.timings.get(key, 0.0) + value, 3)
                outcomes[student] = outcome
        bar.close()
    steps.export_grades(root)
    return ClassReport(assignment, outcomes, time.perf_counter() - start, workers, kind, not unsandboxed)


def _record(root: Path, api, assignment: str, student: str, executed: dict[str, dict], staging: Path,
            feedback: bool) -> Outcome:
    """Stage the executed notebooks, autograde them in this process (the one gradebook writer), feedback."""
    from compresslib.grading.nbgrader_plugins import annotate

    folder = staging / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    notes, timings = [], {}
    for name, result in executed.items():
        nb = annotate(nbformat.reads(result["notebook"], as_version=4), result["cells"])
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
        notes += _notes(result["cells"])
    started = time.perf_counter()
    done = api.autograde(assignment, student, force=True, create=True)
    timings["autograde"] = round(time.perf_counter() - started, 3)
    if not done.get("success"):
        return Outcome(student, "failed", notes=notes, error=_last_lines(done.get("error") or done.get("log")),
                       timings=timings)
    if feedback:
        started = time.perf_counter()
        written = api.generate_feedback(assignment, student, force=True)
        timings["feedback"] = round(time.perf_counter() - started, 3)
        if not written.get("success"):
            notes.append("feedback failed: " + _last_lines(written.get("error") or written.get("log")))
    result = steps.scores(root, assignment).get(student)
    return Outcome(student, "graded", result.score if result else None, result.max_score if result else None,
                   notes=notes, timings=timings)


def _last_lines(text: str | None, n: int = 12) -> str:
    return "\n".join((text or "").strip().splitlines()[-n:])


def score_table(root: Path, assignment: str, failed: dict[str, str] | None = None) -> str:
    """A plain-text table: one row per student, one column per graded test cell, and the total."""
    results = steps.scores(root, assignment)
    if not results:
        return f"{assignment}: no graded submissions"
    columns = sorted({name for r in results.values() for name in r.cells}, key=_cell_order(results))
    header = ["student", *[c.removeprefix("test_") for c in columns], "total"]
    rows = []
    for student, result in sorted(results.items()):
        cells = [f"{result.cells[c].score:g}/{result.cells[c].max_score:g}" if c in result.cells else "-" for c in columns]
        rows.append([student, *cells, f"{result.score:g}/{result.max_score:g}"])
    for student, reason in sorted((failed or {}).items()):
        rows.append([student, *["-"] * len(columns), "not graded (see below)"])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = lambda row: "  ".join(str(v).ljust(w) for v, w in zip(row, widths))  # noqa: E731
    return "\n".join([f"== {assignment} ==", line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _cell_order(results):
    order = []
    for result in results.values():
        for name in result.cells:
            if name not in order:
                order.append(name)
    return order.index
