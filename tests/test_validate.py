"""Validate says "Success!" only for a notebook that ran cleanly: nbgrader 0.9.6's own validator passes a
notebook whose ungraded cell raised, was interrupted or timed out; compresslib.student.validate does not.
Each case is a small nbgrader notebook run in a real kernel, by the stock and by the strict validator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.validator import Validator
from traitlets.config import Config

from compresslib.student.validate import StrictValidator, passed
from student_kit import QUICK_UNDER_VALIDATE, validation_notebook

pytestmark = pytest.mark.slow

KIT_CONFIG = (Path(__file__).resolve().parents[1] / "compresslib" / "course" / "student_kit_template" / "environment"
              / "etc" / "jupyter" / "nbgrader_config.py")
TIMEOUT_S = 3


def graded_notebook(experiment: str) -> nbformat.NotebookNode:
    """A passing graded test cell, then an ungraded cell running ``experiment``."""
    return validation_notebook('print("visible tests passed")', experiment)


CASES = {
    "raises": ("raise ValueError('the sweep broke')", "ValueError"),
    "interrupted": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    "times out": ("import time\ntime.sleep(120)", "CellTimeoutError"),
}


def _write(tmp_path: Path, name: str, nb) -> Path:
    path = tmp_path / f"{name.replace(' ', '_')}.ipynb"
    nbformat.write(nb, str(path))
    return path


def _config() -> Config:
    config = Config()
    config.Execute.timeout = TIMEOUT_S
    return config


@pytest.mark.parametrize("case", CASES)
def test_strict_validator_fails_an_ungraded_cell_that_did_not_finish(tmp_path, case):
    """A graded test that passes does not make a notebook valid when another cell raised, was
    interrupted, or ran past the timeout: the strict validator lists that cell with its error,
    where nbgrader's validator reports success."""
    experiment, error = CASES[case]
    path = _write(tmp_path, case, graded_notebook(experiment))
    assert passed(Validator(config=_config()).validate(str(path))), "nbgrader 0.9.6 no longer misses this: drop the wrapper?"
    results = StrictValidator(config=_config()).validate(str(path))
    assert not passed(results)
    [failure] = results["failed"]
    assert failure["source"] == experiment and error in failure["raw_error"]


def test_strict_validator_passes_warnings_and_stderr(tmp_path):
    """Honest code warns: stderr output in an ungraded cell does not fail validation."""
    nb = graded_notebook("import sys, warnings\nwarnings.warn('slow on a CPU')\nprint('note', file=sys.stderr)")
    assert passed(StrictValidator(config=_config()).validate(str(_write(tmp_path, "warns", nb))))


def test_strict_validator_still_fails_a_failing_test(tmp_path):
    nb = validation_notebook("assert 1 == 2, 'did you drop the T^2 factor?'", "x = 1")
    results = StrictValidator(config=_config()).validate(str(_write(tmp_path, "wrong", nb)))
    assert [f["source"] for f in results["failed"]] == [nb.cells[0].source]
    assert "T^2" in results["failed"][0]["raw_error"]


def _cli(path: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COMPRESSLIB_PROFILE"}
    env["COMPRESSLIB_VALIDATE_TIMEOUT"] = str(TIMEOUT_S)
    return subprocess.run([sys.executable, "-m", "compresslib.student.validate", str(path)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_with_the_kits_config_fails_a_cell_past_the_timeout(tmp_path):
    """`python -m compresslib.student.validate` (the kit's `make validate`) reads the kit's nbgrader config
    (its Execute.timeout from COMPRESSLIB_VALIDATE_TIMEOUT), names the cell that ran too long, and exits 1."""
    shutil.copy(KIT_CONFIG, tmp_path / "nbgrader_config.py")
    done = _cli(_write(tmp_path, "sleeps", graded_notebook(CASES["times out"][0])), tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "VALIDATION FAILED ON 1 CELL(S)" in done.stdout and "CellTimeoutError" in done.stdout
    assert f"Timeout waiting for execute reply ({TIMEOUT_S}s)" in done.stderr


def test_cli_validates_at_the_quick_profile_without_any_config(tmp_path):
    """Outside any course folder and without COMPRESSLIB_PROFILE, a notebook under Validate runs at the
    quick size (nbgrader sets NBGRADER_EXECUTION; notebook_profile reads it), and the CLI exits 0."""
    nb = validation_notebook(QUICK_UNDER_VALIDATE, "print('an experiment')")
    done = _cli(_write(tmp_path, "profile", nb), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success! Your notebook passes all the tests." in done.stdout
