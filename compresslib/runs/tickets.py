"""Lottery tickets in the embedded default: ``python -m compresslib.runs tickets --profile quick|cpu|gpu``.

What it measures (the lecture's BERT-ticket tables, Chen et al. 2020, at this kit's scale):

- the full fine-tuned model over seeds (IMP round 0);
- accuracy versus sparsity for IMP on θ0, random pruning (RP) on θ0, the IMP mask on re-initialised
  weights θ'0 and on layer-shuffled weights θ''0 (same seeds, same sparsities, same training);
- the highest sparsity at which IMP finds a winning ticket (within one std of the full model), and IMP's
  margin over each baseline as a claim paired by seed (:mod:`compresslib.runs.claims`);
- the rewinding table: rewind 0/5/10/20/50% of training and standard pruning (one seed);
- structured head pruning: inference time before/after removing heads, and the (lack of) speed-up
  from an unstructured mask alone (interleaved timing).

Files (:mod:`compresslib.runs.paths`): ``runs/tickets/<profile>/`` holds ``results.json`` (with
provenance), ``results.md``, ``accuracy_vs_sparsity.png``, ``layer_sparsity.png`` and every intermediate
result (IMP rounds, baselines, heads), so an interrupted run resumes where it stopped; the latest
results are copied to ``runs/tickets/``. (Notebook 03's grading fixtures: ``python -m
compresslib.grading.record 03_lottery_tickets``.)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from compresslib import stats
from compresslib.data import load_text_classification, subset
from compresslib.models import freeze_word_embeddings, load_classifier, load_tokenizer
from compresslib.prune import (
    MaskEnforcer,
    apply_mask,
    branch_from_round0,
    count_heads,
    head_importance,
    heads_to_prune,
    highest_winning_sparsity,
    iterative_magnitude_pruning,
    prune_heads,
    random_mask,
    reinitialize,
    rewind_label,
    shuffle_within_layers,
)
from compresslib.runs import paths, report
from compresslib.runs.claims import compare
from compresslib.runs.common import cached
from compresslib.runs.hparams import Profile, option
from compresslib.runs.runner import Run, run_main
from compresslib.training import accuracy, compare_inference_times, fit, make_loader, tokenize


@dataclass(frozen=True)
class TicketsProfile(Profile):
    train_examples: int | None = option(128, "training snippets per fine-tuning (all: the whole training split)")
    eval_examples: int | None = option(128, "evaluation snippets (all: the whole split)")
    max_length: int = option(32, "tokens per snippet (the median snippet has 26)")
    batch_size: int = option(16, "training batch size")
    epochs: float = option(1.0, "passes over the training snippets per fine-tuning (each IMP round and baseline)")
    lr: float = option(2e-4, "peak learning rate of AdamW (10% linear warm-up, then linear decay)")
    seeds: tuple[int, ...] = option((0, 1), "seeds of the classifier head and data order; claims pair by seed")
    rounds: int = option(1, "IMP rounds after the full model (round 0)")
    fraction: float = option(0.5, "fraction of the remaining prunable weights pruned per round")
    rewind_fractions: tuple[float, ...] = option((0.05, 0.1, 0.2, 0.5), "rewind points (fractions of training) "
                                                 "in the rewinding table, besides rewind 0% and standard pruning")
    rewind_rounds: int = option(1, "IMP rounds of each rewinding variant (first seed only)")
    head_fraction: float = option(0.5, "fraction of attention heads removed by importance (no retraining)")
    freeze_word_embeddings: bool = option(True, "keep the word embeddings fixed (never pruned in this setting)")
    scope: str = option("global", "magnitude ranking: global (one over all prunable weights) or layer")
    eval_batch_size: int = option(128, "evaluation batch size")
    split: str = option("test", "the split accuracy is measured on")


PROFILES = {
    "quick": TicketsProfile(
        name="quick", notes=("smoke test of the whole pipeline: 8 training steps per fine-tune, the numbers are "
                             "not meaningful",),
    ),
    "cpu": TicketsProfile(
        name="cpu", train_examples=1280, eval_examples=512, seeds=(0, 1, 2), rounds=2,
        notes=(
            "1,280 of 9,181 training examples, one epoch (80 steps of batch 16) per fine-tune, lr 2e-4 "
            "(with 48 steps every baseline stayed at the majority class; with 96 the run exceeds 25 minutes)",
            "512 of 2,551 test examples; max 32 tokens (the median snippet has 26)",
            "word embeddings frozen (never pruned in the BERT-ticket setting; saves half the optimizer work)",
            "3 seeds, 2 IMP rounds of 50% (sparsity 50%, 75%); rewinding table: seed 0, one round (50%)",
        ),
    ),
    "gpu": TicketsProfile(
        name="gpu", train_examples=None, eval_examples=None, max_length=64, batch_size=32, epochs=2, lr=5e-5,
        seeds=(0, 1, 2, 3, 4), rounds=6, fraction=0.2, rewind_rounds=6, freeze_word_embeddings=False,
        notes=("full data, 2 epochs per round, 5 seeds, 6 rounds of 20% (up to 74% sparsity), bf16 autocast",),
    ),
}

METHODS = {
    "imp": "IMP on θ0",
    "rp": "random pruning on θ0",
    "reinit": "IMP mask on θ'0 (re-initialised)",
    "shuffled": "IMP mask on θ''0 (shuffled)",
}
BASELINES = ("rp", "reinit", "shuffled")


class Experiment:
    """Data, model factory, training and evaluation for one profile (built once, used by every part)."""

    def __init__(self, profile: TicketsProfile, folder: Path, device: torch.device):
        self.profile = profile
        self.folder = folder
        self.device = device
        self.tokenizer = load_tokenizer()
        data = tokenize(load_text_classification(), self.tokenizer, max_length=profile.max_length)
        self.train_set = subset(data["train"], profile.train_examples, seed=0)
        self.eval_set = subset(data[profile.split], profile.eval_examples, seed=0)
        self.eval_loader = make_loader(self.eval_set, self.tokenizer, batch_size=profile.eval_batch_size, shuffle=False)
        self.train_steps = max(1, int(round(profile.epochs * -(-len(self.train_set) // profile.batch_size))))
        self.majority_class = stats.majority_class_accuracy(self.eval_set["label"])
        self._theta0 = {}

    def theta0(self, seed: int):
        """A fresh copy of the pre-trained encoder with the classifier head initialised from ``seed`` (θ0)."""
        if seed not in self._theta0:
            self._theta0[seed] = load_classifier(seed=seed).to(self.device)
        model = copy.deepcopy(self._theta0[seed])
        if self.profile.freeze_word_embeddings:
            freeze_word_embeddings(model)
        return model

    def train(self, seed: int, desc: str):
        def run(model, *, after_step=None, on_step=None):
            loader = make_loader(self.train_set, self.tokenizer, batch_size=self.profile.batch_size, shuffle=True, seed=seed)
            fit(model, loader, epochs=self.profile.epochs, lr=self.profile.lr, after_step=after_step,
                on_step=on_step, device=self.device, desc=desc)

        return run

    def evaluate(self, model) -> dict:
        return {"accuracy": accuracy(model, self.eval_loader, device=self.device)}


def run_imp(exp: Experiment, seed: int, *, rewind="init", rounds=None, out_dir=None, extra=()):
    p = exp.profile
    model = exp.theta0(seed)
    result = iterative_magnitude_pruning(
        model, exp.train(seed, f"seed {seed} IMP"), exp.evaluate, rounds=p.rounds if rounds is None else rounds,
        fraction=p.fraction, out_dir=out_dir or paths.imp_dir(exp.folder, seed), rewind=rewind,
        train_steps=exp.train_steps, scope=p.scope, seed=seed, extra_rewind_points=extra,
    )
    del model
    return result


def run_baseline(exp: Experiment, seed: int, method: str, r: int, imp) -> dict:
    """Train one baseline subnetwork at IMP round ``r``'s sparsity; cached as JSON."""
    mask = imp.mask(r)
    config = {"method": method, "round": r, "sparsity": mask.sparsity, "seed": seed, "profile": exp.profile.config()}

    def compute():
        model = exp.theta0(seed)
        names = list(mask)
        if method == "rp":
            used = random_mask(model, mask.sparsity, scope="global", names=names, seed=10_000 + seed * 100 + r)
        else:
            used = mask
            if method == "reinit":
                reinitialize(model, names, seed=20_000 + seed)
            elif method == "shuffled":
                shuffle_within_layers(model, names, seed=30_000 + seed)
            else:
                raise ValueError(f"unknown baseline {method!r}")
        enforcer = MaskEnforcer(model, used)
        torch.manual_seed(seed * 1000 + r)
        exp.train(seed, f"seed {seed} {method} r{r}")(model, after_step=enforcer)
        enforcer.remove()
        metrics = exp.evaluate(model)
        metrics.update({"sparsity": used.sparsity})
        return metrics

    return cached(paths.baseline_json(exp.folder, seed, method, r), compute, config=config)


