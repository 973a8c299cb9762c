"""The compression run's summary, claims, frontier plot and report, from ``results.json`` alone.

* the ledger: one row per model (role + variant): the first seed's counts (parameters, non-zeros, bytes
  dense and CSR, multiply-adds; identical across seeds but for exact zeros), its latency against the fp32
  teacher, and test accuracy over seeds with the paired change against the uncompressed model;
* the frontier (:mod:`compresslib.runs.frontier`) and, per byte budget, the most accurate model and its
  paired comparison with the runner-up;
* which models are faster than the teacher here;
* "train large, then compress": each teacher variant against the student variant compressed the same way
  with the fewest bytes that are still at least the teacher's; and, per compression, whether the teacher
  loses less accuracy to it than the student (paired by seed).

Every comparison is a :func:`compresslib.runs.claims.compare` record; the sentences say "does not hold"
with the numbers where the evidence does not carry a claim.
"""

from __future__ import annotations

from pathlib import Path

from compresslib import stats
from compresslib.runs import paths, report
from compresslib.runs import compress_recipes as recipes
from compresslib.runs.claims import compare
from compresslib.runs.common import decode_classes
from compresslib.runs.frontier import best_within, nearest_at_least, pareto_front, stored_bytes

ROLES = ("teacher", "student")
TABLES = (
    ("Uncompressed and reduced precision", (recipes.UNCOMPRESSED, recipes.PRECISION)),
    ("Pruning (global magnitude, encoder linear weights), alone and with int8", (recipes.PRUNING, recipes.PRUNING_INT8)),
    ("Low-rank FFN (truncated SVD), without and with a short fine-tune", (recipes.LOW_RANK, recipes.LOW_RANK_FT)),
    ("Shared layers (ALBERT), fine-tuned", (recipes.SHARING,)),
)
FIGURE = "frontier.png"


def _variants(results) -> list[recipes.Variant]:
    return [recipes.Variant(**v) for v in results["variants"]]


def _accuracies(results, role: str, variant: str) -> list[float]:
    return [run["test_accuracy"] for run in results["runs"][role][variant]]


def _correct(results, role: str, variant: str):
    labels = decode_classes(results["test_labels"])
    return stats.pool_seeds([decode_classes(r["test_predictions"]) for r in results["runs"][role][variant]], labels)


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e6:.2f} MB"


def ledger(results) -> list[dict]:
    """One row per model: counts, stored bytes, latency, accuracy over seeds and the paired change."""
    latency = results["latency"]
    rows = []
    for role in ROLES:
        base = _accuracies(results, role, "fp32")
        for v in _variants(results):
            name = f"{role} {v.name}"
            accuracies = _accuracies(results, role, v.name)
            change = stats.paired_difference(accuracies, base).as_dict() if v.kind != recipes.UNCOMPRESSED else None
            counts = dict(results["runs"][role][v.name][0]["ledger"])
            rows.append({**counts, "name": name, "role": role, "variant": v.name, "kind": v.kind,
                         "stored_bytes": stored_bytes(counts), "latency_s": latency["seconds"].get(name),
                         "speedup": latency["speedup"].get(name), "accuracy": stats.summarize(accuracies).as_dict(),
                         "change": change})
    return rows


def _row(rows, name):
    return next(r for r in rows if r["name"] == name)


def budget_claims(results, rows, points) -> tuple[list[dict], list[dict]]:
    """Per budget: the models within it, most accurate first, and the winner's claim against the runner-up."""
    teacher_bytes = _row(rows, "teacher fp32")["bytes"]
    budgets, claims = [], []
    for fraction in results["config"]["budgets"]:
        limit = fraction * teacher_bytes
        ranked = best_within(points, limit)
        entry = {"fraction": fraction, "bytes": limit, "ranked": ranked, "claim": None}
        if len(ranked) >= 2:
            a, b = (_row(rows, n) for n in ranked[:2])
            claim = compare(f"best_within_{round(100 * fraction)}pct", a["name"], _accuracies(results, a["role"], a["variant"]),
                            b["name"], _accuracies(results, b["role"], b["variant"]),
                            correct_a=_correct(results, a["role"], a["variant"]),
                            correct_b=_correct(results, b["role"], b["variant"])).as_dict()
            entry["claim"] = claim["key"]
            claims.append(claim)
        budgets.append(entry)
    return budgets, claims


