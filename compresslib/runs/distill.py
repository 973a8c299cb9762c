"""Reference run: distil a half-depth BERT student (the lecture's DistilBERT result on the embedded default).

``python -m compresslib.runs distill --profile quick|cpu|gpu``

1. fine-tune the teacher (MiniLM-L6 on Rotten Tomatoes polarity by default);
2. cache its logits (and the hidden states the hidden-state loss needs) on the students' training set once;
3. train half-depth students over several seeds: random init + hard labels; layer-skipping init + hard
   labels; layer-skipping init + combined loss (KD); + cosine hidden-state loss
   (:func:`compresslib.distill.cached_kd_hidden_step`);
4. summarise: the lecture's DistilBERT table (parameters, inference time measured interleaved, accuracy
   mean ± std, retention as % of the teacher and as share of its gain over the majority class) and the
   claims, paired by seed, with McNemar's test on the saved per-example test predictions
   (:mod:`compresslib.runs.claims`).

Files (:mod:`compresslib.runs.paths`): ``runs/distill/<profile>/`` holds ``results.json`` (with
provenance), ``results.md``, ``learning_curves.png``, ``accuracy.png`` and every part as soon as it is
done (``teacher/``, ``teacher.json``, ``teacher_outputs.pt``, ``students/*.json``, ``timing.json``), so a
rerun skips finished parts; the latest results are copied to ``runs/distill/``. (Notebook 02's grading
fixtures: ``python -m compresslib.grading.record 02_distilbert_student``.)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification

from compresslib import stats
from compresslib.batches import EXAMPLE_INDEX_KEY, TEACHER_LOGITS_KEY, model_inputs
from compresslib.data import load_text_classification, subset
from compresslib.distill import (
    cached_kd_hidden_step,
    cached_kd_step,
    init_student_from_teacher,
    num_layers_of,
    select_layers,
    uniform_layer_map,
)
from compresslib.models import count_parameters, freeze_word_embeddings, load_classifier, load_tokenizer
from compresslib.runs import paths, report
from compresslib.runs.claims import compare
from compresslib.runs.common import cached, decode_classes, encode_classes, read_json, seed_everything
from compresslib.runs.hparams import Profile, option
from compresslib.runs.runner import Run, run_main
from compresslib.training import (
    autocast,
    compare_inference_times,
    fit,
    hard_label_step,
    make_loader,
    predict_logits,
    tokenize,
    with_teacher_logits,
)



@dataclass(frozen=True)
class DistillProfile(Profile):
    model: str = option("all-MiniLM-L6-v2", "the teacher: the embedded default or a hub name")
    dataset: str = option("rotten_tomatoes_polarity", "the embedded default, glue/sst2, or a local folder")
    student_layers: str = option("every_other", "which teacher layers the student copies (init_student_from_teacher)")
    temperature: float = option(2.0, "T of the soft targets")
    alpha: float = option(0.5, "weight of the hard-label loss in the combined loss")
    hidden_weight: float = option(1.0, "weight of the hidden-state loss (the KD + hidden arm)")
    hidden_loss: str = option("cosine", "hidden-state loss on the uniform layer map: cosine or mse")
    teacher_seed: int = option(0, "seed of the teacher's classifier head and data order")
    data_seed: int = option(0, "seed of the training, validation and test subsets")
    max_length: int = option(48, "tokens per snippet")
    batch_size: int = option(16, "training batch size")
    eval_batch_size: int = option(128, "evaluation batch size")
    teacher_train: int | None = option(800, "snippets the teacher is fine-tuned on (all: the whole split)")
    teacher_epochs: float = option(1.0, "passes over the teacher's training snippets")
    teacher_lr: float = option(2e-4, "peak learning rate of the teacher (linear warm-up and decay)")
    student_train: int | None = option(400, "the students' training snippets: the first ones of the teacher's "
                                            "(all: the teacher's)")
    student_epochs: float = option(1.0, "passes over the students' training snippets")
    student_lr: float = option(2e-4, "peak learning rate of the students")
    val_size: int | None = option(200, "validation snippets for the learning curves (all: the whole split)")
    test_size: int | None = option(500, "test snippets (all: the whole split)")
    seeds: tuple[int, ...] = option((0,), "student seeds; claims pair the arms by seed")
    curve_points: int = option(2, "validation evaluations along each training run (besides step 0)")
    timing_batches: int = option(4, "test batches of eval_batch_size in the inference timing")
    freeze_word_embeddings: bool = option(True, "keep pre-trained word embeddings fixed (a random student learns them)")


PROFILES = {
    # a newcomer's first look: the same files in a few minutes, one seed, small subsets
    "quick": DistillProfile(name="quick", notes=("one seed and small subsets: a smoke test, the numbers are not "
                                                 "meaningful",)),
    # the README's figures, within 20 minutes on a 2-core CPU
    "cpu": DistillProfile(name="cpu", teacher_train=4000, student_train=2000, val_size=300, test_size=None,
                          seeds=(0, 1, 2), curve_points=3, timing_batches=8),
    # full size on a GPU (bf16 autocast through compresslib.training): all data, more epochs and seeds
    "gpu": DistillProfile(name="gpu", max_length=64, batch_size=32, eval_batch_size=256, teacher_train=None,
                          teacher_epochs=3.0, teacher_lr=5e-5, student_train=None, student_epochs=3.0,
                          student_lr=1e-4, val_size=None, test_size=None, seeds=(0, 1, 2, 3, 4), curve_points=8,
                          timing_batches=10, freeze_word_embeddings=False),
}

ARMS = {
    "random init + hard labels": dict(init="random", loss="hard"),
    "layer-skip init + hard labels": dict(init="every_other", loss="hard"),
    "layer-skip init + KD": dict(init="every_other", loss="kd"),
    "layer-skip init + KD + hidden": dict(init="every_other", loss="kd+hidden"),
}
COMPARISONS = {  # key: (arm A, arm B): the claim "A beats B"
    "kd_beats_hard": ("layer-skip init + KD", "layer-skip init + hard labels"),
    "layer_skip_beats_random": ("layer-skip init + hard labels", "random init + hard labels"),
    "hidden_beats_kd": ("layer-skip init + KD + hidden", "layer-skip init + KD"),
}
TEACHER_KEYS = ("model", "dataset", "max_length", "batch_size", "teacher_train", "teacher_epochs", "teacher_lr",
                "teacher_seed", "data_seed", "freeze_word_embeddings", "val_size", "test_size")
STUDENT_KEYS = ("student_train", "student_epochs", "student_lr", "student_layers", "temperature", "alpha",
                "hidden_weight", "hidden_loss", "freeze_word_embeddings", "batch_size", "val_size", "test_size",
                "curve_points")


# ------------------------------------------------------------------------------------------------ data


def prepare_data(profile: DistillProfile):
    tokenizer = load_tokenizer(profile.model)
    data = tokenize(load_text_classification(profile.dataset), tokenizer, max_length=profile.max_length)
    teacher_train = subset(data["train"], profile.teacher_train, seed=profile.data_seed)
    # the students' training set is a prefix of the teacher's: the teacher's soft targets are on data it saw
    student_train = teacher_train.select(range(min(profile.student_train or len(teacher_train), len(teacher_train))))
    student_train = student_train.add_column(EXAMPLE_INDEX_KEY, list(range(len(student_train))))
    return tokenizer, dict(teacher_train=teacher_train, student_train=student_train,
                           validation=subset(data["validation"], profile.val_size, seed=profile.data_seed),
                           test=subset(data["test"], profile.test_size, seed=profile.data_seed))


# ---------------------------------------------------------------------------------------------- training


def train_and_track(model, loader, *, profile, epochs, lr, step, val_loader, device, desc, seed):
    """``fit`` with validation accuracy at ``curve_points`` evenly spaced steps (and at step 0)."""
    seed_everything(seed)
    total = max(1, math.ceil(epochs * len(loader)))
    marks = sorted({round(total * (i + 1) / profile.curve_points) for i in range(profile.curve_points)})
    curve = [(0, evaluate(model, val_loader, device)["accuracy"])]

    def on_step(global_step):
        if global_step in marks:
            curve.append((global_step, evaluate(model, val_loader, device)["accuracy"]))

    started = time.perf_counter()
    history = fit(model, loader, epochs=epochs, lr=lr, step=step, on_step=on_step, device=device, desc=desc)
    return curve, history, time.perf_counter() - started


def evaluate(model, loader, device) -> dict:
    """Accuracy and the per-example predicted classes (encoded, :func:`~compresslib.runs.common.encode_classes`)."""
    predictions = predict_logits(model, loader, device=device).argmax(-1)
    labels = torch.cat([b["labels"] for b in loader])
    return {"accuracy": (predictions == labels).float().mean().item(), "predictions": encode_classes(predictions.tolist())}


def thin(history, points=60):
    """Every k-th record of a per-step history, so results.json stays small."""
    k = max(1, len(history) // points)
    return [dict(step=i + 1, **{key: round(v, 5) for key, v in rec.items()}) for i, rec in enumerate(history) if i % k == 0]


def part_config(profile: DistillProfile, keys) -> dict:
    config = profile.config()
    return {k: config[k] for k in keys}


def teacher_part(profile, tokenizer, data, folder: Path, device):
    """Fine-tune the teacher once; its weights go to ``teacher/`` and its results to ``teacher.json``."""
    loaders = {split: make_loader(data[split], tokenizer, batch_size=profile.eval_batch_size, shuffle=False)
               for split in ("validation", "test")}
    model_box = {}

    def compute():
        seed_everything(profile.teacher_seed)
        model = load_classifier(profile.model, num_labels=2, seed=profile.teacher_seed).to(device)
        freeze_word_embeddings(model, profile.freeze_word_embeddings)
        loader = make_loader(data["teacher_train"], tokenizer, batch_size=profile.batch_size, shuffle=True,
                             seed=profile.teacher_seed)
        curve, history, seconds = train_and_track(
            model, loader, profile=profile, epochs=profile.teacher_epochs, lr=profile.teacher_lr, step=hard_label_step,
            val_loader=loaders["validation"], device=device, desc="teacher", seed=profile.teacher_seed)
        freeze_word_embeddings(model, False)  # saved trainable, as a notebook loading it expects
        model.save_pretrained(paths.teacher_dir(folder))
        model_box["model"] = model
        test = evaluate(model, loaders["test"], device)
        return dict(test_accuracy=test["accuracy"], test_predictions=test["predictions"], curve=curve,
                    history=thin(history), train_seconds=round(seconds, 1), train_examples=len(data["teacher_train"]),
                    examples_per_second=round(len(history) * profile.batch_size / seconds, 1))

    if not (paths.teacher_dir(folder) / "config.json").exists():
        paths.teacher_json(folder).unlink(missing_ok=True)  # weights lost: retrain
    result = cached(paths.teacher_json(folder), compute, config=part_config(profile, TEACHER_KEYS))
    model = model_box.get("model") or AutoModelForSequenceClassification.from_pretrained(paths.teacher_dir(folder)).to(device)
    return model.eval(), result


@torch.no_grad()
def cache_teacher_outputs(profile, teacher, tokenizer, dataset, teacher_layers, folder: Path, device):
    """Teacher logits and the hidden states of ``teacher_layers`` on the students' training set, computed once.

    Hidden states are stored in float16, padded to ``max_length``; each example's row is found through its
    ``example_index`` column. Padding positions differ from a run with other padding but never count
    (the hidden loss is masked)."""
    path = paths.teacher_outputs(folder)
    key = {"n": len(dataset), "max_length": profile.max_length, "layers": teacher_layers,
           "teacher": read_json(paths.teacher_json(folder))["config"]}
    if path.exists():
        stored = torch.load(path)
        if stored["key"] == key:
            return stored["logits"], stored["hidden"]
    loader = make_loader(dataset, tokenizer, batch_size=profile.eval_batch_size, shuffle=False)
    logits = torch.zeros(len(dataset), teacher.config.num_labels)
    hidden = torch.zeros(len(teacher_layers), len(dataset), profile.max_length, teacher.config.hidden_size,
                         dtype=torch.float16)
    started, row = time.perf_counter(), 0
    teacher.eval()
    for batch in tqdm(loader, desc="caching teacher outputs", leave=False, mininterval=1.0):
        inputs = {k: v.to(device) for k, v in model_inputs(batch).items()}
        with autocast(device):
            output = teacher(**inputs, output_hidden_states=True)
        n, length = inputs["input_ids"].shape
        logits[row:row + n] = output.logits.float().cpu()
        for k, t in enumerate(teacher_layers):
            hidden[k, row:row + n, :length] = output.hidden_states[t].to(torch.float16).cpu()
        row += n
    seconds = time.perf_counter() - started
    torch.save({"key": key, "logits": logits, "hidden": hidden, "seconds": seconds}, path)
    print(f"cached teacher outputs for {len(dataset)} examples in {seconds:.1f} s")
    return logits, hidden


def student_part(name, arm, seed, *, profile, teacher, tokenizer, data, cache, folder, device):
    logits, hidden, student_to_cache = cache
    config = {"variant": arm, "seed": seed, "teacher": read_json(paths.teacher_json(folder))["config"],
              **part_config(profile, STUDENT_KEYS)}

    def compute():
        layers = profile.student_layers if arm["init"] != "random" else "random"
        student = init_student_from_teacher(teacher, layers, seed=1000 + seed).to(device)
        # pre-trained copies stay fixed; a random student must learn its embeddings
        freeze_word_embeddings(student, profile.freeze_word_embeddings and arm["init"] != "random")
        train, extra, step = data["student_train"], (), hard_label_step
        if arm["loss"] != "hard":
            train = with_teacher_logits(train, logits)
            extra = (TEACHER_LOGITS_KEY,)
            step = cached_kd_step(temperature=profile.temperature, alpha=profile.alpha)
            if arm["loss"] == "kd+hidden":
                extra = (TEACHER_LOGITS_KEY, EXAMPLE_INDEX_KEY)
                step = cached_kd_hidden_step(hidden, student_to_cache, temperature=profile.temperature,
                                             alpha=profile.alpha, weight=profile.hidden_weight, loss=profile.hidden_loss)
        loader = make_loader(train, tokenizer, batch_size=profile.batch_size, shuffle=True, seed=seed, extra_columns=extra)
        val_loader = make_loader(data["validation"], tokenizer, batch_size=profile.eval_batch_size, shuffle=False)
        test_loader = make_loader(data["test"], tokenizer, batch_size=profile.eval_batch_size, shuffle=False)
        curve, history, seconds = train_and_track(
            student, loader, profile=profile, epochs=profile.student_epochs, lr=profile.student_lr, step=step,
            val_loader=val_loader, device=device, desc=f"{name} (seed {seed})", seed=seed)
        test = evaluate(student, test_loader, device)
        return dict(test_accuracy=test["accuracy"], test_predictions=test["predictions"], curve=curve,
                    history=thin(history), train_seconds=round(seconds, 1),
                    examples_per_second=round(len(history) * profile.batch_size / seconds, 1),
                    layers=student.config.student_of_teacher_layers)

    return cached(paths.student_json(folder, name, seed), compute, config=config)


def timing_part(profile, teacher, tokenizer, data, folder, device):
    """Parameters and inference time of the teacher and of a half-depth student (all students share one
    architecture) over the same test batches, timed in interleaved rounds."""
    n = profile.timing_batches * profile.eval_batch_size
    timing_set = data["test"].select(range(min(n, len(data["test"]))))
    loader = make_loader(timing_set, tokenizer, batch_size=profile.eval_batch_size, shuffle=False)
    student = init_student_from_teacher(teacher, profile.student_layers).to(device)

    def compute():
        seconds = compare_inference_times({"teacher": teacher, "student": student}, loader, device=device)
        return {
            "examples": len(timing_set), "batch_size": profile.eval_batch_size, "device": str(device),
            "method": "best of 3 interleaved rounds of 3 passes each",
            "teacher": {"params": count_parameters(teacher), "seconds": seconds["teacher"]},
            "student": {"params": count_parameters(student), "seconds": seconds["student"],
                        "layers": student.config.student_of_teacher_layers},
        }

    return cached(paths.timing_json(folder), compute, config={"n": len(timing_set), "device": str(device),
                                                             "model": profile.model, "layers": profile.student_layers,
                                                             "method": "interleaved"})


# --------------------------------------------------------------------------------------------- the run


def execute(profile: DistillProfile, folder: Path, device: torch.device) -> dict:
    """Every part of the run (each cached under ``folder``) and what they measured."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer, data = prepare_data(profile)
    teacher, teacher_result = teacher_part(profile, tokenizer, data, folder, device)
    print(f"teacher: test accuracy {teacher_result['test_accuracy']:.4f}")

    num_teacher = num_layers_of(teacher)
    num_student = len(select_layers(num_teacher, profile.student_layers))
    student_to_teacher = {s: t for s, t in uniform_layer_map(num_teacher, num_student).items() if s > 0}  # no embeddings
    teacher_layers = sorted(student_to_teacher.values())
    student_to_cache = {s: teacher_layers.index(t) for s, t in student_to_teacher.items()}
    logits, hidden = cache_teacher_outputs(profile, teacher, tokenizer, data["student_train"], teacher_layers,
                                           folder, device)
    students = {}
    for name, arm in ARMS.items():
        students[name] = []
        for seed in profile.seeds:
            result = student_part(name, arm, seed, profile=profile, teacher=teacher, tokenizer=tokenizer, data=data,
                                  cache=(logits, hidden, student_to_cache), folder=folder, device=device)
            print(f"{name}, seed {seed}: test accuracy {result['test_accuracy']:.4f}")
            students[name].append(result)
    timing = timing_part(profile, teacher, tokenizer, data, folder, device)
    return {
        "sizes": {k: len(v) for k, v in data.items()},
        "majority_class": {split: stats.majority_class_accuracy(data[split]["label"]) for split in ("validation", "test")},
        "test_labels": encode_classes(data["test"]["label"]),
        "layer_map": {"student_to_teacher": {str(s): t for s, t in student_to_teacher.items()},
                      "student_to_cache": {str(s): k for s, k in student_to_cache.items()}},
        "teacher": teacher_result,
        "students": {name: {"seeds": list(profile.seeds), "test_accuracy": [r["test_accuracy"] for r in runs],
                            "runs": runs} for name, runs in students.items()},
        "timing": timing,
        "wall_seconds_total_of_parts": round(sum(r["train_seconds"] for runs in students.values() for r in runs)
                                             + teacher_result["train_seconds"], 1),
    }


