"""The compression run without training: its variants, the data helpers, and the summary on hand-made
per-seed results (the ledger, the frontier, the byte budgets, the speed list, the equal-bytes pairs and
the "loses less" claims all recomputed here from the per-seed numbers)."""

from dataclasses import replace

import numpy as np
import pytest
from datasets import Dataset

from compresslib import stats
from compresslib.models import load_tokenizer
from compresslib.runs import compress, compress_report, hparams, paths
from compresslib.runs import compress_recipes as recipes
from compresslib.runs.common import encode_classes
from compresslib.runs.frontier import pareto_front

LABELS = [0, 1] * 20
SEEDS = (0, 1, 2)
# variant -> (kind, sparsity, {role: (dense bytes, CSR bytes or None)}, {role: accuracy level})
SPEC = {
    "fp32": (recipes.UNCOMPRESSED, None, {"teacher": (100e6, None), "student": (60e6, None)}, {"teacher": 0.9, "student": 0.8}),
    "int8": (recipes.PRECISION, None, {"teacher": (25e6, None), "student": (15e6, None)}, {"teacher": 0.85, "student": 0.75}),
    "4-bit": (recipes.PRECISION, None, {"teacher": (13e6, None), "student": (8e6, None)}, {"teacher": 0.8, "student": 0.6}),
    "pruned 50%": (recipes.PRUNING, 0.5, {"teacher": (100e6, 100e6), "student": (60e6, 60e6)},
                   {"teacher": 0.88, "student": 0.7}),
    "pruned 50% + int8": (recipes.PRUNING_INT8, 0.5, {"teacher": (25e6, 40e6), "student": (15e6, 24e6)},
                          {"teacher": 0.85, "student": 0.7}),
}


def predictions(level, rng):
    right = rng.random(len(LABELS)) < level
    return [label if ok else 1 - label for label, ok in zip(LABELS, right)]


@pytest.fixture(scope="module")
def results():
    rng = np.random.default_rng(0)
    runs = {role: {} for role in ("teacher", "student")}
    for name, (kind, sparsity, sizes, levels) in SPEC.items():
        for role in runs:
            runs[role][name] = []
            for seed in SEEDS:
                p = predictions(levels[role], rng)
                dense, sparse = sizes[role]
                runs[role][name].append({
                    "test_accuracy": float(np.mean(np.array(p) == LABELS)), "test_predictions": encode_classes(p),
                    "ledger": {"name": f"{role} {name}", "parameters": 10, "nonzero_parameters": 9, "bytes": int(dense),
                               "multiply_adds": 100, "seq_len": 48, "bytes_sparse": None if sparse is None else int(sparse),
                               "latency_s": None, "speedup": None, "accuracy": None, "note": ""}})
    names = [f"{role} {v}" for role in runs for v in SPEC]
    speedups = dict(zip(names, [1.0, 1.5, 0.8, 1.05, 1.6, 2.0, 2.6, 1.3, 2.0, 3.0]))
    config = {**compress.PROFILES["cpu"].config(), "budgets": [0.14, 0.3, 1.0], "speedup_threshold": 1.1}
    results = {
        "run": "compress", "profile": "cpu", "config": config, "seeds": list(SEEDS), "seq_len": 48,
        "sizes": {"train": 100, "validation": 10, "test": len(LABELS)},
        "majority_class": {"validation": 0.5, "test": 0.5}, "test_labels": encode_classes(LABELS),
        "lr": {"teacher": 1e-4, "student": 1e-4}, "selection": {},
        "bases": {"teacher": [{"layers": 6}] * 3, "student": [{"layers": 3}] * 3},
        "variants": [{"name": n, "kind": k, "sparsity": s, "rank": None, "dtype": None, "finetune": False}
                     for n, (k, s, _, _) in SPEC.items()],
        "runs": runs,
        "latency": {"seconds": {n: 1.0 / s for n, s in speedups.items()}, "speedup": speedups, "aliases": {},
                    "batch": [32, 48], "device": "cpu", "threads": 2, "method": "interleaved"},
    }
    results.update(compress_report.summarise(results))
    return results


def accuracies(results, role, variant):
    return [r["test_accuracy"] for r in results["runs"][role][variant]]


def claim(results, key):
    return next(c for c in results["claims"] if c["key"] == key)


def test_the_ledger_has_one_row_per_model_with_its_seeds_and_paired_change(results):
    rows = {r["name"]: r for r in results["ledger"]}
    assert len(rows) == 10
    row = rows["student pruned 50% + int8"]
    assert row["stored_bytes"] == 15e6 and row["speedup"] == 3.0  # dense beats CSR here
    assert row["accuracy"] == stats.summarize(accuracies(results, "student", "pruned 50% + int8")).as_dict()
    assert row["change"] == stats.paired_difference(accuracies(results, "student", "pruned 50% + int8"),
                                                    accuracies(results, "student", "fp32")).as_dict()
    assert rows["teacher fp32"]["change"] is None


def test_the_frontier_and_the_budget_winners_come_from_the_mean_accuracies(results):
    points = [(r["name"], r["stored_bytes"], r["accuracy"]["mean"]) for r in results["ledger"]]
    assert results["frontier"] == pareto_front(points)
    within = {b["fraction"]: b for b in results["budgets"]}
    assert set(within[0.14]["ranked"]) == {"teacher 4-bit", "student 4-bit"}
    first, second = within[0.3]["ranked"][:2]
    made = claim(results, within[0.3]["claim"])
    assert (made["a"], made["b"]) == (first, second)
    a, b = (accuracies(results, *name.split(" ", 1)) for name in (first, second))
    assert made["difference"] == stats.paired_difference(a, b).as_dict()
    assert made["mcnemar"]["n"] == len(LABELS) * len(SEEDS)