def speed(results, rows) -> dict:
    """The models at least ``speedup_threshold`` times faster than the fp32 teacher, and the others."""
    threshold = results["config"]["speedup_threshold"]
    timed = sorted((r for r in rows if r["speedup"] is not None), key=lambda r: -r["speedup"])
    return {"threshold": threshold,
            "faster": [[r["name"], r["speedup"]] for r in timed if r["speedup"] >= threshold],
            "not_faster": [[r["name"], r["speedup"]] for r in timed if r["speedup"] < threshold and r["name"] != "teacher fp32"]}


def equal_bytes_claims(results, rows) -> tuple[list[dict], list[dict]]:
    """Each teacher variant compressed by precision or pruning against the student variant compressed the same
    way with the fewest bytes that are still at least the teacher variant's (less ``byte_tolerance``); where
    none is that large, against the smallest student variant of any kind that is."""
    variants = _variants(results)
    tolerance = results["config"]["byte_tolerance"]
    sizes = lambda chosen: [(c.name, _row(rows, f"student {c.name}")["stored_bytes"]) for c in chosen]  # noqa: E731
    pairs, claims = [], []
    for v in variants:
        candidates = recipes.equal_bytes_candidates(v, variants)
        if not candidates:
            continue
        teacher = _row(rows, f"teacher {v.name}")
        match = nearest_at_least(teacher["stored_bytes"], sizes(candidates), tolerance)
        same_way = match is not None
        if match is None:
            match = nearest_at_least(teacher["stored_bytes"], sizes(variants), tolerance)
        pair = {"teacher": teacher["name"], "teacher_bytes": teacher["stored_bytes"], "student": None,
                "same_way": same_way, "claim": None}
        if match is not None:
            student = _row(rows, f"student {match}")
            claim = compare(f"equal_bytes_{paths.slug(v.name)}",
                            f"{teacher['name']} ({_megabytes(teacher['stored_bytes'])})", _accuracies(results, "teacher", v.name),
                            f"{student['name']} ({_megabytes(student['stored_bytes'])})", _accuracies(results, "student", match),
                            correct_a=_correct(results, "teacher", v.name),
                            correct_b=_correct(results, "student", match)).as_dict()
            pair.update(student=student["name"], student_bytes=student["stored_bytes"], claim=claim["key"])
            claims.append(claim)
        pairs.append(pair)
    return pairs, claims


def loses_less_claims(results) -> list[dict]:
    """Per compression: the teacher's accuracy change from it against the student's, paired by seed."""
    claims = []
    for v in _variants(results):
        if v.kind == recipes.UNCOMPRESSED:
            continue
        changes = {role: [c - b for c, b in zip(_accuracies(results, role, v.name), _accuracies(results, role, "fp32"))]
                   for role in ROLES}
        claims.append(compare(f"loses_less_{paths.slug(v.name)}", f"teacher + {v.name}", changes["teacher"],
                              f"student + {v.name}", changes["student"], verb="loses less than",
                              metric="test accuracy change from the compression").as_dict())
    return claims


def summarise(results: dict) -> dict:
    """The ledger, the frontier, the budgets, the speed list and every claim, from ``results`` alone."""
    rows = ledger(results)
    points = [(r["name"], r["stored_bytes"], r["accuracy"]["mean"]) for r in rows]
    budgets, budget = budget_claims(results, rows, points)
    pairs, equal = equal_bytes_claims(results, rows)
    losses = loses_less_claims(results)
    return {"ledger": rows, "frontier": pareto_front(points), "budgets": budgets, "speed": speed(results, rows),
            "equal_bytes": pairs, "claims": budget + equal + losses}


# --------------------------------------------------------------------------------------------- figure


def _short(variant: str) -> str:
    return (variant.replace("pruned ", "p").replace("low-rank FFN r=", "r").replace(" + ", "+")
            .replace("shared layers (1 group)", "shared").replace("shared layers ", "shared "))


def _role_label(results, role: str) -> str:
    layers = results["bases"][role][0]["layers"]
    return f"{role} ({layers} layers)"


def plot(results: dict, folder: Path) -> list[str]:
    """``frontier.png``: test accuracy against bytes as stored, every model, with the Pareto frontier."""
    points = [{"name": r["name"], "label": _short(r["variant"]), "bytes": r["stored_bytes"], "mean": r["accuracy"]["mean"],
               "std": r["accuracy"]["std"], "group": _role_label(results, r["role"]), "kind": r["kind"]}
              for r in results["ledger"]]
    seeds = results["seeds"]
    title = (f"{results['config']['teacher_model']} on {results['config']['dataset']}: test accuracy "
             f"({results['sizes']['test']} snippets, mean ± std over {len(seeds)} seed{'s' * (len(seeds) != 1)}) "
             f"against bytes as stored")
    report.accuracy_vs_bytes(points, paths.figure(folder, "frontier"), title=title,
                             majority=results["majority_class"]["test"], front=results["frontier"])
    return [FIGURE]


