"""Claims: computed from the per-seed numbers by compresslib.stats, with the sentence matching the numbers."""

import json

import numpy as np
import pytest

from compresslib import stats
from compresslib.runs.claims import Criterion, compare, format_p

KD = [0.786750316619873, 0.7753822207450867, 0.780870258808136]      # docs/results/distill, seeds 0-2
HARD = [0.7804782390594482, 0.773030161857605, 0.7828302383422852]


def test_a_claim_that_does_not_hold_says_so_with_its_numbers():
    """The landed KD-vs-hard comparison: +0.2 points, CI across zero, so 'does not beat'."""
    claim = compare("kd_beats_hard", "KD", KD, "hard labels", HARD)
    d = stats.paired_difference(KD, HARD)
    assert claim.holds is False
    assert claim.difference == d.as_dict()
    assert claim.sentence.startswith("KD does not beat hard labels: +0.2 points of test accuracy (95% CI ")
    assert f"{100 * d.ci_low:+.1f} to {100 * d.ci_high:+.1f}" in claim.sentence
    assert f"paired t-test p = {d.p_value:.2g}; 3 seeds" in claim.sentence
    assert "Does not hold: the criterion is that the 95% CI of the paired difference lies above 0." in claim.sentence


def test_a_claim_that_holds():
    claim = compare("b", "layer-skip", [0.78, 0.77, 0.785, 0.79, 0.775], "random", [0.58, 0.578, 0.58, 0.579, 0.58])
    assert claim.holds is True
    assert claim.sentence.startswith("layer-skip beats random: +20.1 points")
    assert "paired t-test p < 0.001; 5 seeds). Holds:" in claim.sentence


def test_the_margin_decides():
    """A +0.5-point gain with a CI of about +-0.3 beats 0 but not a required +1 point; it passes non-inferiority at -1."""
    a, b = [0.805, 0.806, 0.804, 0.805], [0.8, 0.8, 0.8, 0.8]
    assert compare("x", "A", a, "B", b).holds is True
    assert compare("x", "A", a, "B", b, criterion=Criterion(margin=0.01)).holds is False
    claim = compare("x", "A", b, "B", a, verb="is at least as good as", criterion=Criterion(margin=-0.01))
    assert claim.holds is True and claim.sentence.startswith("A is at least as good as B: -0.5 points")
    assert claim.sentence.endswith("Holds: the 95% CI of the paired difference lies above -1.0 points.")


def test_one_seed_is_not_tested():
    claim = compare("x", "KD", [0.79], "hard", [0.78])
    assert claim.holds is None
    assert "with one seed there is no confidence interval" in claim.sentence and "+1.0 points" in claim.sentence


def test_mcnemar_enters_when_per_example_predictions_exist():
    labels = np.array([0, 1] * 50)
    preds_a = [labels.copy(), labels.copy()]
    preds_b = [np.where(np.arange(100) < 10, 1 - labels, labels), np.where(np.arange(100) < 12, 1 - labels, labels)]
    claim = compare("x", "A", [1.0, 1.0], "B", [0.9, 0.88], correct_a=stats.pool_seeds(preds_a, labels),
                    correct_b=stats.pool_seeds(preds_b, labels))
    assert claim.mcnemar["only_a"] == 22 and claim.mcnemar["only_b"] == 0
    assert "McNemar exact p < 0.001 on 200 pooled predictions, 22 right only for A, 0 only for B" in claim.sentence
    with pytest.raises(ValueError, match="both arms"):
        compare("x", "A", [1.0], "B", [0.9], correct_a=[1, 0])


def test_claims_are_plain_json():
    claim = compare("kd_beats_hard", "KD", KD, "hard labels", HARD)
    assert json.loads(json.dumps(claim.as_dict())) == claim.as_dict()


def test_bad_criteria_and_verbs_are_refused():
    with pytest.raises(ValueError, match="confidence"):
        Criterion(confidence=1.0)
    with pytest.raises(ValueError, match="verb must be one of"):
        compare("x", "A", [1.0], "B", [0.9], verb="crushes")


def test_p_values_are_shown_to_two_significant_digits():
    assert format_p(0.00031) == "p < 0.001" and format_p(0.0031) == "p = 0.0031" and format_p(0.4512) == "p = 0.45"