def summarise(results: dict) -> dict:
    """The table (retention both ways, :func:`compresslib.stats.retention`) and the claims, from results alone."""
    teacher, floor, timing = results["teacher"]["test_accuracy"], results["majority_class"]["test"], results["timing"]
    table = [dict(model="teacher", params_millions=timing["teacher"]["params"] / 1e6,
                  inference_seconds=timing["teacher"]["seconds"], accuracy=stats.summarize([teacher]).as_dict(),
                  retention=stats.retention(teacher, teacher, floor).as_dict())]
    for name, arm in results["students"].items():
        summary = stats.summarize(arm["test_accuracy"])
        table.append(dict(model=name, params_millions=timing["student"]["params"] / 1e6,
                          inference_seconds=timing["student"]["seconds"], accuracy=summary.as_dict(),
                          retention=stats.retention(summary.mean, teacher, floor).as_dict()))
    claims = []
    for key, (a, b) in COMPARISONS.items():
        correct = {}
        runs = results["students"][a]["runs"] + results["students"][b]["runs"]
        if "test_labels" in results and all("test_predictions" in r for r in runs):
            labels = decode_classes(results["test_labels"])
            correct = {f"correct_{side}": stats.pool_seeds(
                [decode_classes(r["test_predictions"]) for r in results["students"][arm]["runs"]], labels)
                for side, arm in (("a", a), ("b", b))}
        claims.append(compare(key, a, results["students"][a]["test_accuracy"], b,
                              results["students"][b]["test_accuracy"], **correct).as_dict())
    return {"table": table, "claims": claims}