# ------------------------------------------------------------------------------------------- markdown


def title(results: dict) -> str:
    return f"Compression on one cost ledger ({results['profile']} profile)"


def _count(n: int) -> str:
    return f"{n / 1e6:.2f}M"


def _change(change) -> str:
    if change is None:
        return "–"
    text = f"{100 * change['mean']:+.1f}"
    if change["ci_low"] is not None:
        text += f" [{100 * change['ci_low']:+.1f}, {100 * change['ci_high']:+.1f}]"
    return text


def technique_table(results, kinds) -> str:
    teacher_bytes = _row(results["ledger"], "teacher fp32")["bytes"]
    header = ["model", "params", "non-zero", "bytes, dense", "bytes, CSR", "x smaller", f"mult-adds @ {results['seq_len']}",
              "latency (ms)", "speed-up", "test accuracy (%)", "change (points, 95% CI)"]
    rows = []
    for r in results["ledger"]:
        if r["kind"] not in kinds:
            continue
        rows.append([r["name"], _count(r["parameters"]), _count(r["nonzero_parameters"]), _megabytes(r["bytes"]),
                     "–" if r["bytes_sparse"] is None else _megabytes(r["bytes_sparse"]),
                     f"{teacher_bytes / r['stored_bytes']:.2f}", _count(r["multiply_adds"]),
                     "–" if r["latency_s"] is None else f"{1e3 * r['latency_s']:.1f}",
                     "–" if r["speedup"] is None else f"{r['speedup']:.2f}x",
                     report.pct(r["accuracy"]["mean"], r["accuracy"]["std"]), _change(r["change"])])
    return report.markdown_table(header, rows)


def _describe(results) -> str:
    config, sizes, bases = results["config"], results["sizes"], results["bases"]
    lr = {role: ("checkpoint" if results["lr"][role] is None else f"lr {results['lr'][role]:g}") for role in ROLES}
    student = ("its pre-trained encoder's layers 0, 2, 4, ... (DistilBERT's recipe)" if config["student_model"] is None
               else f"`{config['student_model']}`")
    how = (f"hard labels + the same seed's teacher's soft targets (alpha {config['alpha']}, T {config['temperature']:g})"
           if config["student_loss"] == "kd" else "hard labels")
    sources = "; ".join(f"{role}s loaded from `{config[role + '_checkpoint']}`" for role in ROLES
                        if config[role + "_checkpoint"])
    return (f"Teacher `{config['teacher_model']}` ({bases['teacher'][0]['layers']} layers), fine-tuned on "
            f"{sizes['train']} snippets of `{config['dataset']}` for {config['epochs']:g} epoch(s) ({lr['teacher']}); "
            f"student ({bases['student'][0]['layers']} layers): {student}, trained on {how} ({lr['student']})"
            + (f"; {sources}" if sources else "") + f". Seeds {results['seeds']}: one teacher and one student per seed, "
            f"every comparison paired by seed. Test accuracy on {sizes['test']} test snippets (mean ± sample std over "
            f"seeds); a constant guess of the majority class scores {report.pct(results['majority_class']['test'])}%.")


