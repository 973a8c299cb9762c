r"""Lottery tickets in the embedded default: ``python -m compresslib.runs tickets --profile quick|cpu|gpu``.

The lecture's BERT-ticket tables (Chen et al., 2020, Tables 2 and 3) at this kit's scale, set up as their code
(BERT-Tickets ``LT_glue.py``) runs them:

- **What is trained and pruned.** The top ``top_layers`` layers of the pre-trained MiniLM-L6, its pooler and the
  classifier; the layers below are frozen and their output is computed once and cached
  (:mod:`compresslib.top_layers`; the last layer computes the [CLS] position only, which gives the same logits
  and gradients). Prunable: the linear weights of those layers and the pooler (``prunable="encoder+pooler"``,
  Chen et al.'s set), ranked globally by magnitude; embeddings, LayerNorms, biases and the classifier are not
  pruned.
- **The full model and the budget.** Learning rate and number of steps are chosen on the *validation* split
  for the unpruned model (a grid, over seeds of their own); every arm then trains with them: AdamW, 10%
  warm-up, linear decay, the same batches in the same order for every arm of a seed.
- **IMP** prunes 20% of the remaining weights per round (``fraction``), rewinds the BERT body to
  :math:`\theta_0` (rewind 0%) and, as in Chen et al.'s code, lets the classifier keep its trained weights
  (``classifier="keep"``).
- **Baselines** at each IMP sparsity (Table 2): random pruning on :math:`\theta_0` (RP), the IMP mask on
  re-initialised weights :math:`\theta'_0` (the prunable weights drawn afresh, biases kept) and on weights
  shuffled within each matrix :math:`\theta''_0`, each trained once from the seed's :math:`\theta_0`
  (classifier at its initial values). A dense :math:`\theta'_0` (every prunable weight re-initialised, no
  mask) says what the trainable part learns without pre-training. A control (``classifier_control``) trains
  the IMP mask from :math:`\theta_0` with the classifier at its initial values: what keeping the trained
  classifier gives IMP.
- **Rewinding** (Table 3) with equal budgets: rewinding to step :math:`k` runs the rest of the full model's
  schedule (steps :math:`k+1 .. T`, same learning rates, same batches), so every ticket is :math:`T` steps
  from :math:`\theta_0`; standard pruning fine-tunes the pruned final weights for :math:`T` steps (a fresh
  schedule, as in Chen et al.), the same retraining as rewind 0%.
- **Statistics** (:mod:`compresslib.runs.claims`, :mod:`compresslib.stats`): the whole test split, per-example
  predictions saved; each comparison paired by seed (mean difference, t CI, paired t-test) with McNemar's
  test on the pooled predictions; the winning-ticket criterion of Chen et al.
- **Inference costs** of the full six-layer model, timed interleaved: dense; an unstructured mask on dense
  kernels and on CSR sparse kernels at several sparsities; half the attention heads removed (structured).
  Bytes as stored: dense, CSR (:func:`compresslib.ledger.sparse_bytes`), head-pruned.

Files (:mod:`compresslib.runs.paths`): ``runs/tickets/<profile>/`` holds ``results.json``, ``results.md``, the
figures and every part (tuning runs, IMP rounds, baselines, rewinding branches, inference costs), so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict
from tqdm.auto import tqdm

from compresslib import stats
from compresslib.data import load_text_classification, subset
from compresslib.ledger import model_bytes, sparse_bytes
from compresslib.models import load_classifier, load_tokenizer
from compresslib.prune import (
    PRUNABLE_SETS,
    MaskEnforcer,
    apply_mask,
    branch_from_round0,
    count_heads,
    head_importance,
    heads_to_prune,
    highest_winning_sparsity,
    iterative_magnitude_pruning,
    magnitude_mask,
    prunable_names,
    prune_heads,
    random_mask,
    reinitialize,
    rewind_label,
    shuffle_within_layers,
)
from compresslib.prune.sparse_kernels import to_sparse_kernels
from compresslib.runs import paths, report
from compresslib.runs.claims import Criterion, compare
from compresslib.runs.common import cached, decode_binary, encode_binary
from compresslib.runs.hparams import Profile, option
from compresslib.runs.runner import Run, run_main
from compresslib.top_layers import TopLayersClassifier, assemble, cache_hidden_states
from compresslib.training import compare_inference_times, fit, make_loader, predict_logits, tokenize


@dataclass(frozen=True)
class TicketsProfile(Profile):
    train_examples: int | None = option(256, "training snippets cached and cycled through (all: the whole split)")
    eval_examples: int | None = option(256, "validation and test snippets (all: the whole splits)")
    max_length: int = option(32, "tokens per snippet (the median snippet has 26)")
    top_layers: int = option(1, "encoder layers trained and pruned, the top ones (the layers below are frozen and "
                                "their output cached; 6: every layer of MiniLM, the embeddings frozen)")
    batch_size: int = option(32, "training batch size")
    lrs: tuple[float, ...] = option((3e-3,), "peak learning rates tried for the full model (AdamW, 10% warm-up, "
                                             "linear decay); the best mean validation accuracy picks the one "
                                             "every arm uses")
    step_grid: tuple[int, ...] = option((16,), "training steps per fine-tuning tried the same way")
    tune_seeds: tuple[int, ...] = option((100,), "seeds of the tuning runs (not the claims' seeds)")
    seeds: tuple[int, ...] = option((0, 1), "seeds of the classifier head, pooler and data order; claims pair by seed")
    rounds: int = option(2, "IMP rounds after the full model (round 0)")
    baseline_rounds: tuple[int, ...] = option((), "IMP rounds at whose sparsity the baselines (and the control) are "
                                                  "trained; empty: every round. The last round is always among them")
    fraction: float = option(0.5, "fraction of the remaining prunable weights pruned per round")
    prunable: str = option("encoder+pooler", "the prunable weights: encoder+pooler (Chen et al.'s set) or encoder")
    classifier: str = option("keep", "at each rewind: keep (the BERT body is rewound, the classifier keeps its "
                                     "trained weights, as in Chen et al.'s code) or rewind (everything)")
    rewind_fractions: tuple[float, ...] = option((0.5,), "rewind points (fractions of the training steps) of the "
                                                         "rewinding table, besides rewind 0% and standard pruning")
    rewind_rounds: int = option(1, "IMP rounds of each rewinding variant (every seed); the table compares them "
                                   "at that round's sparsity")
    classifier_control: bool = option(True, "also train each IMP mask from θ0 with the classifier at its initial "
                                            "values (what keeping the trained classifier gives IMP)")
    head_fraction: float = option(0.5, "fraction of attention heads removed by importance (structured, no retraining)")
    timing_sparsities: tuple[float, ...] = option((0.9,), "sparsities of the unstructured masks whose inference "
                                                           "time and size are measured")
    timing_examples: int = option(32, "test snippets per timing pass")
    timing_rounds: int = option(1, "interleaved timing rounds (each model: 2 passes per round; the best counts)")
    importance_examples: int = option(64, "training snippets that score the attention heads' importance")
    eval_batch_size: int = option(256, "evaluation batch size")


PROFILES = {
    "quick": TicketsProfile(
        name="quick", baseline_rounds=(2,), notes=("smoke test of the whole pipeline (256 snippets per split, 16 steps per fine-tuning, "
                             "2 seeds, 2 rounds of 50%, baselines at the last): the numbers are not meaningful",),
    ),
    "cpu": TicketsProfile(
        name="cpu", train_examples=1536, eval_examples=None, max_length=32, top_layers=1,
        lrs=(3e-4, 1e-3, 3e-3), step_grid=(24, 48), tune_seeds=(100, 101), seeds=(0, 1, 2, 3, 4),
        rounds=8, fraction=0.2, baseline_rounds=(2, 4, 6, 8), classifier_control=False, rewind_fractions=(0.1, 0.5),
        rewind_rounds=2,
        timing_sparsities=(0.5, 0.9), timing_examples=128, timing_rounds=2, importance_examples=128,
        notes=(
            "the top layer of MiniLM-L6 (of 6), its pooler and the classifier are trained and pruned; the five "
            "layers below are frozen (their output cached): fine-tuning the whole model 150 times does not fit "
            "30 minutes on 2 shared cores",
            "1,536 of the 9,181 training snippets (one pass at 48 steps of 32), 32 tokens (the median snippet has "
            "26), at most 48 steps per fine-tuning (the grid); the whole validation and test splits",
            "baselines at rounds 2, 4, 6 and 8 (36%, 59%, 74% and 83% sparse), not at every round; no control "
            "arm for the classifier handling (classifier_control; the quick profile runs it)",
            "rewinding table: rewind 0%, 10%, 50% and standard pruning, 2 rounds (36% sparse) on every seed",
        ),
    ),
    "gpu": TicketsProfile(
        name="gpu", train_examples=None, eval_examples=None, max_length=64, top_layers=6, batch_size=32,
        lrs=(3e-5, 1e-4, 3e-4), step_grid=(287, 861), tune_seeds=(100, 101), seeds=(0, 1, 2, 3, 4),
        rounds=10, fraction=0.2, rewind_fractions=(0.05, 0.1, 0.2, 0.5), rewind_rounds=6,
        timing_sparsities=(0.5, 0.8, 0.9, 0.95), timing_examples=1024, timing_rounds=3, importance_examples=512,
        eval_batch_size=512,
        notes=("every layer of MiniLM-L6 trained and pruned (the embeddings frozen: their output is cached), all "
               "9,181 training snippets, 64 tokens, 1 or 3 epochs (the grid), 10 rounds of 20% (89% sparse), "
               "rewinding table at 6 rounds (74%), bf16 autocast in training; inference timed in float32",),
    ),
}

METHODS = {
    "imp": "IMP on θ0",
    "rp": "random pruning on θ0",
    "reinit": "IMP mask on θ'0 (re-initialised)",
    "shuffled": "IMP mask on θ''0 (shuffled)",
    "imp_fresh_classifier": "IMP mask on θ0, classifier from θ0",
}
BASELINES = ("rp", "reinit", "shuffled")
DENSE_REINIT = "dense θ'0 (every prunable weight re-initialised, no mask)"
STANDARD = "standard pruning"


def chosen_methods(profile: TicketsProfile) -> list[str]:
    return ["imp", *BASELINES, *(["imp_fresh_classifier"] if profile.classifier_control else [])]


def baseline_rounds(profile: TicketsProfile) -> list[int]:
    """The IMP rounds at which the baselines are trained: the profile's, and always the last round."""
    chosen = set(profile.baseline_rounds) or set(range(1, profile.rounds + 1))
    return sorted(chosen | {profile.rounds}) if profile.rounds else []


