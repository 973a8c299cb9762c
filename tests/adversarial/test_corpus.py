"""The adversarial corpus through the real grading path: every entry of tests/adversarial/*.py is a
submission, graded with the others of its assignment in ONE ``grade_class`` call (2 workers, short cell
timeout), in a course folder full of canaries, watched by inotify, with a TCP server on the host's
loopback. Each entry gets exactly the score it states; the batch completes; nothing outside the
sandboxes' scratch was changed or read; no connection reached the host; nothing is left running.

Run it with ``-s`` to see the timing of each batch and the attacks the kit does not stop.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from adversarial import (bombs, cells, crashes, forged, honest, ipython, leftovers, lying, oracle, patching, reads,
                         reference)
from adversarial.attack import Attack, Context
from compresslib.course.grade import ClassReport, grade_class
from compresslib.course.student_kit import grading_kit
from compresslib.grading.nbgrader_plugins import grading_policy
from compresslib.grading.sandbox import availability
from course_kit import (ROOT, autograded, cell_scores, cell_text, feedback_path, feedback_text, graded_points,
                        new_course, write_submission)
from hostile import CANARY, Inotify, LoopbackServer, processes_with

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not availability(), reason=f"cannot sandbox here: {availability().reason}")]

MODULES = (reference, reads, patching, lying, ipython, forged, oracle, cells, crashes, bombs, leftovers, honest)
ENTRIES: list[Attack] = [entry for module in MODULES for entry in module.ENTRIES]
ASSIGNMENTS = sorted({entry.assignment for entry in ENTRIES})
# A short cell timeout (the slowest honest cell, the imports, takes about 11 s on a loaded 2-core machine),
# and a memory limit well above what the notebooks use (0.44 GB of data) but small enough for a bomb.
POLICY = grading_policy(cell_timeout=45, notebook_timeout=400, memory_gb=1.5)
GRADING_OUTPUTS = ("autograded", "feedback", "gradebook.db", "grades.csv", "build/grading-staging",
                   "build/grading-report")


def _check_names():
    names = [entry.name for entry in ENTRIES]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"two corpus entries share a student name: {duplicates}"


_check_names()


@dataclass
class Batch:
    root: Path
    reports: dict[str, ClassReport]
    seconds: dict[str, float]
    canaries: list[Path]
    events: list[str]
    connections: int
    marker: str
    before: dict[str, tuple]
    after: dict[str, tuple]
    library_before: dict[str, tuple]
    library_after: dict[str, tuple]
    venv_changes: list[str]
    survivors: list[int] = field(default_factory=list)
    host_files: list[str] = field(default_factory=list)


def _snapshot(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Every file and folder under ``folder`` (except ``skip`` prefixes): mode, size, content hash."""
    found = {}
    for path in sorted([folder, *folder.rglob("*")]):
        relative = str(path.relative_to(folder))
        if any(relative == s or relative.startswith(s.rstrip("/") + "/") or relative.startswith(s) for s in skip):
            continue
        if "__pycache__" in path.parts:
            continue
        stat = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
        found[relative] = (stat.st_mode, stat.st_size, digest)
    return found


def _plant_canaries(root: Path, canary: str) -> list[Path]:
    """Canary files where a student must never look, readable by anyone on the host (only the sandbox
    stands in the way), and the canary in the gradebook."""
    paths = [root / "canary-secret.txt", root / "solutions" / ASSIGNMENTS[0] / "canary_answers.py",
             root / "submitted" / "bystander" / "02_distilbert_student" / "notes.txt",
             root / "compresslib" / "grading" / "fixtures" / "canary.json"]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{canary} {path.relative_to(root)}\n")
    with sqlite3.connect(root / "gradebook.db") as db:
        db.execute("CREATE TABLE canary (secret TEXT)")
        db.execute("INSERT INTO canary VALUES (?)", (canary,))
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)
    return paths


def _host_leftovers(marker: str) -> list[str]:
    found = []
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        found += [f"{folder}/{n}" for n in names if marker in n or n in ("planted.py", "from-the-past")]
    return found