def run_rewinding(exp: Experiment) -> dict:
    """The first seed: IMP with each rewind point (branching off the shared round 0) for ``rewind_rounds``."""
    p = exp.profile
    seed = p.seeds[0]
    rows = {}
    for rewind in ["init", *p.rewind_fractions, "none"]:
        if rewind == "init":
            target = paths.imp_dir(exp.folder, seed)
        else:
            branch = "standard" if rewind == "none" else f"rewind{round(100 * rewind)}"
            target = branch_from_round0(paths.imp_dir(exp.folder, seed), paths.branch_dir(exp.folder, seed, branch), rewind)
        result = run_imp(exp, seed, rewind=rewind, rounds=p.rewind_rounds, out_dir=target,
                         extra=p.rewind_fractions if rewind == "init" else ())
        last = result.rounds[p.rewind_rounds]
        rows[rewind_label(rewind)] = {"sparsity": last["sparsity"], "accuracy": last["accuracy"]}
    return rows


def layer_kind(name: str) -> str:
    for key, label in (("attention.self.query", "query"), ("attention.self.key", "key"),
                       ("attention.self.value", "value"), ("attention.output.dense", "attention output"),
                       ("intermediate.dense", "FFN in"), ("output.dense", "FFN out")):
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


def run_heads(exp: Experiment, imp) -> dict:
    """Head pruning on the first seed's fine-tuned full model, and the timing of an unstructured mask."""
    p = exp.profile
    model = exp.theta0(p.seeds[0])
    state = model.state_dict()
    state.update(imp.checkpoint(0))
    model.load_state_dict(state)
    full = {**exp.evaluate(model), "heads": sum(count_heads(model))}
    mask = imp.mask(p.rounds)
    sparse_model = apply_mask(copy.deepcopy(model), mask)
    loader = make_loader(exp.train_set, exp.tokenizer, batch_size=32, shuffle=False)
    importance = head_importance(model, loader, max_batches=8, device=exp.device)
    heads = heads_to_prune(importance, p.head_fraction)
    head_pruned = prune_heads(copy.deepcopy(model), heads)
    pruned = {**exp.evaluate(head_pruned), "heads": sum(count_heads(head_pruned)),
              "heads_per_layer": count_heads(head_pruned)}
    timing_set = exp.eval_set.select(range(min(256, len(exp.eval_set))))
    timing_loader = make_loader(timing_set, exp.tokenizer, batch_size=64, shuffle=False)
    times = compare_inference_times({"full": model, "unstructured_mask": sparse_model, "head_pruned": head_pruned},
                                    timing_loader, device=exp.device)
    return {
        "full": {"time_s": times["full"], **full},
        "unstructured_mask": {"time_s": times["unstructured_mask"], "sparsity": mask.sparsity},
        "head_pruned": {"time_s": times["head_pruned"], **pruned},
        "head_fraction": p.head_fraction,
        "importance": importance.tolist(),
        "speedup_heads": times["full"] / times["head_pruned"],
        "speedup_unstructured": times["full"] / times["unstructured_mask"],
        "timing_examples": len(timing_set),
        "note": "head-pruned accuracy is without retraining; each time is the best of 3 interleaved rounds of "
                "3 passes over the first 256 evaluation examples in batches of 64",
    }