class Experiment:
    """Data, cached hidden states, θ0 per seed, training and evaluation for one profile. The expensive pieces
    (the cache, the full models) are built on first use, so a rerun whose parts are all on file builds none."""

    def __init__(self, profile: TicketsProfile, folder: Path, device: torch.device):
        if profile.prunable not in PRUNABLE_SETS:
            raise ValueError(f"prunable must be one of {sorted(PRUNABLE_SETS)}, got {profile.prunable!r}")
        if profile.classifier not in ("keep", "rewind"):
            raise ValueError(f"classifier must be 'keep' or 'rewind', got {profile.classifier!r}")
        bad = [r for r in profile.baseline_rounds if isinstance(r, bool) or not 1 <= r <= profile.rounds]
        if bad:
            raise ValueError(f"baseline_rounds must be rounds in [1, {profile.rounds}], got {bad}")
        self.profile, self.folder, self.device = profile, folder, device
        self.tokenizer = load_tokenizer()
        data = load_text_classification()
        sizes = {"train": profile.train_examples, "validation": profile.eval_examples, "test": profile.eval_examples}
        self.datasets = tokenize(DatasetDict({split: subset(data[split], size, seed=0) for split, size in sizes.items()}),
                                 self.tokenizer, max_length=profile.max_length)  # only the snippets used
        self.test_labels = np.asarray(self.datasets["test"]["label"])
        self.majority_class = stats.majority_class_accuracy(self.test_labels)
        self.majority_label = int(np.bincount(self.test_labels).argmax())
        self._theta0: dict[int, TopLayersClassifier] = {}
        self.steps, self.lr = None, None  # set by the tuning part

    @cached_property
    def base(self):
        """The pre-trained full classifier whose bottom layers the cache comes from (frozen, eval mode)."""
        return load_classifier(seed=0).to(self.device).eval()

    @cached_property
    def layer(self) -> int:
        return len(self.base.bert.encoder.layer) - self.profile.top_layers

    @cached_property
    def cache(self) -> dict:
        return {split: cache_hidden_states(self.base, ds, self.tokenizer, layer=self.layer,
                                           batch_size=self.profile.eval_batch_size, desc=f"caching {split}")
                for split, ds in self.datasets.items()}

    def theta0(self, seed: int) -> TopLayersClassifier:
        """A fresh copy of the trainable top at θ0: pre-trained layers, pooler and classifier initialised from ``seed``."""
        if seed not in self._theta0:
            self._theta0[seed] = TopLayersClassifier(load_classifier(seed=seed), self.profile.top_layers)
        return copy.deepcopy(self._theta0[seed]).to(self.device)

    def names(self, model) -> list[str]:
        return prunable_names(model, pattern=PRUNABLE_SETS[self.profile.prunable])

    def rewind_names(self, model) -> list[str] | None:
        return [k for k in model.state_dict() if k.startswith("bert.")] if self.profile.classifier == "keep" else None

    def train(self, seed: int, desc: str, *, lr=None, steps=None):
        """``train(model, after_step=, on_step=, start_step=)``: the seed's batches in the seed's order, for the
        chosen (or given) number of steps; what :func:`iterative_magnitude_pruning` calls."""
        lr, steps = lr or self.lr, steps or self.steps

        def run(model, *, after_step=None, on_step=None, start_step=0):
            batches = self.cache["train"].batches(self.profile.batch_size, shuffle=True, seed=seed)
            fit(model, batches, steps=steps, lr=lr, after_step=after_step, on_step=on_step, start_step=start_step,
                device=self.device, desc=desc)

        return run

    def predict(self, model, split: str) -> np.ndarray:
        """Predicted classes of ``split`` in the split's order."""
        batches = self.cache[split].batches(self.profile.eval_batch_size, shuffle=False)
        classes = predict_logits(model, batches, device=self.device).argmax(-1).numpy()
        out = np.empty_like(classes)
        out[batches.order.numpy()] = classes
        return out

    def validate(self, model) -> dict:
        """Validation accuracy (what the tuning looks at)."""
        labels = self.cache["validation"].labels.numpy()
        return {"validation_accuracy": float((self.predict(model, "validation") == labels).mean())}

    def evaluate(self, model) -> dict:
        """Test accuracy with the per-example test predictions (never used to choose anything)."""
        predictions = self.predict(model, "test")
        return {"accuracy": float((predictions == self.test_labels).mean()), "predictions": encode_binary(predictions)}


