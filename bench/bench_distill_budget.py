"""CPU seconds of each kind of work in the distillation run, and the run's estimated wall time alone.

``python bench/bench_distill_budget.py [--profile cpu] [--steps 12]``

On a shared machine a wall time says more about the neighbours than about the run. With one torch thread,
the *CPU time* of the process (``time.process_time``) is close to the wall time it would take alone on one
core, whatever else runs. This script measures the CPU seconds per optimizer step of a teacher, a hard-label
student and a transfer-set KD student (two batches per step), and per evaluated snippet, at the profile's
sizes, then multiplies by the profile's plan (:func:`compresslib.runs.distill.main_arms`): the estimate of the
whole run alone with one thread (two threads on an idle 2-core machine are faster still).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from compresslib.models import freeze_word_embeddings, load_classifier
from compresslib.runs import distill
from compresslib.training import StreamLoader, fit, make_loader, predict_logits_by_length


def cpu_seconds(work) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", choices=sorted(distill.PROFILES))
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps timed per kind of step")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    profile = distill.PROFILES[args.profile]
    tokenizer, data = distill.prepare_data(profile)
    device = torch.device("cpu")
    n_train, n = len(data["train"]), args.steps
    logits = torch.randn(n_train, 2)
    transfer = distill.with_teacher_logits(distill.unlabelled(data["train"]), logits)

    teacher = load_classifier(profile.model, num_labels=2, seed=0)
    freeze_word_embeddings(teacher, profile.freeze_word_embeddings)
    loader = StreamLoader({"": make_loader(data["train"], tokenizer, batch_size=profile.batch_size, shuffle=True,
                                           seed=0, group_by_length=True)}, steps=n)
    per_step = {"teacher": cpu_seconds(lambda: fit(teacher, loader, epochs=1, lr=profile.lr, desc="teacher")) / n}
    for name, arm in (("hard", distill.Arm("every other", "250", "hard")),
                      ("kd, transfer set", distill.Arm("every other", "250", "kd", 2.0, 0.5)),
                      ("kd, all labels", distill.Arm("every other", distill.ALL, "kd", 2.0, 0.5)),
                      ("soft only", distill.Arm("every other", "0", "soft", 2.0, 0.0))):
        student = distill.make_student(arm.init, 0, profile, device)
        batches, step, _ = distill.student_loader(arm, 0, profile=profile, tokenizer=tokenizer, train=data["train"],
                                                  transfer=transfer, logits=logits, steps=n)
        per_step[name] = cpu_seconds(lambda: fit(student, batches, epochs=1, lr=profile.lr, step=step, desc=name)) / n
    evaluate = {}
    for name, model in (("teacher", teacher), ("student", student)):
        evaluate[name] = cpu_seconds(lambda: predict_logits_by_length(
            model, data["test"], tokenizer, batch_size=profile.eval_batch_size, device=device)) / len(data["test"])
    for name, seconds in per_step.items():
        print(f"CPU seconds per step, {name}: {seconds:.3f}")
    for name, seconds in evaluate.items():
        print(f"CPU milliseconds per evaluated snippet, {name}: {1000 * seconds:.2f}")

    steps = profile.student_steps or math.ceil(n_train / profile.batch_size)
    teacher_steps = math.ceil(profile.teacher_epochs * math.ceil(n_train / profile.batch_size))
    n_val, n_test = len(data["validation"]), len(data["test"])
    total = len(profile.teacher_seeds) * (teacher_steps * per_step["teacher"] + (n_val + n_test) * evaluate["teacher"])
    total += n_train * evaluate["teacher"]  # the cached soft targets
    kind = {"hard": "hard", "soft": "soft only"}

    def student_seconds(arm, validate=False):
        name = kind.get(arm.loss) or ("kd, all labels" if arm.labels == distill.ALL else "kd, transfer set")
        return steps * per_step[name] + (n_test + (n_val if validate else 0)) * evaluate["student"]

    runs = 0
    sweep = distill.sweep_arms(profile)
    for arm in sweep:
        total += len(profile.sweep_seeds) * student_seconds(arm, validate=True)
        runs += len(profile.sweep_seeds)
    best = sweep[0]  # any sweep pair: its runs at the sweep seeds are reused
    for name, (arm, seeds) in distill.main_arms(profile, best.temperature, best.alpha).items():
        new = [s for s in seeds if not (arm.name == best.name and s in profile.sweep_seeds)]
        total += len(new) * student_seconds(arm)
        runs += len(new)
    timing = 2 * 5 * 3 * profile.timing_batches * profile.eval_batch_size * (evaluate["teacher"] + evaluate["student"]) / 2
    total += timing
    print(f"profile {profile.name}: {len(profile.teacher_seeds)} teachers of {teacher_steps} steps, {runs} student runs "
          f"of {steps} steps: about {total / 60:.1f} CPU minutes with one thread (model loading not counted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
