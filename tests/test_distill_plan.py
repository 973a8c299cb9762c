"""The distillation run's plan, without training: the (T, alpha) sweep grid, the choice on validation
accuracy (ties to the smaller T, then the smaller alpha), the arms and seeds each profile runs."""

from dataclasses import replace

import pytest

from compresslib.runs import distill


def test_the_sweep_is_every_pair_of_temperatures_and_alphas():
    profile = distill.PROFILES["cpu"]
    pairs = [(arm.temperature, arm.alpha) for arm in distill.sweep_arms(profile)]
    assert pairs == [(t, a) for t in profile.temperatures for a in profile.alphas] and len(set(pairs)) == len(pairs)
    assert all(arm.loss == "kd" and arm.labels == profile.sweep_budget for arm in distill.sweep_arms(profile))


def test_the_choice_takes_the_best_mean_validation_accuracy_and_breaks_ties_low():
    def entry(t, a, accuracies):
        return {"temperature": t, "alpha": a, "validation_accuracy": accuracies}

    # exact binary fractions, so that the three means tie exactly at 0.75
    sweep = {"a": entry(4.0, 0.5, [0.5, 1.0]), "b": entry(1.0, 0.25, [0.75]), "c": entry(1.0, 0.5, [0.625, 0.875])}
    assert distill.choose_hyperparameters(sweep) == (1.0, 0.25)  # a three-way tie: the smallest T, then alpha
    sweep["d"] = entry(2.0, 0.5, [0.75, 0.875])
    assert distill.choose_hyperparameters(sweep) == (2.0, 0.5)


def test_the_cpu_profile_runs_every_arm_at_five_seeds_with_the_chosen_pair():
    profile = distill.PROFILES["cpu"]
    plan = distill.main_arms(profile, 4.0, 0.25)
    assert all(len(seeds) >= 5 for _, seeds in plan.values())
    kd = [arm for arm, _ in plan.values() if arm.loss == "kd"]
    assert {arm.labels for arm in kd} == set(profile.label_budgets)
    assert all((arm.temperature, arm.alpha) == (4.0, 0.25) for arm in kd)
    soft = [arm for arm, _ in plan.values() if arm.loss == "soft"]
    assert [(arm.temperature, arm.alpha, arm.labels) for arm in soft] == [(4.0, 0.0, "0")]
    assert {arm.init for arm, _ in plan.values()} == {"every other"}  # the layer-choice arms cut to fit
    with_layers = distill.main_arms(replace(profile, layer_arms=True), 4.0, 0.25)
    assert {arm.init for arm, _ in with_layers.values()} == set(distill.INITS)
    assert all(len(seeds) >= 5 for _, seeds in with_layers.values())


def test_without_the_extra_arms_only_the_two_curves_run():
    profile = replace(distill.PROFILES["cpu"], soft_arm=False, layer_arms=False)
    plan = distill.main_arms(profile, 2.0, 0.5)
    assert {(arm.init, arm.loss) for arm, _ in plan.values()} == {("every other", "hard"), ("every other", "kd")}


@pytest.mark.parametrize("arm, name", [
    (distill.Arm("every other", "250", "hard"), "every other, 250 labels"),
    (distill.Arm("every other", "1000", "kd", 2.0, 0.5), "every other, 1,000 labels + KD (T=2, alpha=0.5)"),
    (distill.Arm("every other", "0", "soft", 4.0, 0.0), "every other, soft targets only (T=4)"),
])
def test_arm_names_say_labels_temperature_and_alpha(arm, name):
    assert arm.name == name