# ------------------------------------------------------------------------------------------- the parts


def tune(exp: Experiment) -> dict:
    """Every (lr, steps) of the grid on the full model, over the tuning seeds, scored on validation accuracy.
    The best mean wins (ties: fewer steps, then the smaller lr); sets ``exp.lr`` and ``exp.steps``."""
    p = exp.profile
    grid = []
    for steps in p.step_grid:
        for lr in p.lrs:
            scores = []
            for seed in p.tune_seeds:
                def compute(lr=lr, steps=steps, seed=seed):
                    model = exp.theta0(seed)
                    torch.manual_seed(seed)
                    exp.train(seed, f"tuning lr {lr:g}, {steps} steps, seed {seed}", lr=lr, steps=steps)(model)
                    return exp.validate(model)

                config = {"lr": lr, "steps": steps, "seed": seed, "data": _data_config(p)}
                scores.append(cached(paths.tuning_json(exp.folder, lr, steps, seed), compute,
                                     config=config)["validation_accuracy"])
            grid.append({"lr": lr, "steps": steps, "validation_accuracy": stats.summarize(scores).as_dict()})
    best = max(grid, key=lambda g: (g["validation_accuracy"]["mean"], -g["steps"], -g["lr"]))
    exp.lr, exp.steps = best["lr"], best["steps"]
    return {"grid": grid, "lr": best["lr"], "steps": best["steps"], "seeds": list(p.tune_seeds),
            "criterion": "the highest mean validation accuracy of the full model over the tuning seeds "
                         "(ties: fewer steps, then the smaller learning rate); the test split is not looked at"}


def _data_config(p: TicketsProfile) -> dict:
    keys = ("train_examples", "eval_examples", "max_length", "top_layers", "batch_size")
    return {k: getattr(p, k) for k in keys}


def _imp_config(exp: Experiment) -> dict:
    p = exp.profile
    return {"data": _data_config(p), "lr": exp.lr, "steps": exp.steps, "prunable": p.prunable,
            "classifier": p.classifier, "fraction": p.fraction}


def run_imp(exp: Experiment, seed: int, *, rewind="init", rounds=None, out_dir=None, extra=()):
    """IMP (or a rewinding variant, branched off the shared round 0) for ``seed``; every round on file."""
    p = exp.profile
    model = exp.theta0(seed)
    result = iterative_magnitude_pruning(
        model, exp.train(seed, f"seed {seed} IMP {rewind_label(rewind)}"), exp.evaluate,
        rounds=p.rounds if rounds is None else rounds, fraction=p.fraction,
        out_dir=out_dir or paths.imp_dir(exp.folder, seed), rewind=rewind, train_steps=exp.steps, names=exp.names(model),
        seed=seed, extra_rewind_points=extra, rewind_names=exp.rewind_names(model), resume_schedule=True,
    )
    del model
    return result


