"""Recorders of the grading fixtures, one module per assignment, behind one command:

    python -m compresslib.grading.record [ASSIGNMENT ...]

Each module's ``record()`` returns the fixture's ``note`` and ``tests`` (see
:mod:`compresslib.grading.fixtures` for the schema); this package adds the provenance and writes
``compresslib/grading/fixtures/<assignment>.json``.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from compresslib.grading.fixtures import FIXTURES_DIR, fixture_path

RECORDERS = {
    "01_soft_targets": "compresslib.grading.record.soft_targets",
    "02_distilbert_student": "compresslib.grading.record.distilbert_student",
    "03_lottery_tickets": "compresslib.grading.record.lottery_tickets",
    "04_precision_rank_sharing": "compresslib.grading.record.precision_rank_sharing",
}


def provenance(assignment: str, note: str) -> dict:
    return {
        "command": f"python -m compresslib.grading.record {assignment}",
        "recorded": time.strftime("%Y-%m-%d"),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "note": note,
    }


def record(assignment: str) -> dict:
    """The fixture of ``assignment``, recorded now."""
    if assignment not in RECORDERS:
        raise ValueError(f"no recorder for {assignment!r}; known: {', '.join(sorted(RECORDERS))}")
    recorded = importlib.import_module(RECORDERS[assignment]).record()
    return {"provenance": provenance(assignment, recorded["note"]), "tests": recorded["tests"]}


def write_fixture(assignment: str, directory: Path = FIXTURES_DIR) -> Path:
    payload = record(assignment)
    path = fixture_path(assignment, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path
