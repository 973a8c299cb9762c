"""Where every file of a reference run lives: one function per path, nothing else.

Layout (the root is ``$COMPRESSLIB_RUNS``, default ``runs``)::

    <root>/<run>/                        the run's folder (``--out``): the latest results.json, results.md, *.png
    <root>/<run>/<profile>/              one profile's results and every intermediate part (resumable)
    docs/results/<run>/                  the copy the README shows (results.json, results.md, *.png)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def runs_root() -> Path: return Path(os.environ.get("COMPRESSLIB_RUNS", "runs"))


def run_dir(run: str) -> Path: return runs_root() / run


def profile_dir(run_folder, profile: str) -> Path: return Path(run_folder) / profile


def results_json(folder) -> Path: return Path(folder) / "results.json"


def results_md(folder) -> Path: return Path(folder) / "results.md"


def figure(folder, name: str) -> Path: return Path(folder) / f"{name}.png"


def docs_results(run: str) -> Path: return REPOSITORY / "docs" / "results" / run


def readme() -> Path: return REPOSITORY / "README.md"


def slug(name: str) -> str: return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


# --- distillation parts


def teacher_dir(folder) -> Path: return Path(folder) / "teacher"


def teacher_seed_dir(folder, seed: int) -> Path: return Path(folder) / "teachers" / f"seed{seed}"


def teacher_seed_json(folder, seed: int) -> Path: return Path(folder) / "teachers" / f"seed{seed}.json"


def teacher_json(folder) -> Path: return Path(folder) / "teacher.json"


def teacher_outputs(folder) -> Path: return Path(folder) / "teacher_outputs.pt"


def student_json(folder, arm: str, seed: int) -> Path: return Path(folder) / "students" / f"{slug(arm)}__seed{seed}.json"


def timing_json(folder) -> Path: return Path(folder) / "timing.json"


# --- lottery-ticket parts


def seed_dir(folder, seed: int) -> Path: return Path(folder) / f"seed{seed}"


def imp_dir(folder, seed: int) -> Path: return seed_dir(folder, seed) / "imp"


def branch_dir(folder, seed: int, branch: str) -> Path: return seed_dir(folder, seed) / branch


def baseline_json(folder, seed: int, method: str, r: int) -> Path: return seed_dir(folder, seed) / f"{method}_round{r:02d}.json"


def tuning_json(folder, lr: float, steps: int, seed: int) -> Path: return Path(folder) / "tuning" / f"lr{lr:g}_steps{steps}_seed{seed}.json"


def costs_json(folder) -> Path: return Path(folder) / "inference_costs.json"


def heads_json(folder) -> Path: return Path(folder) / "heads.json"


# --- compression parts


def base_dir(folder, seed: int, role: str, lr: float) -> Path: return seed_dir(folder, seed) / f"{role}_lr{lr:g}"


def base_json(folder, seed: int, role: str, lr: float) -> Path: return seed_dir(folder, seed) / f"{role}_lr{lr:g}.json"


def teacher_logits(folder, seed: int) -> Path: return seed_dir(folder, seed) / "teacher_logits.pt"


def variant_json(folder, seed: int, role: str, variant: str) -> Path: return seed_dir(folder, seed) / role / f"{slug(variant)}.json"


def pruned_state(folder, seed: int, role: str, sparsity: float) -> Path:
    return seed_dir(folder, seed) / role / f"pruned{round(1000 * sparsity):04d}.safetensors"


def pruned_mask(folder, seed: int, role: str, sparsity: float) -> Path:
    return seed_dir(folder, seed) / role / f"pruned{round(1000 * sparsity):04d}.mask.safetensors"


def selection_json(folder, role: str) -> Path: return Path(folder) / f"selection_{role}.json"


def latency_json(folder) -> Path: return Path(folder) / "latency.json"