def run_subnetwork(exp: Experiment, seed: int, method: str, r: int, imp) -> dict:
    """One baseline (or the dense θ'0 at ``r = 0``, or the control) trained once from θ0 of ``seed``; cached."""
    mask = imp.mask(r)
    config = {"method": method, "round": r, "sparsity": mask.sparsity, "seed": seed, **_imp_config(exp)}

    def compute():
        model = exp.theta0(seed)
        names = list(mask)
        used = mask
        if method == "rp":
            used = random_mask(model, mask.sparsity, scope="global", names=names, seed=10_000 + seed * 100 + r)
        elif method in ("reinit", "dense_reinit"):
            reinitialize(model, names, seed=20_000 + seed)
        elif method == "shuffled":
            shuffle_within_layers(model, names, seed=30_000 + seed)
        elif method != "imp_fresh_classifier":
            raise ValueError(f"unknown subnetwork {method!r}")
        enforcer = MaskEnforcer(model, used)
        torch.manual_seed(seed * 1000 + r)  # as IMP seeds round r
        exp.train(seed, f"seed {seed} {method} r{r}")(model, after_step=enforcer)
        enforcer.remove()
        return {**exp.evaluate(model), "sparsity": used.sparsity}

    return cached(paths.baseline_json(exp.folder, seed, method, r), compute, config=config)


def run_rewinding(exp: Experiment, seed: int, imp) -> dict:
    """Each rewind point and standard pruning for ``rewind_rounds`` rounds, branched off ``imp``'s round 0."""
    p = exp.profile
    rows = {rewind_label("init"): _round_metrics(imp.rounds[p.rewind_rounds], exp.steps)}
    for rewind in [*p.rewind_fractions, "none"]:
        branch = "standard" if rewind == "none" else f"rewind{round(100 * rewind)}"
        target = branch_from_round0(paths.imp_dir(exp.folder, seed), paths.branch_dir(exp.folder, seed, branch), rewind)
        result = run_imp(exp, seed, rewind=rewind, rounds=p.rewind_rounds, out_dir=target)
        steps = exp.steps if rewind == "none" else exp.steps - max(1, round(rewind * exp.steps))
        rows[rewind_label(rewind)] = _round_metrics(result.rounds[p.rewind_rounds], steps)
    return rows


def _round_metrics(metrics: dict, steps: int) -> dict:
    return {k: metrics[k] for k in ("sparsity", "accuracy", "predictions")} | {"steps_per_round": steps}


def layer_kind(name: str) -> str:
    for key, label in (("attention.self.query", "query"), ("attention.self.key", "key"),
                       ("attention.self.value", "value"), ("attention.output.dense", "attention output"),
                       ("intermediate.dense", "FFN in"), ("output.dense", "FFN out"), ("pooler", "pooler")):
        if key in name:
            return label
    return "other"


def sparsity_by_kind(mask) -> dict:
    zeros, totals = {}, {}
    for name in mask:
        kind = layer_kind(name)
        zeros[kind] = zeros.get(kind, 0) + int((~mask[name]).sum())
        totals[kind] = totals.get(kind, 0) + mask[name].numel()
    return {k: zeros[k] / totals[k] for k in totals}


# ------------------------------------------------------------------------------------ inference costs


def inference_costs(exp: Experiment, imp) -> dict:
    """The full six-layer model (the first seed's trained top on the frozen bottom): dense; unstructured masks
    at ``timing_sparsities`` (one-shot global magnitude over every layer's prunable weights) on dense and on
    CSR kernels; half the heads removed. Times interleaved; bytes as stored; head-pruned accuracy on test."""
    p = exp.profile
    seed = p.seeds[0]
    top = exp.theta0(seed)
    state = top.state_dict()
    state.update(imp.checkpoint(0))
    top.load_state_dict(state)
    dense = assemble(top, load_classifier(seed=seed)).to(exp.device).eval()
    names = prunable_names(dense, pattern=PRUNABLE_SETS[p.prunable])
    tokenizer = exp.tokenizer
    test = exp.datasets["test"]
    timing_loader = make_loader(test.select(range(min(p.timing_examples, len(test)))), tokenizer, batch_size=64,
                                shuffle=False)
    models, rows = {"dense": dense}, {"dense": {"kind": "dense", "bytes": model_bytes(dense)}}
    for sparsity in p.timing_sparsities:
        mask = magnitude_mask(dense, sparsity, names=names)
        masked = apply_mask(copy.deepcopy(dense), mask)
        key = f"{100 * sparsity:g}%"
        models[f"mask {key}, dense kernels"] = masked
        rows[f"mask {key}, dense kernels"] = {"kind": "unstructured, dense kernels", "sparsity": mask.sparsity,
                                              "bytes": model_bytes(masked)}
        models[f"mask {key}, CSR kernels"] = to_sparse_kernels(copy.deepcopy(masked), mask)
        rows[f"mask {key}, CSR kernels"] = {"kind": "unstructured, CSR kernels", "sparsity": mask.sparsity,
                                            "bytes": sparse_bytes(masked, mask)}
    importance_set = exp.datasets["train"].select(range(min(p.importance_examples, len(exp.datasets["train"]))))
    importance_loader = make_loader(importance_set, tokenizer, batch_size=32, shuffle=False)
    importance = head_importance(dense, importance_loader, device=exp.device)
    head_pruned = prune_heads(copy.deepcopy(dense), heads_to_prune(importance, p.head_fraction)).eval()
    key = f"{100 * p.head_fraction:g}% of heads removed"
    models[key] = head_pruned
    rows[key] = {"kind": "structured", "heads": sum(count_heads(head_pruned)), "bytes": model_bytes(head_pruned)}
    test_loader = make_loader(test, tokenizer, batch_size=p.eval_batch_size, shuffle=False)
    predictions = predict_logits(head_pruned, test_loader, device=exp.device).argmax(-1).numpy()
    rows[key]["accuracy"] = float((predictions == exp.test_labels).mean())
    rows["dense"]["accuracy"] = imp.rounds[0]["accuracy"]
    rows["dense"]["heads"] = sum(count_heads(dense))
    started = time.perf_counter()
    seconds = compare_inference_times(models, timing_loader, device=exp.device, rounds=p.timing_rounds, repeats=2,
                                      amp=False)  # float32 for all: CSR kernels take no bf16 autocast
    for name, row in rows.items():
        row.update(time_s=seconds[name], speedup=seconds["dense"] / seconds[name],
                   bytes_ratio=row["bytes"] / rows["dense"]["bytes"])
    prunable_weights = sum(dense.get_parameter(n).numel() for n in names)
    return {"models": rows, "timing_examples": len(timing_loader.dataset), "timing_seconds": time.perf_counter() - started,
            "prunable_weights": prunable_weights, "parameters": sum(p_.numel() for p_ in dense.parameters()),
            "heads_removed": int(round(p.head_fraction * sum(count_heads(dense)))),
            "note": "times: one pass over the timing snippets in batches of 64, best of interleaved rounds "
                    "(each model 2 passes per round); masks: one-shot global magnitude pruning of every layer's "
                    "prunable weights (accuracy not measured; time and bytes depend on the sparsity, not on which "
                    f"weights); head pruning: Michel et al.'s importance on {len(importance_set)} training snippets, no retraining; "
                    "bytes: float32 parameters, CSR with int32 indices for the masked matrices"}


