"""Reference run: distillation as Hinton et al. and DistilBERT set it up, on the embedded default.

``python -m compresslib.runs distill --profile quick|cpu|gpu``

1. **Teachers.** MiniLM-L6 fine-tuned on the whole training split, one per teacher seed. The students'
   reference teacher is the median one by *validation* accuracy; its logits on the training split are
   cached once.
2. **Students** have half the teacher's depth and start from the *pre-trained* MiniLM, not from the
   fine-tuned teacher (DistilBERT's recipe: one layer out of two, ``every other`` = layers 0, 2, 4), so no
   task knowledge reaches them through the weights. Two more initialisations separate the choice of
   layers from the embeddings: the ``first half`` of the layers (0, 1, 2), and ``random layers`` with the
   pre-trained embeddings. Every student's task head is freshly initialised and its pre-trained word
   embeddings are frozen (``--no-freeze-word-embeddings`` trains them).
3. **Label-scarce setting.** Hard labels for a small subset of the training split (a fresh draw per seed,
   nested across budgets: ``label_budgets``), while KD students also get the teacher's soft targets on the
   *whole* training split as an unlabelled transfer set (:func:`compresslib.distill.cached_transfer_kd_step`:
   ``alpha`` x cross-entropy on a labelled batch + ``(1 - alpha)`` x the T^2-scaled distillation loss on a
   transfer batch; with all labels, one batch carries both, :func:`compresslib.distill.cached_kd_step`).
   Arms: hard labels only, combined (``alpha``), and soft targets only (``alpha = 0``, no label at all).
   Every student takes the same number of optimizer steps (``student_steps``; by default one pass over the
   transfer set): a small labelled set is cycled.
4. **T and alpha** chosen on validation data: KD students at ``sweep_budget`` labels for each pair of
   ``temperatures`` x ``alphas``; the highest mean validation accuracy picks the pair every other KD arm
   uses (the soft-only arm takes its T; test accuracy plays no part in the choice).
5. **Summary** (:func:`summarise`, from ``results.json`` alone): the accuracy-versus-labels curve for hard
   labels and KD (the headline plot, with the majority-class line and seed error bars), the lecture's
   DistilBERT table (parameters, inference time measured interleaved, accuracy, retention raw and as share
   of the teacher's gain over the majority class), and claims paired by seed with McNemar's test on the
   saved per-example test predictions (:mod:`compresslib.runs.claims`).

Files (:mod:`compresslib.runs.paths`): ``runs/distill/<profile>/`` holds ``results.json`` (with provenance),
``results.md``, ``accuracy_vs_labels.png``, ``layer_choice.png`` and every part as soon as it is done
(``teachers/seed<t>/`` and ``teachers/seed<t>.json``, ``teacher/`` (a copy of the reference teacher, which
notebook 02 loads), ``teacher_outputs.pt``, ``students/*.json``, ``timing.json``), so a rerun skips finished
parts; the latest results are copied to ``runs/distill/``.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict
from transformers import AutoModelForSequenceClassification

from compresslib import stats
from compresslib.batches import TEACHER_LOGITS_KEY, TRANSFER_PREFIX
from compresslib.data import load_text_classification, subset
from compresslib.distill import (
    cached_kd_step,
    cached_transfer_kd_step,
    init_student_from_teacher,
    init_student_with_random_layers,
    num_layers_of,
)
from compresslib.models import count_parameters, freeze_word_embeddings, load_classifier, load_tokenizer
from compresslib.runs import paths, report
from compresslib.runs.claims import compare, format_p
from compresslib.runs.common import cached, decode_classes, encode_classes, read_json, seed_everything
from compresslib.runs.hparams import Profile, option
from compresslib.runs.runner import Run, run_main
from compresslib.training import (
    StreamLoader,
    compare_inference_times,
    fit,
    hard_label_step,
    make_loader,
    predict_logits_by_length,
    tokenize,
    with_teacher_logits,
)

ALL = "all"


@dataclass(frozen=True)
class DistillProfile(Profile):
    model: str = option("all-MiniLM-L6-v2", "the pre-trained model: the teacher's start and the students' source")
    dataset: str = option("rotten_tomatoes_polarity", "the embedded default, glue/sst2, or a local folder")
    data_seed: int = option(0, "seed of the training, validation and test subsets")
    train_size: int | None = option(None, "training snippets: the teachers' labels and the students' transfer set "
                                          "(all: the whole split)")
    val_size: int | None = option(None, "validation snippets (all: the whole split)")
    test_size: int | None = option(None, "test snippets (all: the whole split)")
    max_length: int = option(48, "tokens per snippet")
    batch_size: int = option(32, "training batch size (labelled and transfer batches alike)")
    eval_batch_size: int = option(128, "evaluation batch size")
    lr: float = option(1e-4, "peak learning rate of AdamW, teachers and students (10% warm-up, linear decay)")
    freeze_word_embeddings: bool = option(True, "keep the pre-trained word-embedding matrix fixed (every model)")
    teacher_seeds: tuple[int, ...] = option((0, 1, 2), "one teacher per seed; the median by validation accuracy "
                                                       "is the students' reference teacher")
    teacher_epochs: float = option(1.0, "passes of each teacher over the training snippets")
    student_steps: int | None = option(None, "optimizer steps of every student (all: one pass over the transfer "
                                             "set); a smaller labelled set is cycled")
    label_budgets: tuple[str, ...] = option(("250", "1000", ALL), "hard labels the students get: numbers of "
                                                                   "snippets, or all")
    alphas: tuple[float, ...] = option((0.5,), "the sweep's weights of the hard-label loss in the combined (KD) arms")
    temperatures: tuple[float, ...] = option((1.0, 2.0, 4.0), "the sweep's temperatures (KD at sweep_budget labels, "
                                                             "every pair of temperatures x alphas)")
    sweep_budget: str = option("250", "label budget of the temperature sweep")
    sweep_seeds: tuple[int, ...] = option((0,), "seeds of the temperature sweep (the chosen T's runs are reused)")
    seeds: tuple[int, ...] = option((0, 1, 2, 3, 4), "seeds of the headline arms: hard labels and KD at the "
                                                     "headline budgets")
    headline_budgets: tuple[str, ...] = option(("250",), "label budgets whose hard and KD arms run at every seed "
                                                         "in seeds")
    other_seeds: tuple[int, ...] = option((0, 1, 2), "seeds of the other arms: hard and KD at the other budgets, "
                                                     "soft targets only, and the layer-choice arms")
    layer_budget: str = option(ALL, "label budget of the layer-choice arms (hard labels only)")
    soft_arm: bool = option(True, "also the soft-targets-only arm (alpha = 0, no label)")
    layer_arms: bool = option(True, "also the layer-choice arms (first half, random layers; hard labels at "
                                    "layer_budget)")
    timing_batches: int = option(8, "test batches of eval_batch_size in the interleaved inference timing")


PROFILES = {
    # a newcomer's first look, within 3 minutes on a 2-core CPU: every part and file, at toy sizes
    "quick": DistillProfile(
        name="quick", train_size=320, val_size=200, test_size=400, max_length=32, batch_size=16, lr=2e-4,
        teacher_seeds=(0,), label_budgets=("32", ALL), temperatures=(2.0,), sweep_budget="32", sweep_seeds=(0,),
        seeds=(0, 1), headline_budgets=("32",), other_seeds=(0,), timing_batches=2,
        notes=("quick profile: 320 training snippets, one teacher, 20 steps per student, one or two seeds: a "
               "smoke test whose numbers mean nothing",)),
    # the README's figures, within 30 minutes on a 2-core CPU
    "cpu": DistillProfile(
        name="cpu", student_steps=64, label_budgets=("250", ALL), headline_budgets=("250", ALL),
        temperatures=(1.0, 4.0), alphas=(0.25, 0.5), seeds=(0, 1, 2, 3, 4), other_seeds=(0, 1, 2, 3, 4),
        layer_arms=False, timing_batches=4,
        notes=("every student takes 64 steps of 32 snippets: 22% of a pass over the 9,181-snippet training "
               "split, so a KD student reads a random 2,048 of the cached soft targets and the all-labels "
               "students read 2,048 labels (the teachers take a full pass)",
               "two label budgets (250 and all) instead of three, and no layer-choice arms (first half, random "
               "layers: `--layer-arms` adds them, the gpu profile runs them), so that every arm runs 5 seeds; "
               "the (T, alpha) sweep (T = 1, 4 x alpha = 0.25, 0.5) on one seed; learning rate 1e-4 not tuned",
               "48 tokens, pre-trained word embeddings frozen, no hidden-state or attention losses",)),
    # full size on a GPU (bf16 autocast through compresslib.training): full passes, more budgets, T and seeds
    "gpu": DistillProfile(
        name="gpu", max_length=64, eval_batch_size=256, freeze_word_embeddings=False, teacher_epochs=3.0,
        student_steps=3 * 287, label_budgets=("100", "250", "1000", "3000", ALL), temperatures=(1.0, 2.0, 4.0, 8.0),
        alphas=(0.25, 0.5), sweep_seeds=(0, 1, 2), seeds=tuple(range(10)), headline_budgets=("100", "250", "1000", "3000", ALL),
        other_seeds=tuple(range(5)), timing_batches=10,
        notes=("gpu profile: 3 epochs (teachers) and 3 passes over the transfer set (students), 64 tokens, word "
               "embeddings trained, 10 seeds at every label budget",)),
}

INITS = {  # how a student is made from the pre-trained model (never from the fine-tuned teacher)
    "every other": "layers 0, 2, 4 of the pre-trained model (DistilBERT's one out of two)",
    "first half": "layers 0, 1, 2 of the pre-trained model",
    "random layers": "random layers, the pre-trained embeddings",
}
LOSSES = ("hard", "kd", "soft")


@dataclass(frozen=True)
class Arm:
    """One way of training a student: its initialisation, its hard labels and its loss."""

    init: str  # a key of INITS
    labels: str  # a label budget ("250", ..., "all"); "0" for soft targets only
    loss: str  # "hard": labels only; "kd": alpha * hard + (1 - alpha) * soft; "soft": soft targets only
    temperature: float | None = None  # of the soft targets (kd and soft)
    alpha: float | None = None  # weight of the hard-label loss (kd; 0 for soft; None for hard)

    @property
    def name(self) -> str:
        labels = "all labels" if self.labels == ALL else f"{int(self.labels):,} labels"
        if self.loss == "hard":
            return f"{self.init}, {labels}"
        if self.loss == "kd":
            return f"{self.init}, {labels} + KD (T={self.temperature:g}, alpha={self.alpha:g})"
        return f"{self.init}, soft targets only (T={self.temperature:g})"


def budget_size(budget: str) -> int | None:
    """A label budget as a number of snippets (None: all of them)."""
    if budget == ALL:
        return None
    if not budget.isdigit() or int(budget) < 1:
        raise ValueError(f"a label budget is a positive number of snippets or 'all', got {budget!r}")
    return int(budget)


def budget_order(budget: str) -> float:
    return math.inf if budget == ALL else int(budget)


# ------------------------------------------------------------------------------------------------ data


def prepare_data(profile: DistillProfile):
    """The tokenised splits: ``train`` (the teachers' labels, the students' transfer set and the pool their
    labels are drawn from), ``validation`` and ``test``."""
    for budget in (*profile.label_budgets, profile.sweep_budget, profile.layer_budget):
        budget_size(budget)
    for budget in (profile.sweep_budget, profile.layer_budget, *profile.headline_budgets):
        if budget not in profile.label_budgets:
            raise ValueError(f"label budget {budget!r} is not one of label_budgets {profile.label_budgets}")
    tokenizer = load_tokenizer(profile.model)
    raw = load_text_classification(profile.dataset)
    sizes = {"train": profile.train_size, "validation": profile.val_size, "test": profile.test_size}
    data = DatasetDict({split: subset(raw[split], size, seed=profile.data_seed) for split, size in sizes.items()})
    return tokenizer, dict(tokenize(data, tokenizer, max_length=profile.max_length))


def unlabelled(dataset):
    """``dataset`` with every label replaced by -1: a transfer set whose labels no loss can read (a
    cross-entropy on them raises)."""
    return dataset.remove_columns("label").add_column("label", [-1] * len(dataset))


class Evaluation:
    """Validation and test accuracy of any model of the run, with the test predictions in the split's order."""

    def __init__(self, profile, tokenizer, data, device):
        self.profile, self.tokenizer, self.data, self.device = profile, tokenizer, data, device
        self.labels = {split: torch.tensor(data[split]["label"]) for split in ("validation", "test")}

    def __call__(self, model, splits=("validation", "test")) -> dict:
        """Accuracy on each of ``splits``; with the test split, its per-example predictions (encoded)."""
        out = {}
        for split in splits:
            predictions = predict_logits_by_length(model, self.data[split], self.tokenizer,
                                                   batch_size=self.profile.eval_batch_size, device=self.device,
                                                   desc=f"evaluating ({split})").argmax(-1)
            out[f"{split}_accuracy"] = (predictions == self.labels[split]).float().mean().item()
            if split == "test":
                out["test_predictions"] = encode_classes(predictions.tolist())
        return out


