"""Reference run: every compression technique on one cost ledger, and "train large, then compress".

``python -m compresslib.runs compress --profile quick|cpu|gpu``

1. fine-tune the large model (the teacher: MiniLM-L6 by default) and train the small one (the student: by
   default the pre-trained encoder's every other layer, DistilBERT's recipe, distilled from the same seed's
   teacher), one of each per seed; the learning rate chosen on validation accuracy on the first seed
   (``lr_grid``), or both loaded from checkpoints (``teacher_checkpoint``, ``student_checkpoint``);
2. compress each the same ways (:mod:`compresslib.runs.compress_recipes`: int8, 4-bit, fp16/bf16, pruning at
   several sparsities, pruned + int8, low-rank FFN with and without a short fine-tune, shared layers) and
   measure each variant's test accuracy on the test split (per-example predictions saved) and its ledger
   row (:func:`compresslib.ledger.ledger_row`);
3. time every variant against the fp32 teacher on the same batch, interleaved
   (:func:`compresslib.ledger.compare_latency`);
4. summarise (:mod:`compresslib.runs.compress_report`): the ledger, the frontier plot, a table per technique
   and the claims computed by :mod:`compresslib.stats`.

Files (:mod:`compresslib.runs.paths`): ``runs/compress/<profile>/`` holds ``results.json`` (with
provenance), ``results.md``, ``frontier.png`` and every part as soon as it is done (``seed<k>/<role>_lr<lr>/``
fine-tuned weights, ``seed<k>/<role>/<variant>.json``, pruned states, ``latency.json``), so a rerun skips
finished parts.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification

from compresslib import stats
from compresslib.batches import TEACHER_LOGITS_KEY
from compresslib.data import load_text_classification, subset
from compresslib.distill import cached_kd_step, init_student_from_teacher
from compresslib.ledger import compare_latency, ledger_row
from compresslib.models import DEFAULT_TEACHER, freeze_word_embeddings, load_classifier, load_tokenizer
from compresslib.files import atomic_path
from compresslib.prune import Mask, MaskEnforcer, trainable_state
from compresslib.runs import compress_report, paths
from compresslib.runs import compress_recipes as recipes
from compresslib.runs.common import cached, encode_classes, read_json, seed_everything, write_json
from compresslib.runs.hparams import Profile, option
from compresslib.runs.runner import Run, run_main
from compresslib.training import fit, hard_label_step, make_loader, predict_logits, tokenize, with_teacher_logits

ROLES = ("teacher", "student")
CPU = torch.device("cpu")


@dataclass(frozen=True)
class CompressProfile(Profile):
    teacher_model: str = option(DEFAULT_TEACHER, "the large model: the embedded default, a hub name or a local "
                                                 "folder written by save_pretrained")
    student_model: str | None = option(None, "the small model: none = the teacher's pre-trained encoder with every "
                                             "other layer (DistilBERT's recipe); or a hub name / local folder "
                                             "sharing the teacher's tokenizer (e.g. roberta-base for roberta-large)")
    student_loss: str = option("kd", "how the student learns: kd (hard labels + the same seed's teacher's soft "
                                     "targets, alpha and temperature) or hard (labels only, as Li et al.)")
    teacher_checkpoint: str | None = option(None, "load a fine-tuned teacher per seed instead of fine-tuning here: a "
                                                  "save_pretrained folder, {seed} replaced by the seed (e.g. another "
                                                  "run's checkpoints)")
    student_checkpoint: str | None = option(None, "the same for the student")
    dataset: str = option("rotten_tomatoes_polarity", "the embedded default, a GLUE task (glue/sst2) or a local folder")
    max_length: int = option(48, "tokens per snippet (the median snippet has 26); multiply-adds are counted at it")
    train_examples: int | None = option(4000, "training snippets (all: the whole split)")
    val_examples: int | None = option(500, "validation snippets for choosing the learning rate (all: the split)")
    test_examples: int | None = option(None, "test snippets (all: the whole split)")
    batch_size: int = option(32, "training batch size")
    eval_batch_size: int = option(128, "evaluation batch size (test snippets sorted by length)")
    epochs: float = option(1.0, "passes over the training snippets for the teacher and for the student")
    lr_grid: tuple[float, ...] = option((1e-4,), "peak learning rates (AdamW, 10% warm-up, linear decay) tried on "
                                                 "the first seed for teacher and student; the best on validation is "
                                                 "used for every seed (one value: nothing is chosen)")
    temperature: float = option(2.0, "T of the student's soft targets")
    alpha: float = option(0.5, "weight of the hard-label loss in the student's combined loss")
    seeds: tuple[int, ...] = option((0, 1, 2), "one teacher and one student per seed; claims pair by seed")
    freeze_word_embeddings: bool = option(True, "keep the word embeddings fixed while training (CPU time)")
    quantize_embeddings: bool = option(True, "int8 and 4-bit also store the word-embedding table at their bits "
                                             "(weight-only, one scale per row); off: it stays fp32")
    casts: tuple[str, ...] = option(("float16", "bfloat16"), "16-bit casts measured (float16, bfloat16)")
    half_eval: str = option("weights", "accuracy of the 16-bit casts: weights (weights rounded to 16 bits, float32 "
                                       "arithmetic: for CPUs) or native (the cast model)")
    sparsities: tuple[float, ...] = option((0.5, 0.75, 0.875), "sparsities of the encoder's linear weights, reached "
                                                               "one after the other")
    ranks: tuple[int, ...] = option((192, 96), "ranks of the low-rank FFN matrices (384 x 1536: break-even 307)")
    share_groups: int = option(1, "groups of consecutive layers sharing one layer's weights (1: ALBERT, all share)")
    share_init: str = option("mean", "each shared layer starts as the mean of its group (mean) or its j-th layer")
    recovery_steps: int = option(30, "fine-tuning steps after each pruning step, factorisation and sharing (0: none)")
    latency_batch: int = option(32, "test snippets in the latency batch (padded to max_length)")
    latency_rounds: int = option(3, "interleaved rounds of the latency comparison (best kept)")
    latency_repeats: int = option(3, "passes per model per round")
    budgets: tuple[float, ...] = option((0.15, 0.3, 0.6), "byte budgets, as fractions of the fp32 teacher's bytes, "
                                                          "at which the most accurate model is named")
    speedup_threshold: float = option(1.1, "a model counts as faster than the teacher from this speed-up on")
    byte_tolerance: float = option(0.02, "at equal bytes, a student variant counts as at least as large as the "
                                         "teacher's from this share below its bytes on")


PROFILES = {
    # a smoke test of every part: minutes on a laptop CPU, one seed, the numbers are not meaningful
    "quick": CompressProfile(
        name="quick", max_length=32, train_examples=256, val_examples=128, test_examples=256, seeds=(0,),
        casts=("bfloat16",), sparsities=(0.5, 0.75), ranks=(96,), recovery_steps=2, latency_batch=8,
        latency_rounds=2, latency_repeats=1, budgets=(0.15, 0.6),
        notes=("a smoke test of every part: 256 training snippets (8 steps), 256 test snippets, one seed (no "
               "confidence intervals), 2 recovery steps; the numbers are not meaningful",),
    ),
    # the README's figures: 5 seeds on the whole test split (2,551 snippets). Projected from CPU-seconds measured
    # per unit of work (bench/bench_compress_budget.py), not yet run end to end on an unloaded machine.
    "cpu": CompressProfile(
        name="cpu", max_length=32, train_examples=1600, batch_size=16, lr_grid=(1e-4, 2e-4), seeds=(0, 1, 2, 3, 4),
        casts=("bfloat16",), sparsities=(0.5, 0.75), recovery_steps=20,
        notes=("1,600 of the 9,181 training snippets for one epoch (100 steps of 16) for teacher and student; "
               "32 tokens (the median snippet has 26)",
               "a learning-rate grid of two values (1e-4, 2e-4), chosen on 500 validation snippets on the first "
               "seed for teacher and student (each extra value costs a teacher and a student); temperature and "
               "alpha fixed (T 2, alpha 0.5, the distill run's), not searched",
               "5 seeds; 20 recovery fine-tuning steps (320 snippets) after each pruning step, factorisation and "
               "sharing; sparsities 50% and 75% only",
               "bf16 only (fp16 has the same bytes, and its 11-bit mantissa rounds the weights less than bf16's 8 "
               "bits); its accuracy with the weights rounded to 16 bits and float32 arithmetic (16-bit matrix "
               "products are several times slower than fp32 on this CPU), its latency on the cast model",
               "word embeddings frozen while training"),
    ),
    # full size on a GPU: all data, a learning-rate grid, 5 seeds, longer recovery
    "gpu": CompressProfile(
        name="gpu", max_length=64, train_examples=None, val_examples=None, batch_size=32, eval_batch_size=256,
        epochs=3.0, lr_grid=(2e-5, 5e-5, 1e-4), seeds=(0, 1, 2, 3, 4), freeze_word_embeddings=False,
        half_eval="native", sparsities=(0.5, 0.75, 0.875, 0.9375), ranks=(256, 192, 128, 64), recovery_steps=300,
        latency_rounds=5, latency_repeats=5, budgets=(0.1, 0.2, 0.4, 0.6),
        notes=("all data, 3 epochs, a learning-rate grid, 5 seeds, 300 recovery steps; int8 runs on the CPU "
               "(its kernels are CPU kernels), everything else on the GPU at its own precision",),
    ),
}

TEACHER_KEYS = ("teacher_model", "teacher_checkpoint", "dataset", "max_length", "train_examples", "val_examples",
                "batch_size", "epochs", "freeze_word_embeddings")
STUDENT_KEYS = TEACHER_KEYS + ("student_model", "student_checkpoint", "student_loss", "temperature", "alpha")
VARIANT_KEYS = ("test_examples", "quantize_embeddings", "half_eval", "sparsities", "share_groups", "share_init",
                "recovery_steps", "batch_size")


def length_order(dataset) -> list[int]:
    """The row indices of ``dataset`` by increasing token count (stable)."""
    lengths = [len(ids) for ids in dataset["input_ids"]]
    return sorted(range(len(lengths)), key=lengths.__getitem__)


def by_length(dataset):
    """``dataset`` sorted by token count (stable), so evaluation batches carry little padding."""
    return dataset.select(length_order(dataset))


def padded_batch(dataset, tokenizer, size: int, length: int) -> dict[str, torch.Tensor]:
    """The first ``size`` examples of ``dataset`` as one batch padded to exactly ``length`` tokens (labels dropped)."""
    batch = next(iter(make_loader(dataset.select(range(min(size, len(dataset)))), tokenizer, batch_size=size,
                                  shuffle=False)))
    out = {}
    for key, value in batch.items():
        if key == "labels":
            continue
        fill = (tokenizer.pad_token_id or 0) if key == "input_ids" else 0
        out[key] = torch.nn.functional.pad(value, (0, length - value.shape[1]), value=fill)
    return out


class Experiment:
    """Data, the base models and every variant for one profile; each part cached under ``folder``."""

    def __init__(self, profile: CompressProfile, folder: Path, device: torch.device):
        if profile.student_loss not in ("kd", "hard"):
            raise ValueError(f"student_loss must be kd or hard, got {profile.student_loss!r}")
        if profile.half_eval not in ("weights", "native"):
            raise ValueError(f"half_eval must be weights or native, got {profile.half_eval!r}")
        self.profile, self.folder, self.device = profile, folder, device
        self.variants = recipes.variants(profile)
        self.tokenizer = load_tokenizer(profile.teacher_model)
        if profile.student_model is not None and load_tokenizer(profile.student_model).get_vocab() != self.tokenizer.get_vocab():
            raise ValueError(f"the student {profile.student_model!r} must share the teacher's tokenizer")
        data = tokenize(load_text_classification(profile.dataset), self.tokenizer, max_length=profile.max_length)
        self.train = subset(data["train"], profile.train_examples, seed=0)
        self.validation = by_length(subset(data["validation"], profile.val_examples, seed=0))
        self.test = subset(data["test"], profile.test_examples, seed=0)
        self.test_sorted = by_length(self.test)
        self.num_labels = max(max(data[s]["label"]) for s in data) + 1
        self.loaders = {name: make_loader(split, self.tokenizer, batch_size=profile.eval_batch_size, shuffle=False)
                        for name, split in (("validation", self.validation), ("test", self.test_sorted))}
        self.labels = {name: torch.tensor(split["label"]) for name, split in
                       (("validation", self.validation), ("test", self.test_sorted))}
        self.latency_batch = padded_batch(self.test, self.tokenizer, profile.latency_batch, profile.max_length)
        self.lrs: dict[str, float | None] = {}
        self._low_rank: dict[tuple, torch.nn.Module] = {}

    # ------------------------------------------------------------------------------------- helpers

    def config(self, keys) -> dict:
        config = self.profile.config()
        return {k: config[k] for k in keys}

    def evaluate(self, model, split: str = "test") -> dict:
        """Accuracy and per-example predictions (in the split's length-sorted order), each model on its own
        device at its own precision."""
        device = next(model.parameters()).device
        logits = predict_logits(model, self.loaders[split], device=device, desc=f"evaluating ({split})", amp=False)
        predictions = logits.argmax(-1)
        return {"accuracy": (predictions == self.labels[split]).float().mean().item(),
                "predictions": encode_classes(predictions.tolist())}

    def finetune(self, model, *, seed: int, lr: float, steps: int | None = None, dataset=None, step=hard_label_step,
                 extra=(), after_step=None, desc: str) -> float:
        """Train ``model`` in place (``steps`` steps, or ``epochs`` passes) on the training snippets; seconds."""
        seed_everything(seed)
        loader = make_loader(self.train if dataset is None else dataset, self.tokenizer,
                             batch_size=self.profile.batch_size, shuffle=True, seed=seed, extra_columns=extra)
        epochs = self.profile.epochs if steps is None else steps / len(loader)
        freeze_word_embeddings(model, self.profile.freeze_word_embeddings)
        started = time.perf_counter()
        fit(model, loader, epochs=epochs, lr=lr, step=step, after_step=after_step, device=self.device, desc=desc)
        return round(time.perf_counter() - started, 1)

    # --------------------------------------------------------------------------------- base models

    def checkpoint(self, role: str) -> str | None:
        return getattr(self.profile, f"{role}_checkpoint")

    def base(self, role: str, seed: int, lr: float | None):
        """The fine-tuned ``role`` model of ``seed`` (trained at ``lr``, or loaded from the checkpoint) and its
        record: validation accuracy, training time, where it came from."""
        keys = TEACHER_KEYS if role == "teacher" else STUDENT_KEYS
        config = {"role": role, "seed": seed, "lr": lr, **self.config(keys)}
        if role == "student" and self.profile.student_loss == "kd":
            config["teacher"] = self.teacher_config(seed)
        source = self.checkpoint(role)
        if source is not None:
            folder = Path(source.format(seed=seed))
        else:
            folder = paths.base_dir(self.folder, seed, role, lr)
            if not (folder / "config.json").exists():
                paths.base_json(self.folder, seed, role, lr).unlink(missing_ok=True)
        box = {}

        def compute():
            if source is not None:
                model, seconds = self.load(folder), None
            else:
                model, seconds = self.train_base(role, seed, lr)
                freeze_word_embeddings(model, False)  # saved trainable
                model.save_pretrained(folder)
            box["model"] = model
            validation = self.evaluate(model.eval(), "validation")
            return {"source": str(folder), "lr": lr, "train_seconds": seconds,
                    "validation_accuracy": validation["accuracy"],
                    "layers": model.config.num_hidden_layers, "hidden": model.config.hidden_size}

        record = cached(paths.base_json(self.folder, seed, role, lr or 0), compute, config=config)
        return (box.get("model") or self.load(folder)).eval(), record

    def load(self, folder: Path):
        return AutoModelForSequenceClassification.from_pretrained(folder).to(self.device)

    def train_base(self, role: str, seed: int, lr: float):
        p = self.profile
        if role == "teacher":
            model = load_classifier(p.teacher_model, num_labels=self.num_labels, seed=seed).to(self.device)
            return model, self.finetune(model, seed=seed, lr=lr, desc=f"teacher (seed {seed}, lr {lr:g})")
        if p.student_model is None:  # DistilBERT's recipe: every other pre-trained layer, a fresh head
            pretrained = load_classifier(p.teacher_model, num_labels=self.num_labels, seed=seed)
            model = init_student_from_teacher(pretrained, "every_other").to(self.device)
        else:
            model = load_classifier(p.student_model, num_labels=self.num_labels, seed=seed).to(self.device)
        desc = f"student (seed {seed}, lr {lr:g})"
        if p.student_loss == "hard":
            return model, self.finetune(model, seed=seed, lr=lr, desc=desc)
        dataset = with_teacher_logits(self.train, self.teacher_logits(seed))
        step = cached_kd_step(temperature=p.temperature, alpha=p.alpha)
        return model, self.finetune(model, seed=seed, lr=lr, dataset=dataset, step=step, extra=(TEACHER_LOGITS_KEY,),
                                    desc=desc)

    def teacher_config(self, seed: int) -> dict:
        """The config of the teacher of ``seed`` (fine-tuned or loaded first if it is not on file yet)."""
        path = paths.base_json(self.folder, seed, "teacher", self.lrs["teacher"] or 0)
        if not path.exists():
            self.base("teacher", seed, self.lrs["teacher"])
        return read_json(path)["config"]

    @torch.no_grad()
    def teacher_logits(self, seed: int) -> torch.Tensor:
        """The same seed's teacher's logits on the training snippets (cached once)."""
        path = paths.teacher_logits(self.folder, seed)
        key = self.teacher_config(seed)
        if path.exists():
            stored = torch.load(path)
            if stored["key"] == key:
                return stored["logits"]
        teacher, _ = self.base("teacher", seed, self.lrs["teacher"])
        order = length_order(self.train)
        loader = make_loader(self.train.select(order), self.tokenizer, batch_size=self.profile.eval_batch_size,
                             shuffle=False)
        logits = torch.empty(len(order), self.num_labels)
        logits[torch.tensor(order)] = predict_logits(teacher, loader, desc="teacher logits")
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"key": key, "logits": logits}, path)
        return logits

    def choose_lr(self, role: str) -> float | None:
        """The learning rate of ``role``: the only one of ``lr_grid``, or the best on validation on the first seed."""
        if self.checkpoint(role) is not None:
            self.lrs[role] = None
            return None
        grid = tuple(self.profile.lr_grid)
        if len(grid) == 1:
            self.lrs[role] = grid[0]
            return grid[0]
        seed = self.profile.seeds[0]
        scores = {}
        for lr in grid:
            self.lrs[role] = lr  # the candidate under test (the student's teacher is the chosen one)
            scores[lr] = self.base(role, seed, lr)[1]["validation_accuracy"]
        chosen = max(grid, key=lambda lr: (scores[lr], -grid.index(lr)))
        write_json(paths.selection_json(self.folder, role), {"grid": list(grid), "seed": seed, "chosen": chosen,
                                                             "validation_accuracy": {f"{lr:g}": scores[lr] for lr in grid}})
        self.lrs[role] = chosen
        return chosen

    # ------------------------------------------------------------------------------------ variants

    def variant(self, role: str, seed: int, base, variant: recipes.Variant) -> dict:
        """One variant of the ``role`` model of ``seed``: test accuracy, predictions and its ledger row."""
        base_config = read_json(paths.base_json(self.folder, seed, role, self.lrs[role] or 0))["config"]
        config = {"variant": variant.name, "base": base_config, **self.config(VARIANT_KEYS)}

        def compute():
            started = time.perf_counter()
            evaluated, stored, mask, train_seconds, extra = self.build(role, seed, base, variant)
            result = self.evaluate(evaluated)
            row = ledger_row(f"{role} {variant.name}", stored, seq_len=self.profile.max_length, mask=mask).to_dict()
            return {"test_accuracy": result["accuracy"], "test_predictions": result["predictions"], "ledger": row,
                    "train_seconds": train_seconds, "seconds": round(time.perf_counter() - started, 1), **extra}

        return cached(paths.variant_json(self.folder, seed, role, variant.name), compute, config=config)

    def recovery(self, model, role: str, seed: int, variant: recipes.Variant, after_step=None) -> float:
        salt = [v.name for v in self.variants].index(variant.name)
        return self.finetune(model, seed=10_000 * (seed + 1) + salt, lr=self.lrs[role] or self.profile.lr_grid[0],
                             steps=self.profile.recovery_steps, after_step=after_step,
                             desc=f"{role} {variant.name} (seed {seed})")

    def build(self, role: str, seed: int, base, v: recipes.Variant):
        """``(evaluated model, stored model, mask or None, training seconds, extra record)`` of variant ``v``."""
        p = self.profile
        if v.kind == recipes.UNCOMPRESSED:
            return base, base, None, None, {}
        if v.name == "int8":
            model = recipes.int8_model(base, quantize_embeddings=p.quantize_embeddings)
            return model, model, None, None, {"device": "cpu"}
        if v.kind == recipes.PRECISION and v.dtype is None:
            fake, stored = recipes.four_bit_models(base, quantize_embeddings=p.quantize_embeddings)
            check = recipes.max_output_difference(fake, stored, self.latency_batch)
            return fake, stored, None, None, {"max_logit_difference_fake_vs_stored": check}
        if v.kind == recipes.PRECISION:
            evaluated, stored = recipes.half_models(base, v.dtype, native=p.half_eval == "native")
            return evaluated, stored, None, None, {"evaluated": "cast model" if p.half_eval == "native" else
                                                   "weights rounded to 16 bits, float32 arithmetic"}
        if v.kind in (recipes.PRUNING, recipes.PRUNING_INT8):
            model, mask, seconds = self.pruned(role, seed, base, v.sparsity)
            if v.kind == recipes.PRUNING:
                return model, model, mask, seconds, {"sparsity": mask.sparsity}
            model = recipes.int8_model(model, quantize_embeddings=p.quantize_embeddings)
            return model, model, mask, None, {"sparsity": mask.sparsity, "device": "cpu"}
        if v.kind in (recipes.LOW_RANK, recipes.LOW_RANK_FT):
            model = self.low_rank(role, seed, base, v.rank)
            seconds = self.recovery(model, role, seed, v) if v.finetune else None
            return model.eval(), model, None, seconds, {}
        if v.kind == recipes.SHARING:
            model = recipes.shared_model(base, groups=p.share_groups, init=p.share_init)
            seconds = self.recovery(model, role, seed, v)
            return model.eval(), model, None, seconds, {}
        raise ValueError(f"unknown variant kind {v.kind!r}")

    def low_rank(self, role: str, seed: int, base, rank: int):
        """A copy of the base factorised at ``rank`` (the SVDs computed once per process for each model)."""
        key = (role, seed, rank)
        if key not in self._low_rank:
            self._low_rank[key] = recipes.low_rank_model(base, rank)
        return copy.deepcopy(self._low_rank[key])

    def pruned(self, role: str, seed: int, base, sparsity: float):
        """The model pruned to ``sparsity`` and fine-tuned, its mask and the seconds spent (None when loaded):
        built from the previous sparsity's model (loaded, or built first), stored as safetensors."""
        state_path, mask_path = (paths.pruned_state(self.folder, seed, role, sparsity),
                                 paths.pruned_mask(self.folder, seed, role, sparsity))
        model = copy.deepcopy(base)
        if state_path.exists() and mask_path.exists():
            model.load_state_dict(load_file(str(state_path)), strict=False)
            return model.eval(), Mask.load(mask_path), None
        index = self.profile.sparsities.index(sparsity)
        previous = None
        if index > 0:
            model, previous, _ = self.pruned(role, seed, base, self.profile.sparsities[index - 1])
        variant = next(v for v in self.variants if v.kind == recipes.PRUNING and v.sparsity == sparsity)
        mask = recipes.pruned_in_place(model, sparsity, previous)
        seconds = None
        if self.profile.recovery_steps > 0:
            enforcer = MaskEnforcer(model, mask)
            seconds = self.recovery(model, role, seed, variant, after_step=enforcer)
            enforcer.remove()
        with atomic_path(state_path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in trainable_state(model).items()}, str(tmp))
        mask.save(mask_path)
        return model.eval(), mask, seconds

    # ------------------------------------------------------------------------------------- latency

    def latency(self) -> dict:
        """Seconds of one pass over the latency batch for every variant (built from the first seed's models
        without recovery fine-tuning: the same layers and kernels), interleaved against the fp32 teacher."""
        config = {"variants": [v.name for v in self.variants], "device": str(self.device),
                  "batch": list(self.latency_batch["input_ids"].shape), "rounds": self.profile.latency_rounds,
                  "repeats": self.profile.latency_repeats, **self.config(("quantize_embeddings", "share_groups",
                                                                          "share_init", "teacher_model",
                                                                          "student_model", "sparsities"))}

        def compute():
            seed = self.profile.seeds[0]
            models, aliases = {}, {}
            for role in ROLES:
                base, _ = self.base(role, seed, self.lrs[role])
                built = {}
                for v in self.variants:
                    key = f"{role} {v.name}"
                    if v.kind == recipes.LOW_RANK_FT:  # the same layers as without fine-tuning
                        aliases[key] = f"{role} low-rank FFN r={v.rank}"
                        continue
                    built[key] = self.timing_model(role, seed, base, v)
                models.update(built)
            seconds = compare_latency(models, self.latency_batch, baseline="teacher fp32",
                                      rounds=self.profile.latency_rounds, repeats=self.profile.latency_repeats)
            for alias, target in aliases.items():
                seconds[alias] = seconds[target]
            return {"seconds": {k: s for k, (s, _) in seconds.items()}, "speedup": {k: r for k, (_, r) in seconds.items()},
                    "aliases": aliases, "batch": list(self.latency_batch["input_ids"].shape),
                    "device": str(self.device), "threads": torch.get_num_threads(),
                    "method": f"best of {self.profile.latency_rounds} interleaved rounds of "
                              f"{self.profile.latency_repeats} passes each, every model at its own precision on "
                              "its own device (int8: CPU)"}

        return cached(paths.latency_json(self.folder), compute, config=config)

    def timing_model(self, role: str, seed: int, base, v: recipes.Variant):
        p = self.profile
        if v.kind == recipes.UNCOMPRESSED:
            return base
        if v.name == "int8":
            return recipes.int8_model(base, quantize_embeddings=p.quantize_embeddings)
        if v.kind == recipes.PRECISION and v.dtype is None:
            return recipes.four_bit_models(base, quantize_embeddings=p.quantize_embeddings)[1]
        if v.kind == recipes.PRECISION:
            return recipes.half_models(base, v.dtype, native=True)[1]
        if v.kind in (recipes.PRUNING, recipes.PRUNING_INT8):
            model = copy.deepcopy(base)
            recipes.pruned_in_place(model, v.sparsity, None)
            return model if v.kind == recipes.PRUNING else recipes.int8_model(model, quantize_embeddings=p.quantize_embeddings)
        if v.kind == recipes.LOW_RANK:
            return self.low_rank(role, seed, base, v.rank).eval()
        return recipes.shared_model(base, groups=p.share_groups, init=p.share_init).eval()