# ------------------------------------------------------------------------------------ the run's parts


def execute(profile: TicketsProfile, folder: Path, device: torch.device) -> dict:
    """Every part of the run (each cached under ``folder``) and the per-seed numbers they measured."""
    exp = Experiment(profile, folder, device)
    tuning = tune(exp)
    methods = [m for m in chosen_methods(profile) if m != "imp"]
    with_baselines = baseline_rounds(profile)
    total = len(profile.seeds) * (1 + len(with_baselines) * len(methods) + 1 + len(profile.rewind_fractions) + 1) + 1
    bar = tqdm(total=total, desc=f"tickets {profile.name}")
    imps, subnetworks, rewinding = {}, {}, {}
    for seed in profile.seeds:
        imps[seed] = run_imp(exp, seed, extra=profile.rewind_fractions)
        bar.update(1)
        subnetworks[(seed, "dense_reinit", 0)] = run_subnetwork(exp, seed, "dense_reinit", 0, imps[seed])
        bar.update(1)
        for r in with_baselines:
            for method in methods:
                subnetworks[(seed, method, r)] = run_subnetwork(exp, seed, method, r, imps[seed])
                bar.update(1)
        rewinding[seed] = run_rewinding(exp, seed, imps[seed])
        bar.update(len(profile.rewind_fractions) + 1)
    first = imps[profile.seeds[0]]
    costs = cached(paths.costs_json(folder), lambda: inference_costs(exp, first),
                   config={**_imp_config(exp), "seed": profile.seeds[0], "timing": [  # lists: the config is compared as JSON
                       list(profile.timing_sparsities), profile.timing_examples, profile.timing_rounds,
                       profile.head_fraction, profile.importance_examples]})
    bar.update(1)
    bar.close()

    def arm(values):  # per-seed accuracies and predictions of one arm
        return {"accuracy": [v["accuracy"] for v in values], "predictions": [v["predictions"] for v in values]}

    seeds = profile.seeds
    levels = {}
    for r in range(1, profile.rounds + 1):
        sparsity = round(first.rounds[r]["sparsity"], 4)
        levels[str(sparsity)] = {"round": r, "imp": arm([imps[s].rounds[r] for s in seeds]),
                                 **{m: arm([subnetworks[(s, m, r)] for s in seeds]) for m in methods
                                    if r in with_baselines}}
    return {
        "tuning": tuning,
        "train_steps_per_fine_tune": exp.steps,
        "lr": exp.lr,
        "test_examples": len(exp.test_labels),
        "validation_examples": len(exp.datasets["validation"]),
        "train_examples": len(exp.datasets["train"]),
        "test_labels": encode_binary(exp.test_labels),
        "majority_class": exp.majority_class,
        "majority_label": exp.majority_label,
        "methods": {m: METHODS[m] for m in chosen_methods(profile)},
        "full": arm([imps[s].rounds[0] for s in seeds]),
        "dense_reinit": arm([subnetworks[(s, "dense_reinit", 0)] for s in seeds]),
        "levels": levels,
        "imp_layer_sparsity": {str(round(first.rounds[r]["sparsity"], 4)): sparsity_by_kind(first.mask(r))
                               for r in range(1, profile.rounds + 1)},
        "prunable_weights": first.mask(0).numel,
        "prunable_tensors": list(first.mask(0)),
        "rewinding": {label: arm([rewinding[s][label] for s in seeds]) | {
            "sparsity": rewinding[seeds[0]][label]["sparsity"], "steps_per_round": rewinding[seeds[0]][label]["steps_per_round"]}
            for label in rewinding[seeds[0]]},
        "inference_costs": costs,
    }


# ------------------------------------------------------------------------------- summary and claims


def _correct(results: dict, predictions: list[str]) -> np.ndarray:
    """Per-example correctness of one arm pooled over its seeds (for McNemar's test)."""
    n = results["test_examples"]
    labels = decode_binary(results["test_labels"], n)
    return stats.pool_seeds([decode_binary(p, n) for p in predictions], labels)


def _majority_predictions(results: dict) -> list[str]:
    return [encode_binary([results["majority_label"]] * results["test_examples"])] * len(results["full"]["accuracy"])


def _at(sparsity: str) -> str:
    return f" ({100 * float(sparsity):.0f}% sparse)"


