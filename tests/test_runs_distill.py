"""The distillation reference run end to end on a micro profile (about a minute on a CPU): every file it
promises, the table and claims computed from the per-seed numbers and the saved predictions, a rerun
that computes nothing, and --report-only."""

import json
from dataclasses import replace

import numpy as np
import pytest

from compresslib import stats
from compresslib.runs import distill
from compresslib.runs.common import decode_classes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("distill")
    micro = replace(distill.PROFILES["quick"], name="micro", teacher_train=32, student_train=16, val_size=16,
                    test_size=40, max_length=16, seeds=(0, 1), curve_points=1, timing_batches=1, eval_batch_size=40)
    patched = pytest.MonkeyPatch()
    patched.setitem(distill.PROFILES, "micro", micro)
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
    out, _, _, _ = micro_run
    for name in ("results.json", "results.md", "accuracy.png", "learning_curves.png"):
        assert (out / name).stat().st_size > 0 and (out / "micro" / name).stat().st_size > 0
    for part in ("teacher.json", "teacher/config.json", "teacher_outputs.pt", "timing.json",
                 "students/layer_skip_init_kd_hidden__seed1.json"):
        assert (out / "micro" / part).exists(), part


def test_saved_predictions_reproduce_each_accuracy(micro_run):
    _, results, _, _ = micro_run
    labels = decode_classes(results["test_labels"])
    assert len(labels) == results["sizes"]["test"] == 40
    assert results["majority_class"]["test"] == stats.majority_class_accuracy(labels)
    for arm in results["students"].values():
        for run in arm["runs"]:
            assert np.mean(decode_classes(run["test_predictions"]) == labels) == pytest.approx(run["test_accuracy"])


def test_table_and_claims_are_computed_from_the_per_seed_numbers(micro_run):
    _, results, _, _ = micro_run
    teacher, floor = results["teacher"]["test_accuracy"], results["majority_class"]["test"]
    for row in results["table"][1:]:
        accuracies = results["students"][row["model"]]["test_accuracy"]
        assert row["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
        assert row["retention"]["of_teacher"] == pytest.approx(np.mean(accuracies) / teacher)
        if teacher > floor:
            assert row["retention"]["of_gain"] == pytest.approx((np.mean(accuracies) - floor) / (teacher - floor))
    claims = {c["key"]: c for c in results["claims"]}
    assert set(claims) == set(distill.COMPARISONS)
    labels = decode_classes(results["test_labels"])
    for key, (a, b) in distill.COMPARISONS.items():
        claim = claims[key]
        expected = stats.paired_difference(results["students"][a]["test_accuracy"], results["students"][b]["test_accuracy"])
        assert claim["difference"] == expected.as_dict()
        assert claim["holds"] == (expected.ci_low > 0)
        assert claim["sentence"].startswith(f"{a} beats {b}" if claim["holds"] else f"{a} does not beat {b}")
        pooled = [stats.pool_seeds([decode_classes(r["test_predictions"]) for r in results["students"][arm]["runs"]],
                                   labels) for arm in (a, b)]
        assert claim["mcnemar"] == stats.mcnemar(*pooled).as_dict() and claim["mcnemar"]["n"] == 80


def test_rerun_recomputes_nothing_and_report_only_reproduces_the_report(micro_run):
    out, first, second, third = micro_run
    assert second["students"] == first["students"] and second["teacher"] == first["teacher"]
    assert second["timing"] == first["timing"]
    assert len(second["invocations"]) == 2 and second["invocations"][0] == first["invocations"][0]
    assert second["invocations"][1]["wall_seconds"] < first["invocations"][0]["wall_seconds"]
    assert third["claims"] == second["claims"] and third["invocations"] == second["invocations"]
    assert "Claims, paired by seed:" in (out / "results.md").read_text()
