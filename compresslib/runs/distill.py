"""Reference run: distil a half-depth BERT student (the lecture's DistilBERT result on the embedded default).

``python -m compresslib.runs distill --profile quick|cpu|gpu [--out runs/distill/<profile>]``

1. fine-tune the teacher (MiniLM-L6 on Rotten Tomatoes polarity by default);
2. cache its logits (and the hidden states the hidden-state loss needs) on the students' training set once;
3. train half-depth students over several seeds: random init + hard labels; layer-skipping init + hard
   labels; layer-skipping init + combined loss (KD); + cosine hidden-state loss;
4. write ``results.json`` (with provenance), ``table.md`` (the lecture's DistilBERT table: parameters,
   measured inference time, accuracy mean +- std, % of the teacher), ``learning_curves.png`` and
   ``accuracy.png``. (Notebook 02's grading fixtures: ``python -m compresslib.grading.record 02_distilbert_student``.)

Every part is stored under ``--out`` as soon as it is done (``teacher/``, ``students/*.json``,
``timing.json``), so a rerun skips finished parts.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from compresslib.runs.common import cached, mean_std, provenance, read_json, seed_everything, write_json

PROFILES = {
    # a newcomer's first look: the same files in a few minutes, one seed, small subsets
    "quick": dict(max_length=48, batch_size=16, eval_batch_size=128, teacher_train=800, teacher_epochs=1.0,
                  teacher_lr=2e-4, student_train=400, student_epochs=1.0, student_lr=2e-4, val_size=200,
                  test_size=500, seeds=[0], curve_points=2, timing_batches=4, freeze_word_embeddings=True),
    # the README's figures, within 20 minutes on a 2-core CPU
    "cpu": dict(max_length=48, batch_size=16, eval_batch_size=128, teacher_train=4000, teacher_epochs=1.0,
                teacher_lr=2e-4, student_train=2000, student_epochs=1.0, student_lr=2e-4, val_size=300,
                test_size=None, seeds=[0, 1, 2], curve_points=3, timing_batches=8, freeze_word_embeddings=True),
    # full size on a GPU (bf16 autocast through compresslib.training): all data, more epochs and seeds
    "gpu": dict(max_length=64, batch_size=32, eval_batch_size=256, teacher_train=None, teacher_epochs=3.0,
                teacher_lr=5e-5, student_train=None, student_epochs=3.0, student_lr=1e-4, val_size=None,
                test_size=None, seeds=[0, 1, 2, 3, 4], curve_points=8, timing_batches=10,
                freeze_word_embeddings=False),
}
COMMON = dict(model="all-MiniLM-L6-v2", dataset="rotten_tomatoes_polarity", student_layers="every_other",
              temperature=2.0, alpha=0.5, hidden_weight=1.0, hidden_loss="cosine", teacher_seed=0, data_seed=0)

VARIANTS = {
    "random init + hard labels": dict(init="random", loss="hard"),
    "layer-skip init + hard labels": dict(init="every_other", loss="hard"),
    "layer-skip init + KD": dict(init="every_other", loss="kd"),
    "layer-skip init + KD + hidden": dict(init="every_other", loss="kd+hidden"),
}
INDEX_KEY = "example_index"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m compresslib.runs distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--out", type=Path, default=None, help="default: runs/distill/<profile>")
    parser.add_argument("--model", default=COMMON["model"], help="teacher: the embedded default or a hub name")
    parser.add_argument("--dataset", default=COMMON["dataset"], help="the embedded default, glue/sst2, ...")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="override the profile's seeds")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out = args.out or Path("runs/distill") / args.profile
    config = {**COMMON, **PROFILES[args.profile], "profile": args.profile, "model": args.model, "dataset": args.dataset}
    if args.seeds:
        config["seeds"] = args.seeds
    start = time.perf_counter()
    results = run(config, args.out, device=args.device)
    results["wall_seconds_this_invocation"] = round(time.perf_counter() - start, 1)
    write_json(args.out / "results.json", results)
    print((args.out / "table.md").read_text())
    print(f"wrote {args.out}/results.json, table.md, learning_curves.png, accuracy.png "
          f"in {results['wall_seconds_this_invocation']:.0f} s")
    return 0


# ------------------------------------------------------------------------------------------------ data


def prepare_data(config):
    from compresslib.data import load_text_classification
    from compresslib.models import load_tokenizer
    from compresslib.training import tokenize

    tokenizer = load_tokenizer(config["model"])
    data = tokenize(load_text_classification(config["dataset"]), tokenizer, max_length=config["max_length"])

    def subset(split, size):
        part = data[split].shuffle(seed=config["data_seed"])
        return part.select(range(min(size, len(part)))) if size else part

    teacher_train = subset("train", config["teacher_train"])
    # the students' training set is a prefix of the teacher's: the teacher's soft targets are on data it saw
    n_student = config["student_train"] or len(teacher_train)
    student_train = teacher_train.select(range(min(n_student, len(teacher_train))))
    student_train = student_train.add_column(INDEX_KEY, list(range(len(student_train))))
    return tokenizer, dict(teacher_train=teacher_train, student_train=student_train,
                           validation=subset("validation", config["val_size"]), test=subset("test", config["test_size"]))


# ---------------------------------------------------------------------------------------------- training


def freeze_word_embeddings(model) -> None:
    """Keep the (pre-trained) word-embedding matrix fixed: on CPU its AdamW update over 30k x d entries is a
    large share of each step, and a small training set cannot improve it much."""
    model.get_input_embeddings().weight.requires_grad_(False)


def train_and_track(model, loader, *, config, epochs, lr, step, val_loader, device, desc, seed):
    """``fit`` with validation accuracy at ``curve_points`` evenly spaced steps (and at step 0)."""
    from compresslib.training import accuracy, fit

    seed_everything(seed)
    total = max(1, math.ceil(epochs * len(loader)))
    marks = sorted({round(total * (i + 1) / config["curve_points"]) for i in range(config["curve_points"])})
    curve = [(0, accuracy(model, val_loader, device=device))]

    def on_step(global_step):
        if global_step in marks:
            curve.append((global_step, accuracy(model, val_loader, device=device)))

    started = time.perf_counter()
    history = fit(model, loader, epochs=epochs, lr=lr, step=step, on_step=on_step, device=device, desc=desc)
    seconds = time.perf_counter() - started
    return curve, history, seconds


def thin(history, points=60):
    """Every k-th record of a per-step history, so results.json stays small."""
    k = max(1, len(history) // points)
    return [dict(step=i + 1, **{key: round(v, 5) for key, v in rec.items()}) for i, rec in enumerate(history) if i % k == 0]


def teacher_part(config, tokenizer, data, out: Path, device):
    """Fine-tune the teacher once; its weights go to ``out/teacher`` and its results to ``teacher.json``."""
    from transformers import AutoModelForSequenceClassification

    from compresslib.models import load_classifier
    from compresslib.training import accuracy, make_loader

    folder = out / "teacher"
    part_config = {k: config[k] for k in ("model", "dataset", "max_length", "batch_size", "teacher_train",
                                          "teacher_epochs", "teacher_lr", "teacher_seed", "data_seed",
                                          "freeze_word_embeddings", "val_size", "test_size")}
    val_loader = make_loader(data["validation"], tokenizer, batch_size=config["eval_batch_size"], shuffle=False)
    test_loader = make_loader(data["test"], tokenizer, batch_size=config["eval_batch_size"], shuffle=False)
    model_box = {}

    def compute():
        seed_everything(config["teacher_seed"])
        model = load_classifier(config["model"], num_labels=2, seed=config["teacher_seed"]).to(device)
        if config["freeze_word_embeddings"]:
            freeze_word_embeddings(model)
        loader = make_loader(data["teacher_train"], tokenizer, batch_size=config["batch_size"], shuffle=True,
                             seed=config["teacher_seed"])
        curve, history, seconds = train_and_track(
            model, loader, config=config, epochs=config["teacher_epochs"], lr=config["teacher_lr"],
            step=_hard_step(), val_loader=val_loader, device=device, desc="teacher", seed=config["teacher_seed"])
        model.get_input_embeddings().weight.requires_grad_(True)
        model.save_pretrained(folder)
        model_box["model"] = model
        return dict(test_accuracy=accuracy(model, test_loader, device=device), curve=curve, history=thin(history),
                    train_seconds=round(seconds, 1), train_examples=len(data["teacher_train"]),
                    examples_per_second=round(len(history) * config["batch_size"] / seconds, 1))

    if not (folder / "config.json").exists() and (out / "teacher.json").exists():
        (out / "teacher.json").unlink()  # weights lost: retrain
    result = cached(out / "teacher.json", compute, config=part_config)
    model = model_box.get("model")
    if model is None:
        model = AutoModelForSequenceClassification.from_pretrained(folder).to(device)
    return model.eval(), result


def _hard_step():
    from compresslib.training import hard_label_step

    return hard_label_step


def cache_teacher_outputs(config, teacher, tokenizer, dataset, layer_map, out: Path, device):
    """Teacher logits and the mapped hidden states on the students' training set, computed once.

    Hidden states are stored in float16, padded to ``max_length``; each example's row is found through its
    ``example_index`` column. Padding positions differ from a run with other padding but never count
    (the hidden loss is masked)."""
    from compresslib.training import autocast, make_loader

    path = out / "teacher_outputs.pt"
    key = {"n": len(dataset), "max_length": config["max_length"], "layers": sorted(layer_map.values()),
           "teacher": read_json(out / "teacher.json")["config"]}
    if path.exists():
        stored = torch.load(path)
        if stored["key"] == key:
            return stored["logits"], stored["hidden"]
    loader = make_loader(dataset, tokenizer, batch_size=config["eval_batch_size"], shuffle=False)
    teacher_layers = sorted(layer_map.values())
    logits = torch.zeros(len(dataset), teacher.config.num_labels)
    hidden = torch.zeros(len(teacher_layers), len(dataset), config["max_length"], teacher.config.hidden_size,
                         dtype=torch.float16)
    started, row = time.perf_counter(), 0
    teacher.eval()
    from tqdm.auto import tqdm

    with torch.no_grad():
        for batch in tqdm(loader, desc="caching teacher outputs", leave=False, mininterval=1.0):
            inputs = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
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


def kd_hidden_step_factory(cached_hidden, student_to_cache, *, temperature, alpha, weight, loss):
    """The combined loss plus ``weight`` x the hidden-state loss against cached teacher hidden states."""
    from compresslib.distill.intermediate import hidden_states_loss
    from compresslib.distill.losses import combined_loss_parts
    from compresslib.distill.step import LABELS_KEY, TEACHER_LOGITS_KEY

    def step(model, batch, optimizer):
        model.train()
        inputs = {k: v for k, v in batch.items() if k not in (LABELS_KEY, TEACHER_LOGITS_KEY, INDEX_KEY)}
        output = model(**inputs, output_hidden_states=True)
        parts = combined_loss_parts(output.logits, batch[TEACHER_LOGITS_KEY], batch[LABELS_KEY], alpha, temperature)
        index = batch[INDEX_KEY].long().cpu()
        length = inputs["input_ids"].shape[1]
        device = output.logits.device
        teacher_states = [cached_hidden[k, index, :length].to(device).float() for k in range(cached_hidden.shape[0])]
        hidden = hidden_states_loss(output.hidden_states, teacher_states, student_to_cache, loss=loss,
                                    mask=inputs["attention_mask"])
        total = parts.total + weight * hidden
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        return {"loss": total.item(), "hard": parts.hard.item(), "soft": parts.soft.item(), "hidden": hidden.item()}

    return step


def kd_step_factory(*, temperature, alpha):
    from compresslib.distill.step import kd_step

    def step(model, batch, optimizer):
        return kd_step(None, model, batch, optimizer, temperature=temperature, alpha=alpha)

    return step


def student_part(name, variant, seed, *, config, teacher, tokenizer, data, cache, out, device):
    from compresslib.distill.student import init_student_from_teacher
    from compresslib.training import accuracy, hard_label_step, make_loader, with_teacher_logits

    logits, hidden, layer_map = cache
    part_config = {"variant": variant, "seed": seed, "teacher": read_json(out / "teacher.json")["config"],
                   **{k: config[k] for k in ("student_train", "student_epochs", "student_lr", "student_layers",
                                             "temperature", "alpha", "hidden_weight", "hidden_loss",
                                             "freeze_word_embeddings", "batch_size", "val_size", "test_size",
                                             "curve_points")}}
    path = out / "students" / f"{name.replace(' + ', '__').replace(' ', '_').replace('-', '_')}__seed{seed}.json"

    def compute():
        layers = config["student_layers"] if variant["init"] != "random" else "random"
        student = init_student_from_teacher(teacher, layers, seed=1000 + seed).to(device)
        if config["freeze_word_embeddings"] and variant["init"] != "random":
            freeze_word_embeddings(student)  # pre-trained copies stay fixed; a random student must learn them
        train = data["student_train"]
        extra = ()
        if variant["loss"] == "hard":
            step = hard_label_step
        else:
            train = with_teacher_logits(train, logits)
            extra = ("teacher_logits",)
            step = kd_step_factory(temperature=config["temperature"], alpha=config["alpha"])
            if variant["loss"] == "kd+hidden":
                extra = ("teacher_logits", INDEX_KEY)
                step = kd_hidden_step_factory(hidden, layer_map["student_to_cache"], temperature=config["temperature"],
                                              alpha=config["alpha"], weight=config["hidden_weight"],
                                              loss=config["hidden_loss"])
        loader = make_loader(train, tokenizer, batch_size=config["batch_size"], shuffle=True, seed=seed,
                             extra_columns=extra)
        val_loader = make_loader(data["validation"], tokenizer, batch_size=config["eval_batch_size"], shuffle=False)
        test_loader = make_loader(data["test"], tokenizer, batch_size=config["eval_batch_size"], shuffle=False)
        curve, history, seconds = train_and_track(
            student, loader, config=config, epochs=config["student_epochs"], lr=config["student_lr"], step=step,
            val_loader=val_loader, device=device, desc=f"{name} (seed {seed})", seed=seed)
        return dict(test_accuracy=accuracy(student, test_loader, device=device), curve=curve, history=thin(history),
                    train_seconds=round(seconds, 1),
                    examples_per_second=round(len(history) * config["batch_size"] / seconds, 1),
                    layers=student.config.student_of_teacher_layers)

    return cached(path, compute, config=part_config)


def timing_part(config, teacher, tokenizer, data, out, device):
    """Parameters and measured inference time of the teacher and of a half-depth student (all students
    share one architecture), over the same test batches on the same device."""
    from compresslib.distill.student import init_student_from_teacher
    from compresslib.models import count_parameters
    from compresslib.training import make_loader, time_inference

    n = config["timing_batches"] * config["eval_batch_size"]
    subset = data["test"].select(range(min(n, len(data["test"]))))
    loader = make_loader(subset, tokenizer, batch_size=config["eval_batch_size"], shuffle=False)
    student = init_student_from_teacher(teacher, config["student_layers"]).to(device)

    def compute():
        return {
            "examples": len(subset), "batch_size": config["eval_batch_size"], "device": str(device),
            "teacher": {"params": count_parameters(teacher), "seconds": time_inference(teacher, loader, device=device)},
            "student": {"params": count_parameters(student), "seconds": time_inference(student, loader, device=device),
                        "layers": student.config.student_of_teacher_layers},
        }

    return cached(out / "timing.json", compute, config={"n": len(subset), "device": str(device),
                                                       "model": config["model"], "layers": config["student_layers"]})


# --------------------------------------------------------------------------------------------- the run


def run(config: dict, out: Path, *, device=None) -> dict:
    from compresslib.distill.intermediate import uniform_layer_map
    from compresslib.distill.student import num_layers_of, select_layers
    from compresslib.training import choose_device

    device = choose_device(device)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tokenizer, data = prepare_data(config)
    teacher, teacher_result = teacher_part(config, tokenizer, data, out, device)
    print(f"teacher: test accuracy {teacher_result['test_accuracy']:.4f}")

    num_teacher = num_layers_of(teacher)
    num_student = len(select_layers(num_teacher, config["student_layers"]))
    hidden_map = {s: t for s, t in uniform_layer_map(num_teacher, num_student).items() if s > 0}  # skip embeddings
    teacher_layers = sorted(hidden_map.values())
    layer_map = {"student_to_teacher": hidden_map,
                 "student_to_cache": {s: teacher_layers.index(t) for s, t in hidden_map.items()}}
    logits, hidden = cache_teacher_outputs(config, teacher, tokenizer, data["student_train"], hidden_map, out, device)
    cache = (logits, hidden, layer_map)

    students = {}
    for name, variant in VARIANTS.items():
        students[name] = []
        for seed in config["seeds"]:
            result = student_part(name, variant, seed, config=config, teacher=teacher, tokenizer=tokenizer,
                                  data=data, cache=cache, out=out, device=device)
            print(f"{name}, seed {seed}: test accuracy {result['test_accuracy']:.4f}")
            students[name].append(result)
    timing = timing_part(config, teacher, tokenizer, data, out, device)

    rows = table_rows(teacher_result, students, timing)
    (out / "table.md").write_text(markdown_table(rows, config, timing, data))
    from compresslib.runs.plots import accuracy_bars, learning_curves

    title = f"{config['model']} -> {num_student}-layer students, {len(data['student_train'])} training examples"
    learning_curves({name: [r["curve"] for r in runs] for name, runs in students.items()},
                    teacher_result["test_accuracy"], out / "learning_curves.png", title=title)
    accuracy_bars(rows, out / "accuracy.png", title=title)
    claims = check_claims(students)
    return {
        "provenance": provenance(config, device),
        "sizes": {k: len(v) for k, v in data.items()},
        "layer_map": {k: {str(s): t for s, t in v.items()} for k, v in layer_map.items()},
        "teacher": teacher_result,
        "students": {name: {"seeds": config["seeds"], "test_accuracy": [r["test_accuracy"] for r in runs],
                            "runs": runs} for name, runs in students.items()},
        "timing": timing,
        "table": rows,
        "claims": claims,
        "wall_seconds_total_of_parts": round(sum(r["train_seconds"] for runs in students.values() for r in runs)
                                             + teacher_result["train_seconds"], 1),
        "wall_seconds_run": round(time.perf_counter() - started, 1),
    }


def table_rows(teacher_result, students, timing) -> list[dict]:
    t_acc = teacher_result["test_accuracy"]
    rows = [dict(model="teacher", params_millions=timing["teacher"]["params"] / 1e6,
                 inference_seconds=timing["teacher"]["seconds"], accuracy_mean=t_acc, accuracy_std=0.0,
                 percent_of_teacher=100.0, seeds=1)]
    for name, runs in students.items():
        mean, std = mean_std([r["test_accuracy"] for r in runs])
        rows.append(dict(model=name, params_millions=timing["student"]["params"] / 1e6,
                         inference_seconds=timing["student"]["seconds"], accuracy_mean=mean, accuracy_std=std,
                         percent_of_teacher=100 * mean / t_acc, seeds=len(runs)))
    return rows


def markdown_table(rows, config, timing, data) -> str:
    lines = [
        f"Distillation on `{config['dataset']}` (profile `{config['profile']}`): teacher `{config['model']}`, "
        f"students with layers {timing['student']['layers']} of the teacher.",
        "",
        "| model | params (M) | inference time (s) | test accuracy (%) | % of teacher |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        spread = f" ± {100 * r['accuracy_std']:.1f}" if r["seeds"] > 1 else ""
        lines.append(f"| {r['model']} | {r['params_millions']:.1f} | {r['inference_seconds']:.2f} | "
                     f"{100 * r['accuracy_mean']:.1f}{spread} | {r['percent_of_teacher']:.1f} |")
    lines += [
        "",
        f"Accuracy on {len(data['test'])} test snippets, mean ± sample std over seeds {config['seeds']} for the "
        f"students (teacher: one fine-tuning run, seed {config['teacher_seed']}). Inference time: one pass over "
        f"the same {timing['examples']} test snippets in batches of {timing['batch_size']} on `{timing['device']}` "
        f"(best of 3). Teacher fine-tuned on {len(data['teacher_train'])} training snippets for "
        f"{config['teacher_epochs']:g} epoch(s); students trained on the first {len(data['student_train'])} of them "
        f"for {config['student_epochs']:g} epoch(s); max {config['max_length']} tokens"
        + (", word embeddings frozen where pre-trained." if config["freeze_word_embeddings"] else "."),
        f"KD: alpha {config['alpha']}, T {config['temperature']:g}, cached teacher logits; hidden: "
        f"{config['hidden_loss']} loss on the uniform layer map, weight {config['hidden_weight']:g}.",
        "",
    ]
    return "\n".join(lines)


def check_claims(students) -> dict:
    """The comparisons the lecture makes, with their margins against the seed-to-seed spread."""

    def stats(name):
        return mean_std([r["test_accuracy"] for r in students[name]])

    out = {}
    for claim, (better, worse) in {
        "kd_beats_hard": ("layer-skip init + KD", "layer-skip init + hard labels"),
        "layer_skip_beats_random": ("layer-skip init + hard labels", "random init + hard labels"),
        "hidden_vs_kd": ("layer-skip init + KD + hidden", "layer-skip init + KD"),
    }.items():
        (m1, s1), (m2, s2) = stats(better), stats(worse)
        out[claim] = {"better": better, "worse": worse, "difference": m1 - m2, "spread": max(s1, s2),
                      "holds_beyond_spread": bool(m1 - m2 > max(s1, s2))}
    return out