def _claim(results, key, a_label, a, b_label, b, **kw) -> dict:
    return compare(key, a_label, a["accuracy"], b_label, b["accuracy"], correct_a=_correct(results, a["predictions"]),
                   correct_b=_correct(results, b["predictions"]), **kw).as_dict()


def summarise(results: dict) -> dict:
    """Everything derived from the per-seed numbers: the curves, the winning ticket, and every claim
    (:func:`compresslib.runs.claims.compare`, McNemar on the pooled per-example predictions)."""
    methods, levels = results["methods"], results["levels"]
    n = len(results["full"]["accuracy"])
    majority = {"accuracy": [results["majority_class"]] * n, "predictions": _majority_predictions(results)}
    curves = {m: {sp: stats.summarize(row[m]["accuracy"]).as_dict() for sp, row in levels.items() if m in row}
              for m in methods}
    full = stats.summarize(results["full"]["accuracy"]).as_dict()
    ticket = highest_winning_sparsity(results["full"]["accuracy"], {sp: row["imp"]["accuracy"] for sp, row in levels.items()})

    versus = []  # IMP against each baseline (and the control) at each sparsity
    for sp, row in levels.items():
        for m in methods:
            if m != "imp" and m in row:
                versus.append(_claim(results, f"imp_beats_{m}_at_{sp}", methods["imp"] + _at(sp), row["imp"],
                                     methods[m] + _at(sp), row[m]))
    learns = [_claim(results, "full_beats_majority", "the full model", results["full"], "the majority class", majority),
              _claim(results, "dense_reinit_beats_majority", DENSE_REINIT, results["dense_reinit"],
                     "the majority class", majority)]
    learns += [_claim(results, f"{m}_beats_majority_at_{sp}", methods[m] + _at(sp), row[m], "the majority class",
                      majority) for m in ("imp", *BASELINES) for sp, row in levels.items() if m in row]
    learns.append(_claim(results, "full_beats_dense_reinit", "the full model (pre-trained θ0)", results["full"],
                         DENSE_REINIT, results["dense_reinit"]))
    rewinding = results["rewinding"]
    base = rewind_label("init")
    rewinds = [_claim(results, f"{label.replace(' ', '_').replace('%', 'pct')}_beats_rewind_0pct",
                      f"{label}{_at(row['sparsity'])}", row, f"{base}{_at(row['sparsity'])}", rewinding[base])
               for label, row in rewinding.items() if label != base]
    winning = []
    if ticket["sparsity"] is not None:
        sp = next(k for k in levels if float(k) == ticket["sparsity"])
        winning.append(_claim(results, f"imp_at_least_as_good_as_full_at_{sp}", methods["imp"] + _at(sp),
                              levels[sp]["imp"], "the full model", results["full"], verb="is at least as good as",
                              criterion=Criterion(margin=-0.01)))
    claims = versus + learns + rewinds + winning
    return {"curves": curves, "full_summary": full, "dense_reinit_summary": stats.summarize(results["dense_reinit"]["accuracy"]).as_dict(),
            "ticket": ticket, "claims": claims,
            "claim_groups": {"versus": [c["key"] for c in versus], "learns": [c["key"] for c in learns],
                             "rewinding": [c["key"] for c in rewinds], "winning": [c["key"] for c in winning]}}


# ------------------------------------------------------------------------------------ figures and report


FIGURES = (("accuracy vs sparsity", "accuracy_vs_sparsity.png"),
           ("where global pruning removes weights", "layer_sparsity.png"))


def plot(results: dict, folder: Path) -> list[str]:
    """``accuracy_vs_sparsity.png`` and ``layer_sparsity.png`` in ``folder``; returns their file names."""
    curves = {label: {float(sp): point for sp, point in results["curves"][m].items()} for m, label in results["methods"].items()}
    curves[DENSE_REINIT] = {0.0: results["dense_reinit_summary"]}
    report.accuracy_vs_sparsity(
        curves, paths.figure(folder, "accuracy_vs_sparsity"), full=results["full_summary"],
        majority=results["majority_class"], ylabel="test accuracy (%)",
        xlabel="sparsity of the prunable weights (%)",
        title=f"Lottery tickets, MiniLM-L6 (top {results['config']['top_layers']} layer(s) trained) on Rotten "
              f"Tomatoes\n{results['profile']} profile, {results['full_summary']['n']} seeds, "
              f"{results['test_examples']} test snippets")
    report.grouped_bars({f"global {100 * float(sp):.0f}%": kinds for sp, kinds in results["imp_layer_sparsity"].items()},
                        paths.figure(folder, "layer_sparsity"), ylabel="sparsity (%)",
                        title="Where global magnitude pruning removes weights (IMP, first seed)")
    return [name for _, name in FIGURES]


def title(results: dict) -> str:
    return f"Lottery tickets ({results['profile']} profile)"


def _claims_by_key(results: dict) -> dict:
    return {c["key"]: c for c in results["claims"]}


def _cell(claim: dict) -> str:
    d, scale = claim["difference"], claim["scale"]
    if d["ci_low"] is None:
        return f"{scale * d['mean']:+.1f}"
    mark = " ✓" if claim["holds"] else ""
    return f"{scale * d['mean']:+.1f} [{scale * d['ci_low']:+.1f}, {scale * d['ci_high']:+.1f}]{mark}"


def _mcnemar(claim: dict) -> str:
    from compresslib.runs.claims import format_p

    return "–" if claim["mcnemar"] is None else format_p(claim["mcnemar"]["p_exact"]).removeprefix("p = ").removeprefix("p ")