# ------------------------------------------------------------------------------------ the run's parts


def execute(profile: TicketsProfile, folder: Path, device: torch.device) -> dict:
    """Every part of the run (each cached under ``folder``) and the per-seed numbers they measured."""
    exp = Experiment(profile, folder, device)
    bar = tqdm(total=len(profile.seeds) * (1 + len(BASELINES) * profile.rounds) + 1, desc=f"tickets {profile.name}")
    imps, baselines = {}, {}
    for seed in profile.seeds:
        imps[seed] = run_imp(exp, seed, extra=profile.rewind_fractions if seed == profile.seeds[0] else ())
        bar.update(1)
        for r in range(1, profile.rounds + 1):
            for method in BASELINES:
                baselines[(seed, method, r)] = run_baseline(exp, seed, method, r, imps[seed])
                bar.update(1)
    rewinding = run_rewinding(exp)
    first = imps[profile.seeds[0]]
    heads = cached(paths.heads_json(folder), lambda: run_heads(exp, first), config=profile.config())
    bar.update(1)
    bar.close()

    full = [imps[s].rounds[0]["accuracy"] for s in profile.seeds]
    levels = {}
    for r in range(1, profile.rounds + 1):
        sparsity = round(first.rounds[r]["sparsity"], 4)
        levels[sparsity] = {"imp": [imps[s].rounds[r]["accuracy"] for s in profile.seeds],
                            **{m: [baselines[(s, m, r)]["accuracy"] for s in profile.seeds] for m in BASELINES}}
    return {
        "train_steps_per_fine_tune": exp.train_steps,
        "evaluation_examples": len(exp.eval_set),
        "methods": METHODS,
        "majority_class": exp.majority_class,
        "full": stats.summarize(full).as_dict(),
        "curves": {m: {str(sp): stats.summarize(row[m]).as_dict() for sp, row in levels.items()} for m in METHODS},
        "ticket": highest_winning_sparsity(full, {sp: row["imp"] for sp, row in levels.items()}),
        "imp_layer_sparsity": {str(round(first.rounds[r]["sparsity"], 4)): sparsity_by_kind(first.mask(r))
                               for r in range(1, profile.rounds + 1)},
        "rewinding": rewinding,
        "heads": heads,
    }


