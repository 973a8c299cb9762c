"""The tickets reference run end to end on a micro profile (a minute on a CPU): every file it promises,
the criterion and comparisons computed from the per-seed numbers, and a rerun that computes nothing."""

import json
from dataclasses import replace

import pytest

from compresslib.runs import tickets


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tickets")
    micro = replace(tickets.PROFILES["quick"], name="micro", train_examples=32, eval_examples=32, max_length=16,
                    seeds=(0, 1), rewind_fractions=(0.5,), eval_batch_size=32)
    patched = pytest.MonkeyPatch()
    patched.setitem(tickets.PROFILES, "micro", micro)
    assert tickets.main(["--profile", "micro", "--out", str(out)]) == 0
    first = json.loads((out / "results.json").read_text())
    assert tickets.main(["--profile", "micro", "--out", str(out)]) == 0
    second = json.loads((out / "results.json").read_text())
    patched.undo()
    return out, first, second


def test_every_promised_file_is_written(micro_run):
    out, _, _ = micro_run
    for name in ("results.json", "results.md", "accuracy_vs_sparsity.png", "layer_sparsity.png"):
        assert (out / name).stat().st_size > 0 and (out / "micro" / name).stat().st_size > 0
    assert (out / "micro" / "seed0" / "imp" / "round_01" / "mask.safetensors").exists()
    assert (out / "micro" / "seed1" / "rp_round01.json").exists()


def test_summary_is_computed_from_the_per_seed_numbers(micro_run):
    _, results, _ = micro_run
    full = results["full"]["per_seed"]
    assert results["full"]["mean"] == pytest.approx(sum(full) / len(full))
    sparsity = next(iter(results["curves"]["imp"]))
    assert float(sparsity) == pytest.approx(0.5, abs=1e-3)
    row = results["imp_vs_baselines"][sparsity]["rp"]
    imp, rp = results["curves"]["imp"][sparsity]["mean"], results["curves"]["rp"][sparsity]["mean"]
    assert row["imp_minus"] == pytest.approx(imp - rp)
    assert row["imp_better_beyond_spread"] == (row["imp_minus"] > row["spread"])
    ticket = results["ticket"]["sparsity"]
    assert ticket is None or imp >= results["full"]["mean"] - results["full"]["std"]
    assert set(results["rewinding"]) == {"rewind 0%", "rewind 50%", "standard pruning"}
    assert 0.5 <= results["majority_class"] < 1


def test_head_pruning_removes_heads_and_times_all_three_models(micro_run):
    _, results, _ = micro_run
    heads = results["heads"]
    assert heads["head_pruned"]["heads"] == heads["full"]["heads"] // 2
    for key in ("full", "unstructured_mask", "head_pruned"):
        assert heads[key]["time_s"] > 0


def test_rerun_recomputes_nothing_and_keeps_the_first_time_on_record(micro_run):
    _, first, second = micro_run
    assert second["curves"] == first["curves"] and second["heads"] == first["heads"]
    assert len(second["invocations"]) == 2
    assert second["invocations"][0] == first["invocations"][0]
    assert second["invocations"][1]["wall_seconds"] < first["invocations"][0]["wall_seconds"]
