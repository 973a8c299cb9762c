"""The distillation reference run end to end on a micro profile (under a minute on a quiet CPU): every file it
promises, the reference teacher and the temperature chosen on validation data only, students made from the
pre-trained model, the table and claims computed from the per-seed numbers and the saved predictions, a rerun
that computes nothing, and --report-only."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from compresslib import stats
from compresslib.models import load_classifier
from compresslib.runs import distill
from compresslib.runs.common import decode_classes

pytestmark = pytest.mark.slow

MICRO = replace(distill.PROFILES["quick"], name="micro", train_size=32, val_size=16, test_size=40, max_length=16,
                batch_size=8, eval_batch_size=40, teacher_seeds=(0, 1, 2), label_budgets=("8", "all"),
                temperatures=(1.0, 3.0), alphas=(0.3, 0.7), sweep_budget="8", sweep_seeds=(0,), seeds=(0, 1), headline_budgets=("8",),
                other_seeds=(0, 1), timing_batches=1)


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("distill")
    patched = pytest.MonkeyPatch()
    patched.setitem(distill.PROFILES, "micro", MICRO)
    argv = ["--profile", "micro", "--out", str(out), "--threads", "1"]
    assert distill.main(argv) == 0
    first = json.loads((out / "results.json").read_text())
    assert distill.main(argv) == 0
    second = json.loads((out / "results.json").read_text())
    assert distill.main([*argv, "--report-only"]) == 0
    third = json.loads((out / "micro" / "results.json").read_text())
    patched.undo()
    return out, first, second, third


def test_every_promised_file_is_written(micro_run):
    out, results, _, _ = micro_run
    for name in ("results.json", "results.md", "accuracy_vs_labels.png", "layer_choice.png"):
        assert (out / name).stat().st_size > 0 and (out / "micro" / name).stat().st_size > 0
    parts = ["teachers/seed0.json", "teachers/seed2/config.json", "teacher/config.json", "teacher_outputs.pt",
             "timing.json", "students/every_other_8_labels__seed1.json",
             "students/random_layers_all_labels__seed1.json"]
    for part in parts:
        assert (out / "micro" / part).exists(), part
    t = results["temperature"]
    assert (out / "micro" / "students" / f"every_other_soft_targets_only_t_{t:g}__seed1.json").exists()


def test_the_reference_teacher_is_the_median_by_validation_accuracy(micro_run):
    out, results, _, _ = micro_run
    teachers = results["teachers"]
    assert [t["seed"] for t in teachers] == [0, 1, 2]
    ranked = sorted(teachers, key=lambda t: (t["validation_accuracy"], t["seed"]))
    assert results["reference_teacher_seed"] == ranked[1]["seed"]
    assert (out / "micro" / "teacher" / "reference_teacher_seed.txt").read_text().strip() == str(ranked[1]["seed"])
    assert results["teacher_summary"]["test"]["per_seed"] == [t["test_accuracy"] for t in teachers]


def test_temperature_and_alpha_are_chosen_on_validation_and_used_by_every_soft_arm(micro_run):
    _, results, _, _ = micro_run
    sweep = results["sweep"]
    pairs = sorted((e["temperature"], e["alpha"]) for e in sweep.values())
    assert pairs == [(1.0, 0.3), (1.0, 0.7), (3.0, 0.3), (3.0, 0.7)]
    score = {(e["temperature"], e["alpha"]): np.mean(e["validation_accuracy"]) for e in sweep.values()}
    best = max(pairs, key=lambda pair: score[pair])  # the first best in (T, alpha) order
    assert (results["temperature"], results["alpha"]) == best
    assert all("validation_accuracy" in r for e in sweep.values() for r in e["runs"])
    for entry in results["students"].values():
        arm = entry["arm"]
        assert arm["temperature"] == (None if arm["loss"] == "hard" else best[0])
        assert arm["alpha"] == {"hard": None, "kd": best[1], "soft": 0.0}[arm["loss"]]


def test_arms_read_what_they_are_given(micro_run):
    _, results, _, _ = micro_run
    n, steps = results["sizes"]["train"], results["students"]["every other, 8 labels"]["runs"][0]["steps"]
    assert steps == 4  # student_steps None: one pass over the 32-snippet transfer set in batches of 8
    for entry in results["students"].values():
        arm = entry["arm"]
        for run in entry["runs"]:
            assert run["steps"] == steps
            expected_labels = {"8": 8, "all": n, "0": 0}[arm["labels"]]
            assert run["labels"] == expected_labels and run["labels_read"] == min(expected_labels, steps * 8)
            assert run["transfer_read"] == (0 if arm["loss"] == "hard" else n)
            assert run["layers"] == {"every other": [0, 2, 4], "first half": [0, 1, 2], "random layers": None}[arm["init"]]


def test_saved_predictions_reproduce_each_accuracy(micro_run):
    _, results, _, _ = micro_run
    labels = decode_classes(results["test_labels"])
    assert len(labels) == results["sizes"]["test"] == 40
    assert results["majority_class"]["test"] == stats.majority_class_accuracy(labels)
    runs = [r for e in results["students"].values() for r in e["runs"]] + results["teachers"]
    for run in runs:
        assert np.mean(decode_classes(run["test_predictions"]) == labels) == pytest.approx(run["test_accuracy"])


def test_table_and_claims_are_computed_from_the_per_seed_numbers(micro_run):
    _, results, _, _ = micro_run
    teacher = next(t for t in results["teachers"] if t["seed"] == results["reference_teacher_seed"])["test_accuracy"]
    floor = results["majority_class"]["test"]
    for row in results["table"][1:]:
        accuracies = results["students"][row["model"]]["test_accuracy"]
        assert row["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
        assert row["retention"]["of_teacher"] == pytest.approx(np.mean(accuracies) / teacher)
        if teacher > floor:
            assert row["retention"]["of_gain"] == pytest.approx((np.mean(accuracies) - floor) / (teacher - floor))
    claims = {c["key"]: c for c in results["claims"]}
    assert {"kd_beats_hard_8", "kd_beats_hard_all", "soft_only_beats_hard_8", "kd_beats_soft_only_8",
            "every_other_beats_first_half", "every_other_beats_random_layers", "first_half_beats_random_layers",
            "kd_gain_larger_at_8_than_all"} == set(claims)
    labels = decode_classes(results["test_labels"])
    for key, claim in claims.items():
        if key.startswith("kd_gain"):
            continue
        a, b = (results["students"][claim[side]] for side in ("a", "b"))
        seeds = [s for s in a["seeds"] if s in b["seeds"]]
        assert claim["seeds"] == seeds
        pick = lambda arm: [arm["runs"][arm["seeds"].index(s)] for s in seeds]  # noqa: E731
        expected = stats.paired_difference([r["test_accuracy"] for r in pick(a)], [r["test_accuracy"] for r in pick(b)])
        assert claim["difference"] == expected.as_dict()
        assert claim["holds"] == (expected.ci_low > 0)
        assert claim["sentence"].startswith(f"{claim['a']} beats {claim['b']}" if claim["holds"]
                                            else f"{claim['a']} does not beat {claim['b']}")
        pooled = [stats.pool_seeds([decode_classes(r["test_predictions"]) for r in pick(arm)], labels) for arm in (a, b)]
        assert claim["mcnemar"] == stats.mcnemar(*pooled).as_dict() and claim["mcnemar"]["n"] == 40 * len(seeds)
    gain = claims["kd_gain_larger_at_8_than_all"]
    low, high = distill.kd_gain(results, "8"), distill.kd_gain(results, "all")
    assert gain["difference"] == stats.paired_difference([low[s] for s in (0, 1)], [high[s] for s in (0, 1)]).as_dict()


def test_the_report_says_what_does_not_hold(micro_run):
    out, results, _, _ = micro_run
    text = (out / "results.md").read_text()
    for claim in results["claims"]:
        assert claim["sentence"] in text
        if claim["holds"] is False:
            assert "Does not hold" in claim["sentence"]
    assert "What the evidence shows:" in text and "What was cut to fit the budget" in text


def test_students_start_from_the_pretrained_model_not_the_teacher():
    pretrained = load_classifier(seed=0)
    layers = pretrained.bert.encoder.layer
    for init, kept in (("every other", [0, 2, 4]), ("first half", [0, 1, 2])):
        student = distill.make_student(init, 0, MICRO, torch.device("cpu"))
        for i, t in enumerate(kept):
            assert torch.equal(student.bert.encoder.layer[i].output.dense.weight, layers[t].output.dense.weight)
    student = distill.make_student("random layers", 0, MICRO, torch.device("cpu"))
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, pretrained.bert.embeddings.word_embeddings.weight)
    assert not student.bert.embeddings.word_embeddings.weight.requires_grad  # frozen in every arm alike
    assert all(not torch.equal(student.bert.encoder.layer[0].output.dense.weight, layer.output.dense.weight)
               for layer in layers)


def test_rerun_recomputes_nothing_and_report_only_reproduces_the_report(micro_run):
    out, first, second, third = micro_run
    assert second["students"] == first["students"] and second["teachers"] == first["teachers"]
    assert second["timing"] == first["timing"] and second["sweep"] == first["sweep"]
    assert len(second["invocations"]) == 2 and second["invocations"][0] == first["invocations"][0]
    assert second["invocations"][1]["wall_seconds"] < first["invocations"][0]["wall_seconds"]
    assert third["claims"] == second["claims"] and third["invocations"] == second["invocations"]
    assert "Claims, each paired by seed" in (out / "results.md").read_text()
