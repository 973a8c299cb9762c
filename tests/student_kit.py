"""Build the student kit and install it, offline, into a fresh virtual environment (for the browser tests).

The environment reuses this checkout's third-party packages (a ``.pth`` line pointing at ``.venv``'s
site-packages, plus links to its Jupyter data) so that installing takes seconds; the kit's own
``compresslib`` and Jupyter settings are installed by the kit's Makefile (``make install``), offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
from nbgrader.tests import create_grade_cell, create_regular_cell

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "compresslib" / "course" / "student_kit_template"


def build_student_kit(out_dir: Path, unlock: tuple[str, ...] = ()) -> Path:
    """The student kit, written to ``out_dir`` by ``python -m compresslib.course student-kit --out DIR``
    (which also scans it and fails on any answer key left inside)."""
    command = [sys.executable, "-m", "compresslib.course", "student-kit", "--out", str(out_dir)] + \
        [f"--unlock={a}" for a in unlock]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return out_dir


def fresh_environment(path: Path) -> Path:
    """A new virtual environment at ``path`` that sees this checkout's third-party packages (a .pth line)
    and Jupyter data (links), but not its editable ``compresslib``; returns its python.

    Its ``etc/jupyter`` is a copy of ``.venv``'s (nbgrader's own settings included, which enable every
    nbgrader extension), so that the kit's settings are tested against what a real install has."""
    venv.EnvBuilder(with_pip=False).create(path)
    python = path / "bin" / "python"
    # .venv's site-packages (and the system's, where .venv sees a CUDA torch there), as plain path lines:
    # the checkout's own .pth files (its editable compresslib) are not processed.
    ours = [entry for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))]
    theirs = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                          text=True).strip())
    (theirs / "checkout-packages.pth").write_text("".join(f"{entry}\n" for entry in ours))
    share, lab = Path(sys.prefix) / "share" / "jupyter", path / "share" / "jupyter" / "lab"
    lab.mkdir(parents=True)
    for entry in share.iterdir():
        if entry.name != "lab":
            (lab.parent / entry.name).symlink_to(entry)
    for entry in (share / "lab").iterdir():  # the kit writes settings/ here: keep .venv's own untouched
        (lab / entry.name).symlink_to(entry)
    shutil.copytree(Path(sys.prefix) / "etc" / "jupyter", path / "etc" / "jupyter", symlinks=False)
    # The kit's Makefile installs third-party packages once and stamps it; here they come from the .pth line.
    (path / ".third-party-installed").touch()
    return python


def install_kit(kit: Path, environment: Path) -> str:
    """``make install`` in the kit with ``VENV=environment``: its compresslib and Jupyter settings, offline."""
    done = subprocess.run(["make", "install", f"VENV={environment}"], cwd=kit, capture_output=True, text=True,
                          env=dict(os.environ, PIP_NO_INDEX="1"))
    if done.returncode != 0:
        raise RuntimeError(f"make install in the student kit failed:\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


# A graded test that passes only when the notebook runs at the quick size (as it must under Validate).
QUICK_UNDER_VALIDATE = ("from compresslib.profiles import notebook_profile\n"
                        "assert notebook_profile() == 'quick', notebook_profile()")


def validation_notebook(test: str, experiment: str) -> nbformat.NotebookNode:
    """A small nbgrader notebook for the Validate checks: a graded test cell running ``test`` (1 point),
    then an ungraded cell running ``experiment``."""
    cells = [create_grade_cell(test, "code", "test", 1), create_regular_cell(experiment, "code")]
    for index, cell in enumerate(cells):
        cell.id = f"cell-{index}"
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