@pytest.fixture(scope="module")
def batch():
    marker = f"corpus{secrets.token_hex(6)}"
    root = Path(tempfile.mkdtemp(prefix="corpus-course-", dir="/tmp"))
    root.chmod(0o755)
    try:
        new_course(root, ASSIGNMENTS)
        canaries = _plant_canaries(root, CANARY)
        for assignment in ASSIGNMENTS:
            grading_kit(root, assignment)  # built before the snapshot: the kits must not change either
        with LoopbackServer() as server:
            context = Context(root, canaries, CANARY, server.port, marker)
            for entry in ENTRIES:
                write_submission(root, entry.name, entry.assignment, entry.build(context))
            before = _snapshot(root, GRADING_OUTPUTS)
            library_before = _snapshot(ROOT / "compresslib")
            stamp = root / "build" / "stamp"
            stamp.touch()
            time.sleep(0.01)
            watched = sorted({p.parent for p in canaries})
            reports, seconds = {}, {}
            with Inotify(watched) as watch:
                for assignment in ASSIGNMENTS:
                    started = time.perf_counter()
                    reports[assignment] = grade_class(root, assignment, workers=2, policy=POLICY, progress=False)
                    seconds[assignment] = time.perf_counter() - started
                    count = len(reports[assignment].outcomes)
                    print(f"\n[timing] corpus {assignment}: {count} submissions in {seconds[assignment]:.1f} s "
                          f"({seconds[assignment] / count:.1f} s each, 2 workers)")
                events = [e for e in watch.events() if any(e.endswith("/" + p.name) for p in canaries)]
            for entry in ENTRIES:
                if entry.unprotected:
                    print(f"\n[unprotected] {entry.name}: {entry.what}\n  -> {entry.unprotected}")
            stamp_path = str(stamp)
            changed = subprocess.run(["find", str(ROOT / ".venv"), "-newer", stamp_path, "-not", "-path", "*__pycache__*"],
                                     capture_output=True, text=True).stdout.split()
            yield Batch(root, reports, seconds, canaries, events, server.connections, marker, before,
                        _snapshot(root, GRADING_OUTPUTS + ("build/stamp",)), library_before,
                        _snapshot(ROOT / "compresslib"), changed, processes_with(marker), _host_leftovers(marker))
    finally:
        if not os.environ.get("KEEP_CORPUS"):
            shutil.rmtree(root, ignore_errors=True)


def _outputs_text(root: Path, student: str, assignment: str) -> str:
    """Every output of every code cell of the graded notebook, as text."""
    return "\n".join(o.get("text", "") + o.get("evalue", "") + "".join(o.get("traceback", []))
                     + str(o.get("data", {}).get("text/plain", ""))
                     for c in autograded(root, student, assignment).cells for o in c.get("outputs", []))


@pytest.mark.parametrize("attack", ENTRIES, ids=[e.name for e in ENTRIES])
def test_attack_gets_exactly_its_outcome(batch, attack):
    outcome = batch.reports[attack.assignment].outcomes[attack.name]
    if attack.failed:
        assert outcome.status == "failed", f"{attack.name} was graded: {cell_scores(batch.root, attack.assignment, attack.name)}"
        assert re.search(attack.failed, outcome.error or ""), outcome.error
        assert cell_scores(batch.root, attack.assignment, attack.name) == {}
        return
    assert outcome.status == "graded", f"{attack.name} was not graded: {outcome.error}"
    expected = {**graded_points(batch.root, attack.assignment), **attack.lost}
    assert cell_scores(batch.root, attack.assignment, attack.name) == expected, outcome.notes
    graded_nb = autograded(batch.root, attack.name, attack.assignment)
    for test, pattern in attack.feedback.items():
        assert re.search(pattern, cell_text(graded_nb, test)), f"{test}: {cell_text(graded_nb, test)[-600:]}"
    page_text = feedback_text(batch.root, attack.name, attack.assignment)
    for test, pattern in attack.feedback.items():
        assert re.search(pattern, page_text), f"the feedback page does not show {pattern!r} for {test}"
    outputs = _outputs_text(batch.root, attack.name, attack.assignment)
    for pattern in attack.present:
        assert re.search(pattern, outputs), f"no evidence that the attack ran ({pattern!r}):\n{outputs[-3000:]}"
    for pattern in attack.absent:
        assert not re.search(pattern, outputs), pattern
    page = feedback_path(batch.root, attack.name, attack.assignment).read_text()
    for pattern in attack.inert:
        assert not re.search(pattern, page), f"active content {pattern!r} in the feedback page"


def test_the_batches_complete_with_an_outcome_for_every_submission(batch):
    for assignment, report in batch.reports.items():
        names = {entry.name for entry in ENTRIES if entry.assignment == assignment}
        assert set(report.outcomes) == names
        assert report.sandboxed and report.workers == 2


def test_canaries_are_never_opened_nor_shown(batch):
    assert batch.events == [], batch.events
    for folder in ("autograded", "feedback", "build"):
        for path in (batch.root / folder).rglob("*"):
            if path.is_file() and "grading-kits" not in path.parts:
                assert CANARY.encode() not in path.read_bytes(), f"the canary reached {path}"
    assert CANARY not in (batch.root / "grades.csv").read_text()


def test_nothing_outside_the_scratch_changed(batch):
    changed = {k for k in set(batch.before) | set(batch.after) if batch.before.get(k) != batch.after.get(k)}
    assert not changed, sorted(changed)[:20]
    assert batch.library_before == batch.library_after
    assert batch.venv_changes == [], batch.venv_changes[:20]


def test_no_connection_reaches_the_host(batch):
    assert batch.connections == 0


def test_nothing_is_left_running_or_lying_on_the_host(batch):
    assert batch.survivors == [], [Path(f"/proc/{p}/cmdline").read_text() for p in batch.survivors]
    assert batch.host_files == []
