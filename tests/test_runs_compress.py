"""The compression reference run end to end on a micro profile: the hub path (a large and a small model and a
data set given by name, here local folders written by save_pretrained / save_to_disk), every promised file,
the ledger and the claims computed from the per-seed numbers and the saved predictions, a rerun that
computes nothing, and --report-only."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from datasets import DatasetDict
from transformers import BertConfig, BertForSequenceClassification

from compresslib import stats
from compresslib.data import load_text_classification, subset
from compresslib.models import load_tokenizer
from compresslib.runs import compress, compress_report, paths
from compresslib.runs.common import decode_classes
from compresslib.runs.frontier import pareto_front

pytestmark = pytest.mark.slow


def tiny_checkpoint(folder, layers: int, tokenizer):
    """A BERT with MiniLM's vocabulary, hidden size 16 and ``layers`` layers, saved like a hub model."""
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(layers)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("compress")
    tokenizer = load_tokenizer()
    polarity = load_text_classification()
    DatasetDict({split: subset(polarity[split], n, seed=1) for split, n in
                 (("train", 64), ("validation", 16), ("test", 40))}).save_to_disk(root / "task")
    micro = replace(
        compress.PROFILES["quick"], name="micro", teacher_model=tiny_checkpoint(root / "large", 4, tokenizer),
        student_model=tiny_checkpoint(root / "small", 2, tokenizer), dataset=str(root / "task"), train_examples=None,
        val_examples=None, test_examples=None, max_length=16, batch_size=16, eval_batch_size=64, lr_grid=(1e-3, 3e-3),
        casts=("bfloat16",), sparsities=(0.5, 0.75), ranks=(4,), recovery_steps=2, latency_batch=4, budgets=(0.7, 1.0),
        seeds=(0, 1),  # two seeds: the claims get confidence intervals (the quick profile has one)
    )
    patched = pytest.MonkeyPatch()
    patched.setitem(compress.PROFILES, "micro", micro)
    out = root / "out"
    argv = ["--profile", "micro", "--out", str(out), "--threads", "1"]
    assert compress.main(argv) == 0
    first = json.loads((out / "results.json").read_text())
    assert compress.main(argv) == 0
    second = json.loads((out / "results.json").read_text())
    assert compress.main([*argv, "--report-only"]) == 0
    third = json.loads((out / "micro" / "results.json").read_text())
    patched.undo()
    return out, first, second, third


def test_every_promised_file_is_written(micro_run):
    out, results, _, _ = micro_run
    for name in ("results.json", "results.md", "frontier.png"):
        assert (out / name).stat().st_size > 0 and (out / "micro" / name).stat().st_size > 0
    folder = out / "micro"
    assert paths.latency_json(folder).exists() and paths.selection_json(folder, "teacher").exists()
    for seed in (0, 1):
        for role in ("teacher", "student"):
            assert (paths.base_dir(folder, seed, role, results["lr"][role]) / "config.json").exists()
            for variant in results["variants"]:
                assert paths.variant_json(folder, seed, role, variant["name"]).exists(), (seed, role, variant)
            assert paths.pruned_state(folder, seed, role, 0.75).exists()
    assert results["bases"]["teacher"][0]["layers"] == 4 and results["bases"]["student"][0]["layers"] == 2


def test_the_learning_rate_is_chosen_on_validation_only(micro_run):
    out, results, _, _ = micro_run
    for role in ("teacher", "student"):
        selection = results["selection"][role]
        scores = {float(lr): acc for lr, acc in selection["validation_accuracy"].items()}
        assert results["lr"][role] == selection["chosen"] == max(scores, key=lambda lr: (scores[lr], -lr))
        assert "test" not in json.dumps(selection)


def test_saved_predictions_and_ledger_rows_reproduce_the_summary(micro_run):
    _, results, _, _ = micro_run
    labels = decode_classes(results["test_labels"])
    assert len(labels) == results["sizes"]["test"] == 40
    assert results["majority_class"]["test"] == stats.majority_class_accuracy(labels)
    rows = {r["name"]: r for r in results["ledger"]}
    for role, variants in results["runs"].items():
        for name, runs in variants.items():
            for run in runs:
                assert np.mean(decode_classes(run["test_predictions"]) == labels) == pytest.approx(run["test_accuracy"])
            assert rows[f"{role} {name}"]["accuracy"]["per_seed"] == [r["test_accuracy"] for r in runs]
            assert rows[f"{role} {name}"]["bytes"] == runs[0]["ledger"]["bytes"]
    teacher = rows["teacher fp32"]
    assert rows["teacher int8"]["bytes"] < teacher["bytes"] / 3  # int8 linear layers and word table
    assert rows["teacher pruned 75%"]["nonzero_parameters"] < rows["teacher pruned 50%"]["nonzero_parameters"]
    assert rows["teacher 4-bit"]["multiply_adds"] == teacher["multiply_adds"]
    assert rows["teacher low-rank FFN r=4"]["multiply_adds"] < teacher["multiply_adds"]
    assert rows["teacher shared layers (1 group) + FT"]["multiply_adds"] == teacher["multiply_adds"]  # sharing saves bytes only
    assert 0.0 <= results["runs"]["teacher"]["4-bit"][0]["max_logit_difference_fake_vs_stored"] < 1e-4


def test_claims_are_computed_from_the_per_seed_numbers(micro_run):
    _, results, _, _ = micro_run
    accuracies = lambda role, name: [r["test_accuracy"] for r in results["runs"][role][name]]  # noqa: E731
    points = [(r["name"], r["stored_bytes"], r["accuracy"]["mean"]) for r in results["ledger"]]
    assert results["frontier"] == pareto_front(points)
    keys = {c["key"] for c in results["claims"]}
    assert {f"loses_less_{paths.slug(v['name'])}" for v in results["variants"] if v["name"] != "fp32"} <= keys
    for made in results["claims"]:
        if made["key"].startswith("loses_less_"):
            variant = made["a"].removeprefix("teacher + ")
            change = {role: np.subtract(accuracies(role, variant), accuracies(role, "fp32")) for role in ("teacher", "student")}
            expected = stats.paired_difference(change["teacher"], change["student"])
        else:
            a, b = (name.rsplit(" (", 1)[0].split(" ", 1) for name in (made["a"], made["b"]))
            expected = stats.paired_difference(accuracies(*a), accuracies(*b))
        assert made["difference"] == expected.as_dict()
        assert made["holds"] == (expected.ci_low > 0)
    recomputed = compress_report.summarise(results)
    assert recomputed["claims"] == results["claims"]


def test_rerun_recomputes_nothing_and_report_only_reproduces_the_report(micro_run):
    out, first, second, third = micro_run
    assert second["runs"] == first["runs"] and second["latency"] == first["latency"]
    assert second["bases"] == first["bases"]
    assert len(second["invocations"]) == 2 and second["invocations"][0] == first["invocations"][0]
    assert second["invocations"][1]["wall_seconds"] < first["invocations"][0]["wall_seconds"] / 2
    assert third["claims"] == second["claims"] and third["invocations"] == second["invocations"]
    assert "Train large, then compress" in (out / "results.md").read_text()
