"""The tickets reference run end to end on a micro profile (a minute or two on a CPU): every file it promises,
the summary and the claims recomputed from the per-seed numbers and the saved per-example predictions, the
budgets of the rewinding table, the tuning on validation data, and a rerun that computes nothing."""

import json
from dataclasses import replace

import numpy as np
import pytest

from compresslib.runs import tickets
from compresslib.runs.common import decode_binary


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tickets")
    micro = replace(tickets.PROFILES["quick"], name="micro", train_examples=48, eval_examples=40, max_length=16,
                    step_grid=(4, 6), lrs=(1e-3,), tune_seeds=(100,), seeds=(0, 1), rounds=2, fraction=0.5, baseline_rounds=(2,),
                    rewind_fractions=(0.5,), rewind_rounds=1, eval_batch_size=64, timing_sparsities=(0.9,),
                    timing_examples=16, importance_examples=16)
    patched = pytest.MonkeyPatch()
    patched.setitem(tickets.PROFILES, "micro", micro)
    try:
        assert tickets.main(["--profile", "micro", "--out", str(out)]) == 0
        first = json.loads((out / "results.json").read_text())
        assert tickets.main(["--profile", "micro", "--out", str(out)]) == 0
        second = json.loads((out / "results.json").read_text())
    finally:
        patched.undo()
    return out, first, second


def test_every_promised_file_is_written(micro_run):
    out, _, _ = micro_run
    for name in ("results.json", "results.md", "accuracy_vs_sparsity.png", "layer_sparsity.png"):
        assert (out / name).stat().st_size > 0 and (out / "micro" / name).stat().st_size > 0
    assert (out / "micro" / "seed0" / "imp" / "round_02" / "mask.safetensors").exists()
    assert (out / "micro" / "seed1" / "rp_round02.json").exists()
    assert not (out / "micro" / "seed1" / "rp_round01.json").exists()  # baselines at round 2 only
    assert len(list((out / "micro" / "tuning").glob("*.json"))) == 2


def accuracy_of(results, predictions):
    n = results["test_examples"]
    return float((decode_binary(predictions, n) == decode_binary(results["test_labels"], n)).mean())


def test_accuracies_are_those_of_the_saved_predictions_on_the_whole_test_split(micro_run):
    _, results, _ = micro_run
    assert results["test_examples"] == 40
    arms = [results["full"], results["dense_reinit"], *results["rewinding"].values()]
    arms += [arm for level in results["levels"].values() for key, arm in level.items() if key != "round"]
    for arm in arms:
        assert len(arm["accuracy"]) == 2
        assert arm["accuracy"] == [pytest.approx(accuracy_of(results, p)) for p in arm["predictions"]]
    labels = decode_binary(results["test_labels"], 40)
    assert results["majority_class"] == pytest.approx(max(labels.mean(), 1 - labels.mean()))


def test_summary_and_claims_are_computed_from_the_per_seed_numbers(micro_run):
    _, results, _ = micro_run
    full = results["full"]["accuracy"]
    assert results["full_summary"]["mean"] == pytest.approx(np.mean(full))
    assert [round(float(s), 2) for s in results["levels"]] == [0.5, 0.75]  # 50% of the remaining per round
    first, sparsity = list(results["levels"])  # baselines at the last round only (baseline_rounds)
    assert set(results["levels"][first]) == {"round", "imp"} and first not in results["curves"]["rp"]
    level = results["levels"][sparsity]
    assert set(level) == {"round", "imp", "rp", "reinit", "shuffled", "imp_fresh_classifier"}
    assert results["curves"]["rp"][sparsity]["mean"] == pytest.approx(np.mean(level["rp"]["accuracy"]))
    claim = next(c for c in results["claims"] if c["key"] == f"imp_beats_rp_at_{sparsity}")
    assert claim["difference"]["mean"] == pytest.approx(np.mean(np.subtract(level["imp"]["accuracy"],
                                                                            level["rp"]["accuracy"])))
    assert claim["holds"] == (claim["difference"]["ci_low"] > 0)
    n = results["test_examples"]
    labels = decode_binary(results["test_labels"], n)
    right = {m: np.concatenate([decode_binary(p, n) == labels for p in level[m]["predictions"]]) for m in ("imp", "rp")}
    assert claim["mcnemar"]["only_a"] == int((right["imp"] & ~right["rp"]).sum())
    assert claim["mcnemar"]["only_b"] == int((~right["imp"] & right["rp"]).sum())
    keys = {c["key"] for c in results["claims"]}
    assert {"full_beats_majority", "dense_reinit_beats_majority", "full_beats_dense_reinit"} <= keys
    ticket = results["ticket"]["sparsity"]
    assert ticket is None or results["curves"]["imp"][str(ticket)]["mean"] >= \
        results["full_summary"]["mean"] - results["full_summary"]["std"] - 1e-12


def test_hyper_parameters_are_chosen_on_validation_and_rewinding_has_equal_budgets(micro_run):
    _, results, _ = micro_run
    tuning = results["tuning"]
    best = max(tuning["grid"], key=lambda g: (g["validation_accuracy"]["mean"], -g["steps"], -g["lr"]))
    assert (results["lr"], results["train_steps_per_fine_tune"]) == (best["lr"], best["steps"])
    assert "test" not in json.dumps(tuning["grid"])
    steps = results["train_steps_per_fine_tune"]
    rewinding = results["rewinding"]
    assert set(rewinding) == {"rewind 0%", "rewind 50%", "standard pruning"}
    assert rewinding["rewind 50%"]["steps_per_round"] == steps - round(0.5 * steps)  # the rest of the schedule
    assert rewinding["rewind 0%"]["steps_per_round"] == rewinding["standard pruning"]["steps_per_round"] == steps
    assert len({round(row["sparsity"], 6) for row in rewinding.values()}) == 1


def test_inference_costs_time_every_model_interleaved(micro_run):
    _, results, _ = micro_run
    models = results["inference_costs"]["models"]
    assert models["dense"]["speedup"] == pytest.approx(1.0)
    head_pruned = next(row for row in models.values() if row["kind"] == "structured")
    assert head_pruned["heads"] == models["dense"]["heads"] // 2
    csr = next(row for row in models.values() if row["kind"] == "unstructured, CSR kernels")
    assert csr["bytes"] < models["dense"]["bytes"] and csr["sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert all(row["time_s"] > 0 for row in models.values())


def test_report_names_the_majority_class_and_every_comparison(micro_run):
    out, results, _ = micro_run
    text = (out / "results.md").read_text()
    assert "majority class" in text and "McNemar" in text and "What the evidence shows" in text
    assert f"{100 * results['majority_class']:.1f}%" in text


def test_rerun_recomputes_nothing_and_keeps_the_first_time_on_record(micro_run):
    _, first, second = micro_run
    assert second["levels"] == first["levels"] and second["inference_costs"] == first["inference_costs"]
    assert len(second["invocations"]) == 2
    assert second["invocations"][0] == first["invocations"][0]
    assert second["invocations"][1]["wall_seconds"] < first["invocations"][0]["wall_seconds"]