def reading(results: dict) -> list[str]:
    """What the evidence shows, sentence by sentence, each computed from the claims (so a claim that does not
    hold is said not to hold, with its numbers)."""
    claims, methods, pct = _claims_by_key(results), results["methods"], report.pct
    levels = list(results["levels"])
    lines = []
    floor = pct(results["majority_class"])
    dense = [claims["full_beats_majority"], claims["dense_reinit_beats_majority"]]
    lines.append(f"**Against the majority class** ({floor}%): "
                 + "; ".join(f"{c['a']} {pct(c['a_summary']['mean'])}% ({_cell(c)} points, "
                             f"{'leaves it' if c['holds'] else 'not shown to leave it'})" for c in dense) + ".")
    for m in ("imp", *BASELINES):
        measured = [sp for sp in levels if f"{m}_beats_majority_at_{sp}" in claims]
        above = [f"{100 * float(sp):.0f}%" for sp in measured if claims[f"{m}_beats_majority_at_{sp}"]["holds"]]
        not_above = [f"{100 * float(sp):.0f}% ({pct(claims[f'{m}_beats_majority_at_{sp}']['a_summary']['mean'])}%)"
                     for sp in measured if not claims[f"{m}_beats_majority_at_{sp}"]["holds"]]
        lines.append(f"{methods[m]} leaves the majority class (95% CI above it) at "
                     f"{', '.join(above) if above else 'no sparsity measured'}"
                     + (f"; not shown at {', '.join(not_above)}" if not_above else "") + ".")
    pre = claims["full_beats_dense_reinit"]
    lines.append(f"**Pre-trained weights in the trained part** {'matter' if pre['holds'] else 'are not shown to matter'}: "
                 f"the full model scores {pct(pre['a_summary']['mean'])}% and the dense re-initialised one "
                 f"{pct(pre['b_summary']['mean'])}% ({_cell(pre)} points, McNemar {_mcnemar(pre)}).")
    for m in [m for m in methods if m != "imp"]:
        measured = [sp for sp in levels if f"imp_beats_{m}_at_{sp}" in claims]
        group = [claims[f"imp_beats_{m}_at_{sp}"] for sp in measured]
        wins = [f"{100 * float(sp):.0f}%" for sp, c in zip(measured, group) if c["holds"]]
        diffs = ", ".join(f"{c['scale'] * c['difference']['mean']:+.1f} at {100 * float(sp):.0f}%"
                          for sp, c in zip(measured, group))
        verdict = ("at every sparsity measured" if len(wins) == len(group) else
                   f"at {len(wins)} of {len(group)} sparsities ({', '.join(wins)})" if wins else "at no sparsity measured")
        lines.append(f"**IMP against {methods[m]}**: IMP's lead holds (95% CI above 0) {verdict}; mean paired "
                     f"differences: {diffs} (points).")
    t = results["ticket"]
    full = results["full_summary"]
    bar = pct(full["mean"] - (full["std"] or 0.0))
    if t["sparsity"] is None:
        lines.append(f"**No winning ticket** by Chen et al.'s criterion (mean within one std of the full model, "
                     f"≥ {bar}%) at any sparsity of the grid.")
    else:
        beyond = [sp for sp in levels if float(sp) > t["sparsity"]]
        after = (f"; at {100 * float(beyond[0]):.0f}% IMP scores {pct(results['curves']['imp'][beyond[0]]['mean'])}%"
                 if beyond else "; it is the highest sparsity of the grid, so the ticket may go further")
        lines.append(f"**Winning tickets up to {100 * t['sparsity']:.0f}% sparsity** by Chen et al.'s criterion "
                     f"(mean ≥ the full model's mean − 1 std = {bar}%){after}.")
    by_kind = results["imp_layer_sparsity"]
    for sp in (min(by_kind, key=float), max(by_kind, key=float)):
        kinds = by_kind[sp]
        spread = ", ".join(f"{kind} {100 * value:.0f}%" for kind, value in sorted(kinds.items(), key=lambda kv: kv[1]))
        lines.append(f"**Where global magnitude pruning removes weights** (IMP, first seed) at {100 * float(sp):.0f}% "
                     f"overall: {spread} (`layer_sparsity.png`).")
    rewinds = [claims[k] for k in results["claim_groups"]["rewinding"]]
    held = [c for c in rewinds if c["holds"]]
    spread = [c["scale"] * c["difference"]["mean"] for c in rewinds]
    lines.append(f"**Rewinding at equal budgets**: against rewind 0%, the other variants differ by "
                 f"{min(spread):+.1f} to {max(spread):+.1f} points; "
                 + (f"{', '.join(c['a'] for c in held)} beat{'s' if len(held) == 1 else ''} it beyond chance."
                    if held else "none beats it beyond chance (no 95% CI lies above 0), so this run does not rank them."))
    return lines


def costs_table(costs: dict) -> str:
    rows = []
    for name, row in costs["models"].items():
        detail = (f"{100 * row['sparsity']:.0f}%" if "sparsity" in row else f"{row['heads']} heads" if "heads" in row else "")
        rows.append([name, row["kind"], detail, f"{row['time_s']:.3f}", f"{row['speedup']:.2f}x",
                     f"{row['bytes'] / 2 ** 20:.1f}", f"{row['bytes_ratio']:.2f}", report.pct(row.get("accuracy"))])
    return report.markdown_table(["model (all 6 layers)", "pruning", "sparsity / heads", "time (s)", "speed-up",
                                  "MiB stored", "× dense", "test accuracy (%)"], rows)