def _title_of_figures(results: dict) -> str:
    layers = len(results["timing"]["student"]["layers"])
    return (f"{results['config']['model']} -> {layers}-layer students, "
            f"{results['sizes']['student_train']} training examples")


def plot(results: dict, folder: Path) -> list[str]:
    """``learning_curves.png`` (validation) and ``accuracy.png`` (test) in ``folder``; returns their names."""
    title = _title_of_figures(results)
    report.learning_curves({name: [r["curve"] for r in arm["runs"]] for name, arm in results["students"].items()},
                           paths.figure(folder, "learning_curves"), title=title,
                           majority=results["majority_class"]["validation"],
                           reference=("teacher after fine-tuning (validation)", results["teacher"]["curve"][-1][1]))
    bars = [dict(model=row["model"], mean=row["accuracy"]["mean"], std=row["accuracy"]["std"],
                 label=" / ".join(report.percent(row["retention"][k]) + "%" * (row["retention"][k] is not None)
                                  for k in ("of_teacher", "of_gain")))
            for row in results["table"]]
    report.accuracy_bars(bars, paths.figure(folder, "accuracy"), majority=results["majority_class"]["test"],
                         title=title + "\nabove each bar: % of the teacher / % of its gain over the majority class")
    return ["accuracy.png", "learning_curves.png"]