def summarise(results: dict) -> dict:
    """IMP against each baseline at each sparsity, paired by seed: a claim each (``claims``), and the old
    "difference beyond the larger seed std" reading (``imp_vs_baselines``) beside it."""
    curves = results["curves"]
    claims, spreads = [], {}
    for sp, imp in curves["imp"].items():
        spreads[sp] = {}
        for m in BASELINES:
            other = curves[m][sp]
            at = f" ({100 * float(sp):.0f}% sparse)"
            claim = compare(f"imp_beats_{m}_at_{sp}", METHODS["imp"] + at, imp["per_seed"], METHODS[m] + at,
                            other["per_seed"])
            claims.append(claim.as_dict())
            gap, spread = imp["mean"] - other["mean"], max(imp["std"] or 0.0, other["std"] or 0.0)
            spreads[sp][m] = {"imp_minus": gap, "spread": spread, "imp_better_beyond_spread": gap > spread}
    return {"claims": claims, "imp_vs_baselines": spreads}


def plot(results: dict, folder: Path) -> list[str]:
    """``accuracy_vs_sparsity.png`` and ``layer_sparsity.png`` in ``folder``; returns their file names."""
    split = results["config"]["split"]
    report.accuracy_vs_sparsity(
        {label: {float(sp): point for sp, point in results["curves"][m].items()} for m, label in METHODS.items()},
        paths.figure(folder, "accuracy_vs_sparsity"), full=results["full"], majority=results["majority_class"],
        ylabel=f"{split} accuracy (%)", xlabel="sparsity of the encoder's linear weights (%)",
        title=f"Lottery tickets, MiniLM-L6 on Rotten Tomatoes ({results['profile']} profile, "
              f"{results['full']['n']} seeds)")
    report.grouped_bars({f"global {100 * float(sp):.0f}%": kinds for sp, kinds in results["imp_layer_sparsity"].items()},
                        paths.figure(folder, "layer_sparsity"), ylabel="sparsity (%)",
                        title="Where global magnitude pruning removes weights (first seed)")
    return ["accuracy_vs_sparsity.png", "layer_sparsity.png"]