def thin(history, points=40):
    """Every k-th record of a per-step history, so results.json stays small."""
    k = max(1, len(history) // points)
    return [dict(step=i + 1, **{key: round(v, 4) for key, v in rec.items()}) for i, rec in enumerate(history) if i % k == 0]


def _config(profile: DistillProfile, *keys) -> dict:
    config = profile.config()
    return {k: config[k] for k in keys}


DATA_KEYS = ("model", "dataset", "data_seed", "train_size", "val_size", "test_size", "max_length")
TRAINING_KEYS = ("batch_size", "lr", "freeze_word_embeddings")


# -------------------------------------------------------------------------------------------- teachers


def teacher_part(seed, *, profile, tokenizer, data, evaluation, folder, device) -> dict:
    """Fine-tune one teacher on the whole training split; weights in ``teachers/seed<t>/``."""

    def compute():
        seed_everything(seed)
        model = load_classifier(profile.model, num_labels=2, seed=seed).to(device)
        freeze_word_embeddings(model, profile.freeze_word_embeddings)
        loader = make_loader(data["train"], tokenizer, batch_size=profile.batch_size, shuffle=True, seed=seed,
                             group_by_length=True)
        started = time.perf_counter()
        history = fit(model, loader, epochs=profile.teacher_epochs, lr=profile.lr, device=device,
                      desc=f"teacher (seed {seed})")
        seconds = time.perf_counter() - started
        freeze_word_embeddings(model, False)  # saved trainable, as a notebook loading it expects
        model.save_pretrained(paths.teacher_seed_dir(folder, seed))
        return dict(seed=seed, **evaluation(model), steps=len(history), train_seconds=round(seconds, 1),
                    train_examples=len(data["train"]), history=thin(history))

    if not (paths.teacher_seed_dir(folder, seed) / "config.json").exists():
        paths.teacher_seed_json(folder, seed).unlink(missing_ok=True)  # weights lost: retrain
    config = {"seed": seed, **_config(profile, *DATA_KEYS, *TRAINING_KEYS, "teacher_epochs")}
    return cached(paths.teacher_seed_json(folder, seed), compute, config=config)


def median_teacher(teachers: list[dict]) -> dict:
    """The teacher of median validation accuracy (ties by seed): chosen without looking at test data."""
    ranked = sorted(teachers, key=lambda t: (t["validation_accuracy"], t["seed"]))
    return ranked[(len(ranked) - 1) // 2]


def load_reference_teacher(seed, folder, device):
    """The reference teacher's weights, also copied to ``teacher/`` (what notebook 02 loads)."""
    source, target = paths.teacher_seed_dir(folder, seed), paths.teacher_dir(folder)
    marker = target / "reference_teacher_seed.txt"
    if not marker.exists() or marker.read_text().strip() != str(seed):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
        marker.write_text(f"{seed}\n")
    return AutoModelForSequenceClassification.from_pretrained(source).to(device).eval()


@torch.no_grad()
def cache_teacher_logits(profile, teacher, teacher_config, tokenizer, dataset, folder, device) -> torch.Tensor:
    """The reference teacher's logits on the training split (the transfer set), computed once."""
    path = paths.teacher_outputs(folder)
    key = {"n": len(dataset), "teacher": teacher_config}
    if path.exists():
        stored = torch.load(path)
        if stored["key"] == key:
            return stored["logits"]
    started = time.perf_counter()
    logits = predict_logits_by_length(teacher, dataset, tokenizer, batch_size=profile.eval_batch_size, device=device,
                                      desc="caching the teacher's logits")
    torch.save({"key": key, "logits": logits, "seconds": time.perf_counter() - started}, path)
    return logits


# -------------------------------------------------------------------------------------------- students


def make_student(init: str, seed: int, profile: DistillProfile, device):
    """A half-depth student from the *pre-trained* model (head initialised from ``seed``)."""
    source = load_classifier(profile.model, num_labels=2, seed=1000 + seed)
    half = (num_layers_of(source) + 1) // 2
    if init == "every other":
        student = init_student_from_teacher(source, "every_other")
    elif init == "first half":
        student = init_student_from_teacher(source, ("first", half))
    elif init == "random layers":
        student = init_student_with_random_layers(source, half, seed=1000 + seed)
    else:
        raise ValueError(f"unknown initialisation {init!r}; known: {sorted(INITS)}")
    freeze_word_embeddings(student, profile.freeze_word_embeddings)
    return student.to(device)


def student_loader(arm: Arm, seed: int, *, profile, tokenizer, train, transfer, logits, steps):
    """The batches ``arm`` trains on and the step that consumes them."""
    labelled = None
    if arm.loss != "soft":
        labelled = subset(train, budget_size(arm.labels), seed=seed)  # nested across budgets, fresh per seed
    if arm.loss == "hard":
        loader = make_loader(labelled, tokenizer, batch_size=profile.batch_size, shuffle=True, seed=seed,
                             group_by_length=True)
        return StreamLoader({"": loader}, steps=steps), hard_label_step, len(labelled)
    if arm.loss == "kd" and arm.labels == ALL:  # every snippet is labelled: one batch carries both targets
        loader = make_loader(with_teacher_logits(train, logits), tokenizer,
                             batch_size=profile.batch_size, shuffle=True, seed=seed, extra_columns=(TEACHER_LOGITS_KEY,),
                             group_by_length=True)
        return (StreamLoader({"": loader}, steps=steps),
                cached_kd_step(temperature=arm.temperature, alpha=arm.alpha), len(train))
    streams = {TRANSFER_PREFIX: make_loader(transfer, tokenizer, batch_size=profile.batch_size, shuffle=True,
                                            seed=10_000 + seed, extra_columns=(TEACHER_LOGITS_KEY,),
                                            group_by_length=True)}
    alpha = arm.alpha if arm.loss == "kd" else 0.0
    if arm.loss == "kd":
        streams = {"": make_loader(labelled, tokenizer, batch_size=profile.batch_size, shuffle=True, seed=seed,
                                   group_by_length=True), **streams}
    return (StreamLoader(streams, steps=steps), cached_transfer_kd_step(temperature=arm.temperature, alpha=alpha),
            0 if labelled is None else len(labelled))


def student_part(arm: Arm, seed: int, *, profile, tokenizer, data, transfer, logits, teacher_config, evaluation,
                 folder, device, validate: bool = False) -> dict:
    """Train one student; its test accuracy and predictions (and validation accuracy when ``validate``: the
    temperature sweep's runs) go to ``students/<arm>__seed<s>.json``."""
    steps = profile.student_steps or math.ceil(len(transfer) / profile.batch_size)
    config = {"arm": asdict(arm), "seed": seed, "steps": steps, "teacher": teacher_config,
              **_config(profile, *DATA_KEYS, *TRAINING_KEYS)}

    def compute():
        seed_everything(seed)
        student = make_student(arm.init, seed, profile, device)
        loader, step, labels = student_loader(arm, seed, profile=profile, tokenizer=tokenizer, train=data["train"],
                                              transfer=transfer, logits=logits, steps=steps)
        started = time.perf_counter()
        history = fit(student, loader, epochs=1, lr=profile.lr, step=step, device=device,
                      desc=f"{arm.name} (seed {seed})")
        seconds = time.perf_counter() - started
        splits = ("validation", "test") if validate else ("test",)
        # a stream cycled for `steps` batches reads each example once per pass: min(n, steps * batch) distinct ones
        return dict(seed=seed, **evaluation(student, splits), labels=labels,
                    labels_read=min(labels, len(history) * profile.batch_size),
                    transfer_read=0 if arm.loss == "hard" else min(len(transfer), len(history) * profile.batch_size),
                    steps=len(history),
                    train_seconds=round(seconds, 1), layers=student.config.student_of_teacher_layers,
                    history=thin(history))

    path = paths.student_json(folder, arm.name, seed)
    if validate and path.exists() and "validation_accuracy" not in read_json(path)["result"]:
        path.unlink()  # trained without a validation score, which the sweep needs: train again
    return cached(path, compute, config=config)


def timing_part(profile, teacher, tokenizer, data, folder, device) -> dict:
    """Parameters and inference time of the teacher and a half-depth student (every student has that one
    architecture) over the same test batches, timed in interleaved rounds."""
    n = profile.timing_batches * profile.eval_batch_size
    timing_set = data["test"].select(range(min(n, len(data["test"]))))
    loader = make_loader(timing_set, tokenizer, batch_size=profile.eval_batch_size, shuffle=False)
    rounds, repeats = 5, 3

    def compute():
        student = make_student("every other", 0, profile, device)
        seconds = compare_inference_times({"teacher": teacher, "student": student}, loader, device=device,
                                          rounds=rounds, repeats=repeats)
        return {
            "examples": len(timing_set), "batch_size": profile.eval_batch_size, "device": str(device),
            "threads": torch.get_num_threads(),
            "method": f"best of {rounds} interleaved rounds (teacher, student, teacher, ...) of {repeats} passes each",
            "teacher": {"params": count_parameters(teacher), "seconds": seconds["teacher"],
                        "layers": num_layers_of(teacher)},
            "student": {"params": count_parameters(student), "seconds": seconds["student"],
                        "layers": num_layers_of(student)},
        }

    return cached(paths.timing_json(folder), compute, config={"n": len(timing_set), "device": str(device),
                                                             "model": profile.model, "method": "interleaved",
                                                             "rounds": rounds, "repeats": repeats})


# ------------------------------------------------------------------------------------------------ plan


def sweep_arms(profile: DistillProfile) -> list[Arm]:
    return [Arm("every other", profile.sweep_budget, "kd", t, a) for t in profile.temperatures for a in profile.alphas]


def choose_hyperparameters(sweep: dict[str, dict]) -> tuple[float, float]:
    """The sweep's ``(T, alpha)`` with the highest mean validation accuracy (ties: the smaller T, then the
    smaller alpha)."""
    scores = {(entry["temperature"], entry["alpha"]): np.mean(entry["validation_accuracy"]) for entry in sweep.values()}
    return max(sorted(scores), key=lambda pair: scores[pair])


def main_arms(profile: DistillProfile, temperature: float, alpha: float) -> dict[str, tuple[Arm, tuple[int, ...]]]:
    """Every arm after the sweep with its seeds: ``{name: (arm, seeds)}``."""
    plan = {}

    def add(arm, seeds):
        plan[arm.name] = (arm, tuple(seeds))

    for budget in sorted(profile.label_budgets, key=budget_order):
        seeds = profile.seeds if budget in profile.headline_budgets else profile.other_seeds
        add(Arm("every other", budget, "hard"), seeds)
        add(Arm("every other", budget, "kd", temperature, alpha), seeds)
    if profile.soft_arm:
        add(Arm("every other", "0", "soft", temperature, 0.0), profile.other_seeds)
    if profile.layer_arms:
        for init in ("first half", "random layers"):
            add(Arm(init, profile.layer_budget, "hard"), profile.other_seeds)
    return plan


def execute(profile: DistillProfile, folder: Path, device: torch.device) -> dict:
    """Every part of the run (each cached under ``folder``) and what they measured."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer, data = prepare_data(profile)
    evaluation = Evaluation(profile, tokenizer, data, device)
    shared = dict(profile=profile, tokenizer=tokenizer, data=data, evaluation=evaluation, folder=folder, device=device)

    teachers = []
    for seed in profile.teacher_seeds:
        teachers.append(teacher_part(seed, **shared))
        print(f"teacher seed {seed}: validation {teachers[-1]['validation_accuracy']:.4f}, "
              f"test {teachers[-1]['test_accuracy']:.4f}")
    reference = median_teacher(teachers)
    teacher_config = read_json(paths.teacher_seed_json(folder, reference["seed"]))["config"]
    teacher = load_reference_teacher(reference["seed"], folder, device)
    logits = cache_teacher_logits(profile, teacher, teacher_config, tokenizer, data["train"], folder, device)
    transfer = with_teacher_logits(unlabelled(data["train"]), logits)

    def run_arm(arm: Arm, seeds, validate=False) -> dict:
        runs = []
        for seed in seeds:
            runs.append(student_part(arm, seed, transfer=transfer, logits=logits, teacher_config=teacher_config,
                                     validate=validate, **shared))
            print(f"{arm.name}, seed {seed}: test {runs[-1]['test_accuracy']:.4f}"
                  + (f", validation {runs[-1]['validation_accuracy']:.4f}" if validate else ""))
        entry = {"arm": asdict(arm), "seeds": list(seeds), "test_accuracy": [r["test_accuracy"] for r in runs],
                 "runs": runs}
        if validate:
            entry["validation_accuracy"] = [r["validation_accuracy"] for r in runs]
        return entry

    sweep = {}
    for arm in sweep_arms(profile):
        sweep[arm.name] = {"temperature": arm.temperature, "alpha": arm.alpha,
                           **run_arm(arm, profile.sweep_seeds, validate=True)}
    temperature, alpha = choose_hyperparameters(sweep)
    print(f"chosen on validation data: T = {temperature:g}, alpha = {alpha:g}")
    students = {name: run_arm(arm, seeds) for name, (arm, seeds) in main_arms(profile, temperature, alpha).items()}
    timing = timing_part(profile, teacher, tokenizer, data, folder, device)
    for entry in sweep.values():  # the chosen T's runs are in students; keep the others' summaries only
        for run in entry["runs"]:
            run.pop("history", None)
    return {
        "sizes": {split: len(data[split]) for split in data},
        "majority_class": {split: stats.majority_class_accuracy(data[split]["label"]) for split in ("validation", "test")},
        "test_labels": encode_classes(data["test"]["label"]),
        "teachers": teachers,
        "reference_teacher_seed": reference["seed"],
        "temperature": temperature,
        "alpha": alpha,
        "sweep": sweep,
        "students": students,
        "timing": timing,
    }


# --------------------------------------------------------------------------------------------- summary


def _arm(results, init="every other", labels=None, loss="hard", temperature=None) -> str | None:
    """The name of the arm in ``results["students"]`` with these properties (None if the run has none)."""
    for name, entry in results["students"].items():
        arm = entry["arm"]
        if (arm["init"], arm["loss"]) == (init, loss) and (labels is None or arm["labels"] == labels) and \
                (temperature is None or arm["temperature"] == temperature):
            return name
    return None


def _paired(results, a: str, b: str):
    """Per-seed test accuracies of arms ``a`` and ``b`` on their common seeds, and their pooled correctness."""
    ea, eb = results["students"][a], results["students"][b]
    seeds = [s for s in ea["seeds"] if s in eb["seeds"]]
    labels = decode_classes(results["test_labels"])
    picked = {side: [entry["runs"][entry["seeds"].index(s)] for s in seeds] for side, entry in (("a", ea), ("b", eb))}
    values = {side: [r["test_accuracy"] for r in runs] for side, runs in picked.items()}
    correct = {f"correct_{side}": stats.pool_seeds([decode_classes(r["test_predictions"]) for r in runs], labels)
               for side, runs in picked.items()}
    return seeds, values, correct


def comparisons(results: dict) -> list[tuple[str, str, str]]:
    """``(key, a, b)`` for every claim "a beats b" the run makes."""
    budgets = sorted({e["arm"]["labels"] for e in results["students"].values() if e["arm"]["loss"] == "hard"
                      and e["arm"]["init"] == "every other"}, key=budget_order)
    t, out = results["temperature"], []
    for budget in budgets:
        out.append((f"kd_beats_hard_{budget}", _arm(results, labels=budget, loss="kd", temperature=t),
                    _arm(results, labels=budget)))
    soft, scarce = _arm(results, loss="soft", temperature=t), budgets[0]
    out.append((f"soft_only_beats_hard_{scarce}", soft, _arm(results, labels=scarce)))
    out.append((f"kd_beats_soft_only_{scarce}", _arm(results, labels=scarce, loss="kd", temperature=t), soft))
    layer_budget = results["config"]["layer_budget"]
    every, first, rand = (_arm(results, init=i, labels=layer_budget) for i in ("every other", "first half", "random layers"))
    out += [("every_other_beats_first_half", every, first), ("every_other_beats_random_layers", every, rand),
            ("first_half_beats_random_layers", first, rand)]
    return out


def kd_gain(results: dict, budget: str):
    """Per-seed KD minus hard-label test accuracy at ``budget`` (``{seed: gain}``)."""
    kd = results["students"][_arm(results, labels=budget, loss="kd", temperature=results["temperature"])]
    hard = results["students"][_arm(results, labels=budget)]
    return {s: kd["test_accuracy"][kd["seeds"].index(s)] - hard["test_accuracy"][hard["seeds"].index(s)]
            for s in kd["seeds"] if s in hard["seeds"]}


def summarise(results: dict) -> dict:
    """The curve, the table (retention both ways, :func:`compresslib.stats.retention`) and the claims, from
    ``results.json`` alone."""
    reference = next(t for t in results["teachers"] if t["seed"] == results["reference_teacher_seed"])
    teacher, floor, timing = reference["test_accuracy"], results["majority_class"]["test"], results["timing"]
    table = [dict(model=f"teacher (seed {reference['seed']}, the median of {len(results['teachers'])})",
                  params_millions=timing["teacher"]["params"] / 1e6, inference_seconds=timing["teacher"]["seconds"],
                  accuracy=stats.summarize([teacher]).as_dict(), retention=stats.retention(teacher, teacher, floor).as_dict())]
    for name, entry in results["students"].items():
        summary = stats.summarize(entry["test_accuracy"])
        table.append(dict(model=name, params_millions=timing["student"]["params"] / 1e6,
                          inference_seconds=timing["student"]["seconds"], accuracy=summary.as_dict(),
                          retention=stats.retention(summary.mean, teacher, floor).as_dict()))

    curve = {}
    for loss in ("hard", "kd"):
        points = {}
        for entry in results["students"].values():
            arm = entry["arm"]
            if arm["init"] == "every other" and arm["loss"] == loss:
                first = entry["runs"][0]
                points[arm["labels"]] = dict(labels=first["labels"], labels_read=first["labels_read"],
                                             **stats.summarize(entry["test_accuracy"]).as_dict())
        curve[loss] = dict(sorted(points.items(), key=lambda kv: budget_order(kv[0])))

    claims = []
    for key, a, b in comparisons(results):
        if a is None or b is None:
            continue
        seeds, values, correct = _paired(results, a, b)
        claims.append(dict(compare(key, a, values["a"], b, values["b"], **correct).as_dict(), seeds=seeds))
    budgets = list(curve["hard"])
    if len(budgets) > 1:
        scarce, plenty = budgets[0], budgets[-1]
        low, high = kd_gain(results, scarce), kd_gain(results, plenty)
        seeds = [s for s in low if s in high]
        if seeds:
            claim = compare(f"kd_gain_larger_at_{scarce}_than_{plenty}", f"KD's gain at {_labels(scarce)}",
                            [low[s] for s in seeds], f"KD's gain at {_labels(plenty)}", [high[s] for s in seeds],
                            metric="KD's gain over hard labels")
            claims.append(dict(claim.as_dict(), seeds=seeds))
    sweep = {name: dict(temperature=e["temperature"], alpha=e["alpha"],
                        validation=stats.summarize(e["validation_accuracy"]).as_dict())
             for name, e in results["sweep"].items()}
    return {"table": table, "curve": curve, "sweep_summary": sweep, "claims": claims,
            "teacher_summary": {split: stats.summarize([t[f"{split}_accuracy"] for t in results["teachers"]]).as_dict()
                                for split in ("validation", "test")}}


def _read(point: dict) -> str:
    """``1,000``, or ``4,608 (of 9,181)`` when a student reads only part of its labelled set."""
    text = f"{point['labels_read']:,}"
    return text if point["labels_read"] == point["labels"] else f"{text} (of {point['labels']:,})"


def _labels(budget: str) -> str:
    return "all labels" if budget == ALL else f"{int(budget):,} labels"


# ----------------------------------------------------------------------------------------------- report


def _reference(results):
    return next(t for t in results["teachers"] if t["seed"] == results["reference_teacher_seed"])


def plot(results: dict, folder: Path) -> list[str]:
    """``accuracy_vs_labels.png`` (the headline) and ``layer_choice.png`` in ``folder``; returns their names."""
    curves = {}
    for loss, label in (("hard", "hard labels only"), ("kd", f"hard labels + KD on the transfer set "
                                                               f"(T={results['temperature']:g}, alpha={results['alpha']:g})")):
        curves[label] = {p["labels_read"]: p for p in results["curve"][loss].values()}
    soft = results["students"].get(_arm(results, loss="soft", temperature=results["temperature"]) or "")
    bands = []
    if soft:
        summary = stats.summarize(soft["test_accuracy"])
        bands.append((f"soft targets only, no labels ({_seeds(summary.n)})", summary.mean, summary.std))
    report.accuracy_vs_labels(
        curves, paths.figure(folder, "accuracy_vs_labels"), majority=results["majority_class"]["test"],
        reference=(f"reference teacher (all {results['sizes']['train']:,} labels)", _reference(results)["test_accuracy"]),
        bands=bands,
        title=(f"{results['timing']['student']['layers']}-layer students from the pre-trained "
               f"{results['config']['model']} (every other layer), {results['sizes']['test']:,} test snippets\n"
               "mean ± sample std over seeds; KD students also see the teacher's soft targets on every "
               "training snippet"))
    layer_budget = results["config"]["layer_budget"]
    if not any(_arm(results, init=init, labels=layer_budget) for init in ("first half", "random layers")):
        return ["accuracy_vs_labels.png"]  # run without the layer-choice arms
    bars = [dict(model="reference teacher", mean=_reference(results)["test_accuracy"], std=None, label="")]
    for init in INITS:
        name = _arm(results, init=init, labels=layer_budget)
        if name:
            row = next(r for r in results["table"] if r["model"] == name)
            layers = results["students"][name]["runs"][0]["layers"]
            share = row["retention"]["of_gain"]
            bars.append(dict(model=f"{init}\n" + (f"(layers {', '.join(map(str, layers))})" if layers else
                                                  "(pre-trained\nembeddings only)"),
                             mean=row["accuracy"]["mean"], std=row["accuracy"]["std"],
                             label="" if share is None else f"{report.percent(share)}% of gain"))
    report.accuracy_bars(bars, paths.figure(folder, "layer_choice"), majority=results["majority_class"]["test"],
                         title=f"Which layers? {results['timing']['student']['layers']}-layer students, hard labels "
                               f"({_labels(layer_budget)}), pre-trained word embeddings in every arm\n"
                               "above each bar: share of the teacher's gain over the majority class")
    return ["accuracy_vs_labels.png", "layer_choice.png"]


FIGURES = (("accuracy versus labels", "accuracy_vs_labels.png"), ("layer choice", "layer_choice.png"))


def title(results: dict) -> str:
    return f"Distillation ({results['profile']} profile)"


def _claim(results, key):
    return next((c for c in results["claims"] if c["key"] == key), None)


def _diff(claim) -> str:
    d = claim["difference"]
    if d["ci_low"] is None:
        return f"{100 * d['mean']:+.1f}"
    return f"{100 * d['mean']:+.1f} [{100 * d['ci_low']:+.1f}, {100 * d['ci_high']:+.1f}]"


def _tests(claim) -> str:
    """``paired t-test p = ..., McNemar p = ...`` of a claim (what each test has)."""
    parts = []
    if claim["difference"]["p_value"] is not None:
        parts.append(f"paired t-test {format_p(claim['difference']['p_value'])}")
    if claim["mcnemar"]:
        parts.append(f"McNemar {format_p(claim['mcnemar']['p_exact'])} on the pooled predictions")
    return ", ".join(parts)


def _seeds(n: int) -> str:
    return "1 seed" if n == 1 else f"{n} seeds"


def _verdict(claim) -> str:
    return {True: "holds", False: "does not hold", None: "untested"}[claim["holds"]]


def evidence_items(results: dict) -> dict[str, str]:
    """What the evidence shows, one sentence per topic, generated from the claims (a sentence says "does not"
    where a claim does not hold): ``{topic: Markdown}``, topics among ``scarce``, ``budgets``, ``soft``,
    ``layers``, ``retention``, ``classes``."""
    pct, items = report.pct, {}
    reference = _reference(results)
    budgets = list(results["curve"]["hard"])
    scarce = budgets[0]
    kd_scarce = _claim(results, f"kd_beats_hard_{scarce}")
    if kd_scarce:
        verdict = "beats" if kd_scarce["holds"] else ("is not shown to beat" if kd_scarce["holds"] is False
                                                       else "is compared with (one seed, untested)")
        kd_run = results["students"][kd_scarce["a"]]["runs"][0]
        items["scarce"] = (
            f"**Label-scarce distillation.** With {_labels(scarce)}, the student that also learns from the "
            f"teacher's soft targets (T = {results['temperature']:g}, alpha = {results['alpha']:g}, chosen on "
            f"validation data) on {kd_run['transfer_read']:,} unlabelled training snippets {verdict} the student "
            f"trained on the labels alone: {_diff(kd_scarce)} points (mean, 95% CI), "
            f"{pct(kd_scarce['a_summary']['mean'])}% against {pct(kd_scarce['b_summary']['mean'])}% over "
            f"{_seeds(kd_scarce['difference']['n'])}" + (f" ({_tests(kd_scarce)})" if _tests(kd_scarce) else "") + ".")
    gains = [(b, _claim(results, f"kd_beats_hard_{b}")) for b in budgets[1:]]
    gains = [(b, c) for b, c in gains if c]
    if gains:
        items["budgets"] = ("**More labels.** KD minus hard labels, paired by seed: "
                            + "; ".join(f"{_labels(b)}: {_diff(c)} points ({_seeds(c['difference']['n'])}, {_verdict(c)})"
                                        for b, c in gains) + ".")
    soft = _claim(results, f"soft_only_beats_hard_{scarce}")
    if soft:
        items["soft"] = (f"**Soft targets alone** (no label at all, alpha = 0): {pct(soft['a_summary']['mean'])}% "
                         f"against {pct(soft['b_summary']['mean'])}% with {_labels(scarce)} and no teacher "
                         f"({_diff(soft)} points, {_verdict(soft)}).")
    layer = [_claim(results, k) for k in ("every_other_beats_first_half", "every_other_beats_random_layers",
                                          "first_half_beats_random_layers")]
    if all(layer):
        items["layers"] = (
            f"**Which layers** ({_labels(results['config']['layer_budget'])}, hard labels, the same pre-trained "
            f"embeddings): every other {pct(layer[0]['a_summary']['mean'])}%, first half "
            f"{pct(layer[0]['b_summary']['mean'])}%, random layers {pct(layer[1]['b_summary']['mean'])}%; every "
            f"other minus first half {_diff(layer[0])} points ({_verdict(layer[0])}), pre-trained minus random "
            f"layers {_diff(layer[1])} points ({_verdict(layer[1])}).")
    row = next((r for r in results["table"] if r["model"] == _arm(results, labels=budgets[-1])), None)
    if row:
        t, share = results["timing"], row["retention"]["of_gain"]
        items["retention"] = (
            f"**Retention.** The {t['student']['layers']}-layer student with {_labels(budgets[-1])} scores "
            f"{pct(row['accuracy']['mean'])}%: {report.percent(row['retention']['of_teacher'])}% of the reference "
            f"teacher's {pct(reference['test_accuracy'])}%, but "
            + ("an undefined share of its gain (the teacher does not beat the majority class)" if share is None
               else f"{report.percent(share)}% of its gain over the majority class "
                    f"({pct(results['majority_class']['test'])}%)")
            + f", with {t['student']['params'] / t['teacher']['params']:.0%} of its parameters (the word "
              f"embeddings are kept whole) and {t['student']['seconds'] / t['teacher']['seconds']:.0%} of its "
              "inference time.")
    items["classes"] = ("**Two classes.** Each soft target here is one number, the teacher's probability of `fresh`: "
                        "what it adds to a hard label is the teacher's confidence, not a ranking of wrong classes "
                        "(the dark knowledge of the lecture's many-class examples). In the label-scarce setting it "
                        "also covers snippets that have no label at all.")
    return items


def evidence(results: dict) -> list[str]:
    """:func:`evidence_items` as Markdown bullets (the report's "What the evidence shows")."""
    return [f"- {item}" for item in evidence_items(results).values()]


NOTEBOOK_TOPICS = {  # which sentences each notebook's "What the evidence shows" cites
    "01": ("scarce", "budgets", "soft", "classes"),
    "02": ("scarce", "layers", "retention"),
}


def notebook_evidence(results: dict, notebook: str) -> str:
    """Notebook ``notebook``'s (``01`` or ``02``) "What the evidence shows" paragraph: where the numbers come
    from, then the sentences of :data:`NOTEBOOK_TOPICS` (``python -m compresslib.runs readme`` writes it between
    the notebook's markers)."""
    if notebook not in NOTEBOOK_TOPICS:
        raise ValueError(f"notebook is one of {sorted(NOTEBOOK_TOPICS)}, got {notebook!r}")
    items = evidence_items(results)
    lines = [f"From the reference run (`{results['provenance']['command']}`, its numbers in "
             "`docs/results/distill/results.json`; this paragraph is generated from that file):", ""]
    if results["profile"] == "quick":
        lines += ["*These are the `quick` profile's numbers, a smoke test on a few hundred snippets: they mean "
                  "nothing yet; the `cpu` profile's replace them when it is published.*", ""]
    lines += [f"* {items[topic]}" for topic in NOTEBOOK_TOPICS[notebook] if topic in items]
    return "\n".join(lines)


def markdown(results: dict, figure_prefix: str = "") -> str:
    """The headline curve, the sweep, the lecture's DistilBERT table, the claims, the evidence and the figures."""
    config, timing, pct, sizes = results["config"], results["timing"], report.pct, results["sizes"]
    reference, teachers = _reference(results), results["teacher_summary"]
    steps = next(iter(results["students"].values()))["runs"][0]["steps"]
    read = steps * config["batch_size"]
    lines = [
        f"Teachers: `{config['model']}` fine-tuned on all {sizes['train']:,} training snippets of `{config['dataset']}` "
        f"({config['teacher_epochs']:g} epoch(s), lr {config['lr']:g}, batch {config['batch_size']}, "
        f"{config['max_length']} tokens), seeds {[t['seed'] for t in results['teachers']]}: test "
        + ", ".join(f"{pct(t['test_accuracy'])}%" for t in results["teachers"])
        + f" (validation " + ", ".join(f"{pct(t['validation_accuracy'])}%" for t in results["teachers"])
        + f"). Reference teacher: seed {reference['seed']}, the median by validation accuracy.",
        "",
        f"Students: {timing['student']['layers']} layers initialised from the *pre-trained* model, never from the "
        f"fine-tuned teacher; a fresh task head; {steps} optimizer steps of {config['batch_size']} each "
        + (f"(one pass over the {sizes['train']:,} training snippets" if read >= sizes["train"] else
           f"({read:,} snippets, {read / sizes['train']:.0%} of a pass over the {sizes['train']:,} training snippets")
        + "; a smaller labelled set is cycled). KD students get the hard labels of their budget (a fresh draw per "
        f"seed, nested across budgets) and the reference teacher's soft targets, cached for every training snippet "
        f"(the transfer set, whose labels they never see; each reads {min(read, sizes['train']):,} of them); loss "
        "alpha x hard + (1 - alpha) x T^2-scaled soft; soft targets only: alpha = 0. ",
        f"T and alpha chosen on validation data ({_labels(config['sweep_budget'])}, seeds {list(config['sweep_seeds'])}), "
        "validation accuracy (%): "
        + ", ".join(f"T = {s['temperature']:g}, alpha = {s['alpha']:g}: "
                    f"{pct(s['validation']['mean'], s['validation']['std'])}"
                    for s in results["sweep_summary"].values())
        + f" -> **T = {results['temperature']:g}, alpha = {results['alpha']:g}**.",
        "",
        "Test accuracy (%) against the number of hard labels, mean ± sample std over seeds, and KD minus hard "
        "labels paired by seed with its 95% CI:",
        "",
    ]
    rows = []
    for budget, hard in results["curve"]["hard"].items():
        kd = results["curve"]["kd"].get(budget)
        claim = _claim(results, f"kd_beats_hard_{budget}")
        rows.append([_read(hard), pct(hard["mean"], hard["std"]), pct(kd["mean"], kd["std"]) if kd else "–",
                     _diff(claim) if claim else "–", str(hard["n"])])
    soft = results["students"].get(_arm(results, loss="soft", temperature=results["temperature"]) or "")
    if soft:
        s = stats.summarize(soft["test_accuracy"])
        rows.append(["0 (soft targets only)", "–", pct(s.mean, s.std), "–", str(s.n)])
    lines += [report.markdown_table(["hard labels", "hard labels only", f"+ KD (T={results['temperature']:g}, alpha={results['alpha']:g})",
                                     "KD − hard (points)", "seeds"], rows), ""]
    lines += [f"A constant guess of the majority class scores {pct(results['majority_class']['test'])}% on the "
              f"{sizes['test']:,} test snippets (one accuracy there has a standard error of about "
              f"{100 * stats.accuracy_standard_error(reference['test_accuracy'], sizes['test']):.1f} points). "
              f"The teachers score {pct(teachers['test']['mean'], teachers['test']['std'])}% (mean ± std of "
              f"{teachers['test']['n']}).", ""]
    table = [[row["model"], f"{row['params_millions']:.1f}", f"{row['inference_seconds']:.2f}",
              pct(row["accuracy"]["mean"], row["accuracy"]["std"]), str(row["accuracy"]["n"]),
              report.percent(row["retention"]["of_teacher"]), report.percent(row["retention"]["of_gain"])]
             for row in results["table"]]
    lines += ["The lecture's DistilBERT table, every arm:", "",
              report.markdown_table(["model", "params (M)", "inference time (s)", "test accuracy (%)", "seeds",
                                     "% of teacher", "% of teacher's gain over majority"], table), "",
              f"Inference time: one pass over the same {timing['examples']:,} test snippets in batches of "
              f"{timing['batch_size']} on `{timing['device']}` ({timing['threads']} threads), {timing['method']}.", "",
              "Claims, each paired by seed on the seeds both arms share:", "", report.claims_markdown(results["claims"]),
              "", "What the evidence shows:", "", *evidence(results), ""]
    if config["notes"]:
        lines += ["What was cut to fit the budget: " + "; ".join(config["notes"]) + ".", ""]
    lines += [report.figure_links([f for f in FIGURES if f[1] in results.get("figures", [])], figure_prefix)]
    return "\n".join(lines)


RUN = Run(name="distill", description=__doc__, profiles=PROFILES, execute=execute, summarise=summarise, plot=plot,
          markdown=markdown, title=title)


def main(argv=None) -> int:
    return run_main(RUN, argv)