def _methods(results) -> str:
    config, latency = results["config"], results["latency"]
    embeddings = ("int8 and 4-bit also store the word-embedding table at their bits (one scale per row)"
                  if config["quantize_embeddings"] else "the word-embedding table stays fp32 in int8 and 4-bit")
    half = ("weights rounded to 16 bits with float32 arithmetic" if config["half_eval"] == "weights" else
            "the cast model")
    return (f"Bytes as stored: each tensor at its precision (dense), or in CSR with int32 indices for the pruned "
            f"models; the smaller counts (\"x smaller\" against the fp32 teacher). Multiply-adds for one sequence "
            f"of {results['seq_len']} tokens (pruned weights counted: dense kernels). Latency: one pass over a batch "
            f"of {latency['batch'][0]} x {latency['batch'][1]} tokens on `{latency['device']}` "
            f"({latency['threads']} threads), {latency['method']}; the models are the first seed's before any "
            f"recovery fine-tuning (the same layers and kernels), and a low-rank model's time serves with and "
            f"without fine-tuning. Recipes: int8 is PyTorch's dynamic int8 on every linear layer (per-channel "
            f"weights, int8 CPU kernels); 4-bit stores every linear weight as packed 4-bit codes with one scale per "
            f"output row (`QuantizedLinear`; accuracy measured on the fake-quantised model, whose outputs are the "
            f"same); {embeddings}; fp16/bf16 accuracy: {half}. Pruning: global magnitude over the encoder's linear "
            f"weights to {', '.join(recipes.sparsity_label(s) for s in config['sparsities'])}, each sparsity from the "
            f"previous one's model, {config['recovery_steps']} fine-tuning steps with the mask enforced after each. "
            f"Low-rank: both FFN matrices of every layer at rank {', '.join(map(str, config['ranks']))}, without and "
            f"with {config['recovery_steps']} fine-tuning steps. Sharing: {config['share_groups']} group(s), each "
            f"layer initialised as the {config['share_init']} of its group, {config['recovery_steps']} fine-tuning "
            f"steps. Every fine-tuning uses the model's own learning rate; nothing was chosen on test data.")


def _claim(results, key):
    return next(c for c in results["claims"] if c["key"] == key)


def markdown(results: dict, figure_prefix: str = "") -> str:
    """The ledger's conclusions, the claims, the frontier plot and a table per technique."""
    by_name = {r["name"]: r for r in results["ledger"]}
    lines = [_describe(results), "", report.figure_links([("accuracy against bytes", FIGURE)], figure_prefix), "",
             "**Which technique wins at a given size.** The Pareto frontier (no model both smaller and more "
             "accurate on average): " + ", ".join(f"{n} ({_megabytes(by_name[n]['stored_bytes'])}, "
                                                   f"{report.pct(by_name[n]['accuracy']['mean'])}%)"
                                                   for n in results["frontier"]) + ".", ""]
    for budget in results["budgets"]:
        head = f"- Within {_megabytes(budget['bytes'])} ({100 * budget['fraction']:g}% of the fp32 teacher): "
        ranked = budget["ranked"]
        if not ranked:
            lines.append(head + "no model is that small.")
        elif budget["claim"] is None:
            lines.append(head + f"only {ranked[0]} fits.")
        else:
            winner = by_name[ranked[0]]
            lines.append(head + f"{len(ranked)} models fit; the most accurate is {winner['name']} ({winner['kind']}). "
                         + _claim(results, budget["claim"])["sentence"])
    fast = results["speed"]
    listed = lambda items: ", ".join(f"{n} {s:.2f}x" for n, s in items) or "none"  # noqa: E731
    lines += ["", f"**Which is actually faster here** (speed-up against the fp32 teacher at least "
                  f"{fast['threshold']:g}x, interleaved timing): {listed(fast['faster'])}. Not faster: "
                  f"{listed(fast['not_faster'])}.", "",
              "**Train large, then compress** (Li et al. 2020). At equal bytes: each teacher variant against the "
              "student variant compressed the same way with the fewest bytes that are still at least the teacher's "
              f"(the student never gets fewer bytes, up to {100 * results['config']['byte_tolerance']:g}%), paired by seed:", ""]
    for pair in results["equal_bytes"]:
        if pair["claim"] is None:
            lines.append(f"- {pair['teacher']} ({_megabytes(pair['teacher_bytes'])}): no student variant is as large.")
        else:
            lines.append("- " + ("" if pair["same_way"] else "(no student variant compressed the same way is as "
                                 "large; the smallest larger one) ") + _claim(results, pair["claim"])["sentence"])
    lines += ["", "Does the larger model lose less to each compression? The change in test accuracy from each "
                  "compression (compressed minus uncompressed, same seed), teacher against student:", ""]
    lines += ["- " + c["sentence"] for c in results["claims"] if c["key"].startswith("loses_less_")]
    for heading, kinds in TABLES:
        if any(r["kind"] in kinds for r in results["ledger"]):
            lines += ["", f"**{heading}**", "", technique_table(results, kinds)]
    lines += ["", f"The change column: paired mean difference from the same model uncompressed, in points, with its "
                  f"95% CI over seeds. {_methods(results)}"]
    notes = results["config"].get("notes") or []
    if notes:
        lines += ["", "What this profile cut: " + "; ".join(notes) + "."]
    return "\n".join(lines)