FIGURES = (("accuracy vs sparsity", "accuracy_vs_sparsity.png"),
           ("where global pruning removes weights", "layer_sparsity.png"))


def title(results: dict) -> str:
    return f"Lottery tickets ({results['profile']} profile)"


def markdown(results: dict, figure_prefix: str = "") -> str:
    """The report: accuracy by sparsity, the claims, the winning ticket, rewinding and head pruning."""
    full, curves, pct = results["full"], results["curves"], report.pct
    sps = list(curves["imp"])
    split = results["config"]["split"]
    lines = [f"{full['n']} seeds, {split} accuracy on {results['evaluation_examples']} snippets (mean ± sample "
             f"std over seeds), {results['train_steps_per_fine_tune']} training steps per fine-tuning.", ""]
    rows = [["full model (0%)"] + [pct(full["mean"], full["std"]) for _ in sps]]
    rows += [[label] + [pct(curves[m][s]["mean"], curves[m][s]["std"]) for s in sps] for m, label in METHODS.items()]
    lines += [report.markdown_table(["subnetwork"] + [f"{100 * float(s):.0f}% sparse" for s in sps], rows), ""]
    lines += [f"A constant guess of the majority class scores {pct(results['majority_class'])}%.", ""]
    lines += ["IMP against each baseline at the same sparsity, paired by seed:", "", report.claims_markdown(results["claims"]), ""]
    t = results["ticket"]
    best = "none" if t["sparsity"] is None else f"{100 * t['sparsity']:.0f}%"
    lines += [f"Highest winning-ticket sparsity: **{best}** (criterion, as in Chen et al.: IMP's mean accuracy "
              f"≥ the full model's mean − 1 std = {pct(full['mean'] - (full['std'] or 0.0))}%).", ""]
    rewinding = [["full model", "0%", pct(full["per_seed"][0])]]
    rewinding += [[label, f"{100 * row['sparsity']:.0f}%", pct(row["accuracy"])] for label, row in results["rewinding"].items()]
    lines += [report.markdown_table(["rewinding (first seed)", "sparsity", "accuracy"], rewinding, "lrr"), ""]
    h = results["heads"]
    heads = [[f"full model, {h['full']['heads']} heads", f"{h['full']['time_s']:.2f}", pct(h["full"]["accuracy"])],
             [f"unstructured mask, {100 * h['unstructured_mask']['sparsity']:.0f}% zeros (dense kernels)",
              f"{h['unstructured_mask']['time_s']:.2f}", "–"],
             [f"{h['head_pruned']['heads']} heads left ({100 * h['head_fraction']:.0f}% removed, no retraining)",
              f"{h['head_pruned']['time_s']:.2f}", pct(h["head_pruned"]["accuracy"])]]
    lines += [report.markdown_table([f"inference, {h['timing_examples']} examples (best of 9 passes, interleaved)",
                                     "time (s)", "accuracy"], heads), ""]
    lines += [report.figure_links(FIGURES, figure_prefix)]
    return "\n".join(lines)


RUN = Run(name="tickets", description=__doc__, profiles=PROFILES, execute=execute, summarise=summarise, plot=plot,
          markdown=markdown, title=title)


def main(argv=None) -> int:
    return run_main(RUN, argv)