def markdown(results: dict, figure_prefix: str = "") -> str:
    """The report: setup, accuracy by sparsity, the claims, the winning ticket, rewinding, inference costs."""
    c, pct, methods = results["config"], report.pct, results["methods"]
    claims = _claims_by_key(results)
    full, levels = results["full_summary"], list(results["levels"])
    tuning = results["tuning"]
    grid = ", ".join(f"lr {g['lr']:g} × {g['steps']} steps: {pct(g['validation_accuracy']['mean'])}"
                     for g in tuning["grid"])
    lines = [
        f"MiniLM-L6's top {c['top_layers']} encoder layer(s), pooler and classifier trained on cached outputs of the "
        f"layers below ({results['train_examples']} training snippets, {c['max_length']} tokens); prunable: "
        f"{results['prunable_weights']:,} weights in {len(results['prunable_tensors'])} matrices "
        f"({c['prunable']}); IMP prunes {100 * c['fraction']:g}% of the remaining weights per round and rewinds "
        + ("the BERT body to θ0 while the classifier keeps its trained weights (Chen et al.'s code)."
           if c["classifier"] == "keep" else "every weight to θ0.")
        + f" θ'0 re-draws the prunable weights only (biases kept). Each fine-tuning: {results['train_steps_per_fine_tune']} "
        f"steps of {c['batch_size']} at lr {results['lr']:g}, chosen on the validation split "
        f"({results['validation_examples']} snippets; mean over tuning seeds {tuning['seeds']}: {grid}). "
        f"Test accuracy on {'all ' if c['eval_examples'] is None else ''}{results['test_examples']} test snippets "
        f"{'(the whole split)' if c['eval_examples'] is None else '(a subset)'}, mean ± sample std over seeds "
        f"{list(c['seeds'])}; the majority class scores {pct(results['majority_class'])}%.", ""]
    header = ["test accuracy (%)", "0%"] + [f"{100 * float(s):.1f}%" for s in levels]
    rows = [["full model", pct(full["mean"], full["std"])] + [""] * len(levels)]
    dr = results["dense_reinit_summary"]
    rows.append([DENSE_REINIT, pct(dr["mean"], dr["std"])] + [""] * len(levels))
    rows += [[label, ""] + [pct(results["curves"][m][s]["mean"], results["curves"][m][s]["std"])
                            if s in results["curves"][m] else "" for s in levels]
             for m, label in methods.items()]
    lines += [report.markdown_table(header, rows), ""]
    lines += ["What the evidence shows (each sentence computed from the claims below):", ""]
    lines += [f"- {line}" for line in reading(results)] + [""]
    others = [m for m in methods if m != "imp"]
    table = [[f"{100 * float(sp):.0f}%"] + [f"{_cell(claims[f'imp_beats_{m}_at_{sp}'])} ({_mcnemar(claims[f'imp_beats_{m}_at_{sp}'])})"
                                            for m in others] for sp in levels if f"imp_beats_{others[0]}_at_{sp}" in claims]
    lines += ["IMP minus each baseline, paired by seed: mean difference in points [95% t CI] (McNemar's exact p on the "
              "pooled per-example predictions); ✓: the claim \"IMP beats it\" holds (the CI lies above 0). "
              f"{len(table) * len(others)} comparisons at 95% each: about one in twenty can hold by chance alone.", "",
              report.markdown_table(["sparsity"] + [f"IMP − {methods[m]}" for m in others], table), ""]
    learned = {k: claims[k] for k in results["claim_groups"]["learns"] if "_beats_majority_at_" in k}
    arms = [m for m in ("imp", *BASELINES) if any(k.startswith(f"{m}_beats_majority_at_") for k in learned)]
    grid = [[f"{100 * float(sp):.1f}%"] + [f"{_cell(learned[k])} ({_mcnemar(learned[k])})"
                                          if (k := f"{m}_beats_majority_at_{sp}") in learned else "" for m in arms]
            for sp in levels]
    lines += ["Whether each arm learns: minus the majority class, paired by seed, in points [95% t CI] (McNemar's "
              "exact p); ✓: the arm leaves the majority class.", "",
              report.markdown_table(["sparsity"] + [methods[m] for m in arms], grid), "",
              "The dense models, and what pre-training gives:", "",
              report.claims_markdown([claims[k] for k in results["claim_groups"]["learns"] if k not in learned]), ""]
    t = results["ticket"]
    best = "none" if t["sparsity"] is None else f"{100 * t['sparsity']:.0f}%"
    lines += [f"Highest winning-ticket sparsity: **{best}** (Chen et al.'s criterion: IMP's mean ≥ the full model's "
              f"mean − 1 std = {pct(full['mean'] - (full['std'] or 0.0))}%).", ""]
    if results["claim_groups"]["winning"]:
        lines += [report.claims_markdown([claims[k] for k in results["claim_groups"]["winning"]]), ""]
    rw = results["rewinding"]
    base = rewind_label("init")
    rewind_rows = []
    for label, row in rw.items():
        summary = stats.summarize(row["accuracy"])
        claim = claims.get(f"{label.replace(' ', '_').replace('%', 'pct')}_beats_rewind_0pct")
        rewind_rows.append([label, str(row["steps_per_round"]), f"{100 * row['sparsity']:.1f}%",
                            pct(summary.mean, summary.std), "–" if claim is None else _cell(claim),
                            "–" if claim is None else _mcnemar(claim)])
    lines += [f"Rewinding with equal budgets (Table 3 of Chen et al.), {len(rw[base]['accuracy'])} seeds: rewinding to "
              "step k runs the rest of the full model's schedule (T − k steps, the same learning rates and batches), "
              "so every ticket is T steps from θ0; standard pruning fine-tunes the pruned final weights for T steps "
              "(a fresh schedule), as rewind 0% retrains.", "",
              report.markdown_table(["variant", "steps per round", "sparsity", "test accuracy (%)",
                                     f"minus {base} [95% CI]", "McNemar p"], rewind_rows), ""]
    costs = results["inference_costs"]
    lines += [f"Inference costs of the full six-layer model ({costs['parameters']:,} parameters, "
              f"{costs['prunable_weights']:,} of them prunable): one pass over {costs['timing_examples']} test snippets "
              f"on `{results['provenance']['device']}`, timed interleaved. {costs['note']}.", "",
              costs_table(costs), ""]
    if c.get("notes"):
        lines += ["What was cut to fit the budget: " + "; ".join(c["notes"]) + ".", ""]
    lines += [report.figure_links(FIGURES, figure_prefix)]
    return "\n".join(lines)


RUN = Run(name="tickets", description=__doc__, profiles=PROFILES, execute=execute, summarise=summarise, plot=plot,
          markdown=markdown, title=title)


def main(argv=None) -> int:
    return run_main(RUN, argv)