def execute(profile: CompressProfile, folder: Path, device: torch.device) -> dict:
    """Every part of the run (each cached under ``folder``) and what they measured."""
    folder.mkdir(parents=True, exist_ok=True)
    exp = Experiment(profile, folder, device)
    lrs = {role: exp.choose_lr(role) for role in ROLES}
    runs = {role: {v.name: [] for v in exp.variants} for role in ROLES}
    bases = {role: [] for role in ROLES}
    bar = tqdm(total=len(profile.seeds) * len(ROLES) * len(exp.variants), desc="compress: variants", mininterval=1.0)
    for seed in profile.seeds:
        for role in ROLES:
            model, record = exp.base(role, seed, lrs[role])
            bases[role].append(record)
            for v in exp.variants:
                result = exp.variant(role, seed, model, v)
                runs[role][v.name].append(result)
                bar.update(1)
                bar.set_postfix_str(f"seed {seed} {role} {v.name}: {100 * result['test_accuracy']:.1f}%", refresh=False)
            del model
    bar.close()
    latency = exp.latency()
    selection = {role: read_json(paths.selection_json(folder, role)) for role in ROLES
                 if paths.selection_json(folder, role).exists()}
    return {
        "sizes": {"train": len(exp.train), "validation": len(exp.validation), "test": len(exp.test)},
        "majority_class": {"validation": stats.majority_class_accuracy(exp.validation["label"]),
                           "test": stats.majority_class_accuracy(exp.test["label"])},
        "test_labels": encode_classes(exp.labels["test"].tolist()),
        "seeds": list(profile.seeds),
        "lr": lrs,
        "selection": selection,
        "bases": bases,
        "variants": [{"name": v.name, "kind": v.kind, "sparsity": v.sparsity, "rank": v.rank, "dtype": v.dtype,
                      "finetune": v.finetune} for v in exp.variants],
        "runs": runs,
        "latency": latency,
        "seq_len": profile.max_length,
    }


RUN = Run(name="compress", description=__doc__, profiles=PROFILES, execute=execute,
          summarise=compress_report.summarise, plot=compress_report.plot, markdown=compress_report.markdown,
          title=compress_report.title)


def main(argv=None) -> int:
    return run_main(RUN, argv)