def test_faster_means_at_least_the_threshold(results):
    faster = dict(results["speed"]["faster"])
    assert faster == {"student pruned 50% + int8": 3.0, "student int8": 2.6, "student fp32": 2.0,
                      "student pruned 50%": 2.0, "teacher pruned 50% + int8": 1.6, "teacher int8": 1.5,
                      "student 4-bit": 1.3}
    assert "teacher fp32" not in dict(results["speed"]["not_faster"])


def test_equal_bytes_pairs_never_give_the_student_fewer_bytes(results):
    pairs = {p["teacher"]: p for p in results["equal_bytes"]}
    assert pairs["teacher int8"]["student"] == "student fp32" and pairs["teacher int8"]["same_way"]
    assert pairs["teacher 4-bit"]["student"] == "student int8"
    assert pairs["teacher pruned 50%"]["claim"] is None  # 100 MB: no student variant is that large
    fallback = pairs["teacher pruned 50% + int8"]
    assert fallback["student"] == "student fp32" and not fallback["same_way"]
    made = claim(results, pairs["teacher 4-bit"]["claim"])
    assert made["difference"] == stats.paired_difference(accuracies(results, "teacher", "4-bit"),
                                                         accuracies(results, "student", "int8")).as_dict()
    assert made["a"] == "teacher 4-bit (13.0 MB)" and made["b"] == "student int8 (15.0 MB)"


def test_loses_less_compares_the_paired_changes(results):
    for variant in ("int8", "4-bit", "pruned 50%", "pruned 50% + int8"):
        made = claim(results, f"loses_less_{paths.slug(variant)}")
        change = {role: np.subtract(accuracies(results, role, variant), accuracies(results, role, "fp32"))
                  for role in ("teacher", "student")}
        assert made["difference"]["differences"] == pytest.approx(list(change["teacher"] - change["student"]))
        assert made["verb"] == "loses less than"
        negated = "is not shown to lose less than"
        assert (negated in made["sentence"]) == (not made["holds"])


def test_the_report_shows_every_claim_and_each_technique_table(results, tmp_path):
    text = compress_report.markdown(results, "docs/results/compress/")
    for made in results["claims"]:
        assert made["sentence"] in text
    assert "![accuracy against bytes](docs/results/compress/frontier.png)" in text
    assert "**Pruning (global magnitude" in text and "**Low-rank" not in text  # no table without its variants
    assert compress_report.plot(results, tmp_path) == ["frontier.png"]
    assert (tmp_path / "frontier.png").stat().st_size > 0


def test_the_profiles_measure_the_promised_variants():
    hparams.check_profiles(compress.PROFILES)
    cpu = compress.PROFILES["cpu"]
    kinds = {v.kind for v in recipes.variants(cpu)}
    assert kinds == set(recipes.KINDS)  # every technique, on the profile the README shows
    assert len(cpu.sparsities) >= 2 and len(cpu.ranks) >= 2 and len(cpu.casts) >= 1
    assert len(cpu.seeds) >= 5 and len(cpu.lr_grid) >= 2 and cpu.test_examples is None  # the evidence rules
    full = replace(cpu, casts=("float16", "bfloat16"), sparsities=(0.5, 0.75, 0.875), ranks=(192, 96))
    names = [v.name for v in recipes.variants(full)]
    assert names == ["fp32", "int8", "4-bit", "fp16", "bf16", "pruned 50%", "pruned 50% + int8", "pruned 75%",
                     "pruned 75% + int8", "pruned 87.5%", "pruned 87.5% + int8", "low-rank FFN r=192",
                     "low-rank FFN r=192 + FT", "low-rank FFN r=96", "low-rank FFN r=96 + FT",
                     "shared layers (1 group) + FT"]
    no_training = [v.name for v in recipes.variants(replace(compress.PROFILES["cpu"], recovery_steps=0))]
    assert not any("FT" in name for name in no_training)
    with pytest.raises(ValueError, match="sparsities"):
        recipes.variants(replace(compress.PROFILES["cpu"], sparsities=(0.75, 0.5)))
    with pytest.raises(ValueError, match="casts"):
        recipes.variants(replace(compress.PROFILES["cpu"], casts=("int4",)))


def test_equal_bytes_families():
    variants = recipes.variants(compress.PROFILES["quick"])
    by_name = {v.name: v for v in variants}
    family = lambda name: [v.name for v in recipes.equal_bytes_candidates(by_name[name], variants)]  # noqa: E731
    assert family("4-bit") == ["fp32", "int8", "4-bit", "bf16"]
    assert family("pruned 75%") == ["fp32", "pruned 50%", "pruned 75%"]
    assert family("pruned 75% + int8") == ["int8", "pruned 50% + int8", "pruned 75% + int8"]
    assert family("low-rank FFN r=96") == []


def test_evaluation_order_and_the_latency_batch():
    data = Dataset.from_dict({"input_ids": [[101, 5, 6, 102], [101, 102], [101, 7, 102]], "label": [0, 1, 0],
                              "attention_mask": [[1] * 4, [1] * 2, [1] * 3]})
    assert compress.by_length(data)["input_ids"] == [[101, 102], [101, 7, 102], [101, 5, 6, 102]]
    batch = compress.padded_batch(data, load_tokenizer(), 2, 10)
    assert batch["input_ids"].shape == (2, 10) and "labels" not in batch
    assert batch["attention_mask"][1].tolist() == [1, 1] + [0] * 8
    assert batch["input_ids"][1, 2:].eq(0).all()
