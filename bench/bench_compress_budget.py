"""Projected wall time of a ``compress`` profile, from CPU-seconds measured per unit of its work.

    .venv/bin/python bench/bench_compress_budget.py --profile cpu [--threads 1]

On a shared machine a full run's wall time says little, but the CPU-seconds (``time.process_time``) of a
training step, an evaluation of the test split and a build, measured at one thread, do not depend much
on the other jobs. This bench measures each unit once on the profile's data and models (the pre-trained
teacher and student: the same shapes as the fine-tuned ones), counts how many of each the profile does
(from its fields and :func:`compresslib.runs.compress_recipes.variants`, as
:func:`compresslib.runs.compress.execute` does them), and prints the projected total for one core.
The latency stage is not counted (a few minutes: every variant, ``latency_rounds`` x
``latency_repeats`` passes over one batch). Measured under load, the units come out slower (shared
caches), so the projection errs long.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from compresslib.distill import init_student_from_teacher
from compresslib.models import load_classifier
from compresslib.runs import compress
from compresslib.runs import compress_recipes as recipes


def cpu_seconds(fn) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


def units(exp: compress.Experiment, model, steps: int = 8) -> dict[str, float]:
    """CPU-seconds of one training step, one evaluation of the test and validation splits (fp32 and int8),
    and the 4-bit and low-rank builds of ``model``."""
    p = exp.profile
    out = {"step": cpu_seconds(lambda: exp.finetune(model, seed=0, lr=p.lr_grid[0], steps=steps, desc="steps")) / steps}
    out["test"] = cpu_seconds(lambda: exp.evaluate(model.eval()))
    out["validation"] = cpu_seconds(lambda: exp.evaluate(model.eval(), "validation"))
    int8 = recipes.int8_model(model, quantize_embeddings=p.quantize_embeddings)
    out["test int8"] = cpu_seconds(lambda: exp.evaluate(int8))
    out["4-bit build"] = cpu_seconds(lambda: recipes.four_bit_models(model, quantize_embeddings=p.quantize_embeddings))
    out["low-rank build"] = cpu_seconds(lambda: recipes.low_rank_model(model, min(p.ranks)))
    return out


def per_seed(exp: compress.Experiment, u: dict[str, float], *, logits_snippets: int) -> float:
    """CPU-seconds of one seed of one model: its training, validation, the teacher logits it provides
    (``logits_snippets`` training snippets forward), and every variant's build, recovery and test evaluation."""
    p = exp.profile
    steps = math.ceil(p.epochs * math.ceil(len(exp.train) / p.batch_size))
    total = steps * u["step"] + u["validation"] + u["test"] * logits_snippets / len(exp.test)
    for v in exp.variants:
        int8 = v.name == "int8" or v.kind == recipes.PRUNING_INT8
        total += u["test int8"] if int8 else u["test"]
        if v.kind == recipes.PRECISION and v.dtype is None and not int8:
            total += u["4-bit build"]
        if v.kind == recipes.LOW_RANK:
            total += u["low-rank build"]
        if v.finetune:
            total += p.recovery_steps * u["step"]
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", choices=sorted(compress.PROFILES))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    p = compress.PROFILES[args.profile]
    exp = compress.Experiment(p, Path("/tmp/bench_compress_budget"), torch.device("cpu"))
    teacher = load_classifier(p.teacher_model, num_labels=exp.num_labels, seed=0)
    student = init_student_from_teacher(load_classifier(p.teacher_model, num_labels=exp.num_labels, seed=0),
                                        "every_other")
    measured = {"teacher": units(exp, teacher), "student": units(exp, student)}
    for role, u in measured.items():
        print(f"{role}: " + ", ".join(f"{k} {v:.2f} s" for k, v in u.items()))
    kd = p.student_loss == "kd"
    seed = {"teacher": per_seed(exp, measured["teacher"], logits_snippets=len(exp.train) if kd else 0),
            "student": per_seed(exp, measured["student"], logits_snippets=0)}
    extra = len(p.lr_grid) - 1  # more learning rates: a teacher and a student more, trained and validated
    steps = math.ceil(p.epochs * math.ceil(len(exp.train) / p.batch_size))
    grid = extra * sum(steps * measured[r]["step"] + measured[r]["validation"] for r in seed)
    total = len(p.seeds) * sum(seed.values()) + grid
    print(f"{p.name}: per seed teacher {seed['teacher'] / 60:.1f} min + student {seed['student'] / 60:.1f} min "
          f"(CPU-seconds at {args.threads} thread(s)); {len(p.seeds)} seeds + lr grid: {total / 60:.1f} min on one "
          f"core, latency stage not counted; the test split has {len(exp.test)} snippets, "
          f"{len(exp.variants)} variants per model")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