FIGURES = (("accuracy", "accuracy.png"), ("learning curves", "learning_curves.png"))


def title(results: dict) -> str:
    return f"Distillation ({results['profile']} profile)"


def markdown(results: dict, figure_prefix: str = "") -> str:
    """The lecture's DistilBERT table, the claims and the figures."""
    config, timing, pct = results["config"], results["timing"], report.pct
    rows = [[row["model"], f"{row['params_millions']:.1f}", f"{row['inference_seconds']:.2f}",
             pct(row["accuracy"]["mean"], row["accuracy"]["std"]), report.percent(row["retention"]["of_teacher"]),
             report.percent(row["retention"]["of_gain"])] for row in results["table"]]
    header = ["model", "params (M)", "inference time (s)", "test accuracy (%)", "% of teacher",
              "% of teacher's gain over majority"]
    seeds = results["students"][next(iter(results["students"]))]["seeds"]
    lines = [
        f"Teacher `{config['model']}` on `{config['dataset']}`; students with layers {timing['student']['layers']} "
        "of the teacher.",
        "",
        report.markdown_table(header, rows),
        "",
        f"Accuracy on {results['sizes']['test']} test snippets, mean ± sample std over student seeds {seeds} "
        f"(teacher: one fine-tuning run, seed {config['teacher_seed']}); a constant guess of the majority class "
        f"scores {pct(results['majority_class']['test'])}%. Inference time: one pass over the same "
        f"{timing['examples']} test snippets in batches of {timing['batch_size']} on `{timing['device']}`, "
        f"{timing['method']}. Teacher fine-tuned on {results['sizes']['teacher_train']} training snippets for "
        f"{config['teacher_epochs']:g} epoch(s); students trained on the first {results['sizes']['student_train']} "
        f"of them for {config['student_epochs']:g} epoch(s); max {config['max_length']} tokens"
        + (", word embeddings frozen where pre-trained." if config["freeze_word_embeddings"] else "."),
        f"KD: alpha {config['alpha']}, T {config['temperature']:g}, cached teacher logits; hidden: "
        f"{config['hidden_loss']} loss on the uniform layer map, weight {config['hidden_weight']:g}.",
        "",
        "Claims, paired by seed:",
        "",
        report.claims_markdown(results["claims"]),
        "",
        report.figure_links(FIGURES, figure_prefix),
    ]
    return "\n".join(lines)



RUN = Run(name="distill", description=__doc__, profiles=PROFILES, execute=execute, summarise=summarise, plot=plot,
          markdown=markdown, title=title)


def main(argv=None) -> int:
    return run_main(RUN, argv)
