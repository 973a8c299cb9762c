"""compresslib.stats against printed tables, closed forms, textbook examples and (where installed) scipy."""

import math

import numpy as np
import pytest

from compresslib import stats

# The per-seed test accuracies of the distillation run the issue read (docs/results/distill/results.json as
# landed before the redesign, commit 4129209: `git show 4129209:docs/results/distill/results.json`).
LANDED_DISTILL = {
    "teacher": 0.7969423532485962,
    "students": {
        "random init + hard labels": [0.5778126120567322, 0.5778126120567322, 0.5778126120567322],
        "layer-skip init + hard labels": [0.7804782390594482, 0.773030161857605, 0.7828302383422852],
        "layer-skip init + KD": [0.786750316619873, 0.7753822207450867, 0.780870258808136],
        "layer-skip init + KD + hidden": [0.7910623550415039, 0.7753822207450867, 0.7793022394180298],
    },
}


# --- the t distribution -------------------------------------------------------------------------


@pytest.mark.parametrize("df, two_sided_95", [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571),
                                              (9, 2.262), (10, 2.228), (29, 2.045), (30, 2.042), (120, 1.980)])
def test_t_quantile_matches_the_printed_table(df, two_sided_95):
    """Does t_{0.975, df} match a t table to its three printed decimals?"""
    assert stats.t_quantile(0.975, df) == pytest.approx(two_sided_95, abs=5e-4)


def test_other_table_columns_and_the_normal_limit():
    """One-sided 95% at 10 df, 99.5% at 4 df; a huge df gives the normal quantile."""
    assert stats.t_quantile(0.95, 10) == pytest.approx(1.812, abs=5e-4)
    assert stats.t_quantile(0.995, 4) == pytest.approx(4.604, abs=5e-4)
    assert stats.t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)
    assert stats.t_quantile(0.025, 7) == pytest.approx(-stats.t_quantile(0.975, 7), abs=1e-12)


@pytest.mark.parametrize("t", [-30.0, -2.5, -0.3, 0.0, 0.7, 1.96, 12.706, 400.0])
def test_t_cdf_matches_the_closed_forms_at_one_and_two_degrees_of_freedom(t):
    """df = 1 is the Cauchy distribution, 1/2 + atan(t)/pi; df = 2 has F(t) = 1/2 + t / (2 sqrt(2 + t^2))."""
    assert stats.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-13)
    assert stats.t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-13)


def test_t_quantile_inverts_t_cdf():
    for df in (1, 2.5, 4, 17, 300):
        for p in (0.001, 0.2, 0.5, 0.9, 0.9999):
            assert stats.t_cdf(stats.t_quantile(p, df), df) == pytest.approx(p, abs=1e-12)


def test_incomplete_beta_closed_forms():
    """I_x(a, 1) = x^a, I_x(1, b) = 1 - (1-x)^b, I_x(a, b) = 1 - I_{1-x}(b, a)."""
    for x in (0.01, 0.3, 0.5, 0.77, 0.999):
        assert stats.regularized_incomplete_beta(x, 2.5, 1) == pytest.approx(x**2.5, abs=1e-14)
        assert stats.regularized_incomplete_beta(x, 1, 3.5) == pytest.approx(1 - (1 - x) ** 3.5, abs=1e-14)
        assert stats.regularized_incomplete_beta(x, 4, 7) == pytest.approx(
            1 - stats.regularized_incomplete_beta(1 - x, 7, 4), abs=1e-14)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True])
def test_bad_degrees_of_freedom_are_refused(bad):
    with pytest.raises(ValueError, match="degrees of freedom"):
        stats.t_cdf(1.0, bad)


# --- paired differences -------------------------------------------------------------------------

# Student's sleep data (Cushny & Peebles), extra hours of sleep of 10 patients under two drugs; R's
# t.test(extra ~ group, data = sleep, paired = TRUE) prints t = -4.0621, df = 9, p-value = 0.002833,
# 95 percent confidence interval -2.4598858 -0.7001142, mean difference -1.58 (group 1 minus group 2).
SLEEP_DRUG_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_DRUG_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_paired_difference_reproduces_the_textbook_sleep_example():
    d = stats.paired_difference(SLEEP_DRUG_2, SLEEP_DRUG_1)
    assert d.n == 10 and d.mean == pytest.approx(1.58)
    assert d.t == pytest.approx(4.0621, abs=5e-5)
    assert d.p_value == pytest.approx(0.002833, abs=5e-7)
    assert (d.ci_low, d.ci_high) == (pytest.approx(0.7001142, abs=5e-8), pytest.approx(2.4598858, abs=5e-8))


def test_paired_difference_is_not_the_unpaired_one():
    """Pairing removes the patient-to-patient spread: the unpaired (Welch) test of the same numbers has p ~ 0.079."""
    d = stats.paired_difference(SLEEP_DRUG_2, SLEEP_DRUG_1)
    a, b = np.array(SLEEP_DRUG_2), np.array(SLEEP_DRUG_1)
    unpaired_se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert d.standard_error < unpaired_se / 2
    swapped = stats.paired_difference(SLEEP_DRUG_1, SLEEP_DRUG_2)
    assert swapped.mean == pytest.approx(-d.mean) and swapped.p_value == pytest.approx(d.p_value)
    assert (swapped.ci_low, swapped.ci_high) == (pytest.approx(-d.ci_high), pytest.approx(-d.ci_low))


def test_kd_versus_hard_labels_in_the_landed_cpu_run_is_the_issues_t_of_0_93():
    """The issue's reading of docs/results/distill: paired diffs +0.63, +0.24, -0.20 points, t = 0.93."""
    students = LANDED_DISTILL["students"]
    d = stats.paired_difference(students["layer-skip init + KD"], students["layer-skip init + hard labels"])
    assert [round(100 * x, 2) for x in d.differences] == [0.63, 0.24, -0.2]
    assert d.t == pytest.approx(0.93, abs=0.005)
    assert d.ci_low < 0 < d.ci_high and d.p_value > 0.4


def test_constant_differences_and_a_single_seed():
    same = stats.paired_difference([0.6, 0.7], [0.5, 0.6])
    assert (same.ci_low, same.ci_high, same.p_value) == (pytest.approx(0.1), pytest.approx(0.1), 0.0)
    assert math.isinf(same.t)
    tie = stats.paired_difference([0.5, 0.5], [0.5, 0.5])
    assert tie.p_value == 1.0 and tie.t == 0.0
    one = stats.paired_difference([0.8], [0.7])
    assert one.mean == pytest.approx(0.1) and one.std is None and one.ci_low is None and one.p_value is None


def test_paired_difference_refuses_unpaired_input():
    with pytest.raises(ValueError, match="same seed order"):
        stats.paired_difference([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="confidence"):
        stats.paired_difference([0.1, 0.2], [0.1, 0.3], confidence=95)
    with pytest.raises(ValueError, match="NaN"):
        stats.paired_difference([0.1, float("nan")], [0.1, 0.3])


def test_summary_mean_and_sample_std():
    s = stats.summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert s.mean == 5.0 and s.std == pytest.approx(math.sqrt(32 / 7)) and s.n == 8
    assert stats.summarize([0.7]).std is None
    assert stats.sample_std([1.0, 3.0]) == pytest.approx(math.sqrt(2))
    with pytest.raises(ValueError, match="at least 2"):
        stats.sample_std([1.0])


# --- McNemar --------------------------------------------------------------------------------------


def _table_as_arrays(both, only_a, only_b, neither):
    a = [1] * both + [1] * only_a + [0] * only_b + [0] * neither
    b = [1] * both + [0] * only_a + [1] * only_b + [0] * neither
    return np.array(a), np.array(b)


def test_mcnemar_on_the_published_drug_example():
    """314 patients before/after a drug (the standard textbook table 101, 121 / 59, 33): uncorrected
    chi-square (121-59)^2/180 = 21.35; with Edwards' correction 20.672222, p = 0.000005."""
    result = stats.mcnemar(*_table_as_arrays(101, 121, 59, 33))
    assert (result.n, result.only_a, result.only_b) == (314, 121, 59)
    assert (121 - 59) ** 2 / (121 + 59) == pytest.approx(21.35, abs=0.01)
    assert result.chi2 == pytest.approx(20.672222, abs=1e-6)
    assert result.p_chi2 == pytest.approx(5.5e-6, abs=0.5e-6)
    assert result.p_exact < 1e-5


def test_mcnemar_exact_on_the_bentur_example():
    """Fagerland et al. 2013, Table 1 (airway hyper-responsiveness in 21 children): 1 and 7 discordant
    pairs; exact conditional p = 2 * (1 + 8) / 2^8 = 0.0703, corrected chi-square (6-1)^2/8 = 3.125."""
    result = stats.mcnemar(*_table_as_arrays(1, 1, 7, 12))
    assert result.p_exact == pytest.approx(18 / 256) and round(result.p_exact, 3) == 0.070
    assert result.chi2 == pytest.approx(3.125)
    assert result.p_chi2 == pytest.approx(math.erfc(math.sqrt(3.125 / 2)))


def test_mcnemar_ignores_concordant_examples_and_is_symmetric():
    few = stats.mcnemar(*_table_as_arrays(3, 2, 8, 1))
    many = stats.mcnemar(*_table_as_arrays(300, 2, 8, 100))
    assert few.p_exact == many.p_exact and few.chi2 == many.chi2
    swapped = stats.mcnemar(*reversed(_table_as_arrays(3, 2, 8, 1)))
    assert (swapped.only_a, swapped.only_b, swapped.p_exact) == (8, 2, few.p_exact)


def test_mcnemar_with_no_discordant_example():
    result = stats.mcnemar([1, 0, 1], [1, 0, 1])
    assert result.p_exact == 1.0 and result.chi2 is None and result.p_chi2 is None


def test_exact_binomial_p_against_hand_sums():
    assert stats.binomial_two_sided_p(0, 5) == pytest.approx(2 / 32)
    assert stats.binomial_two_sided_p(2, 10) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert stats.binomial_two_sided_p(5, 10) == 1.0


def test_mcnemar_refuses_mismatched_or_non_binary_input():
    with pytest.raises(ValueError, match="same examples"):
        stats.mcnemar([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="0/1"):
        stats.mcnemar([1, 2, 1], [1, 0, 1])


def test_pool_seeds_pairs_each_seed_and_example():
    labels = np.array([0, 1, 1, 0])
    a = stats.pool_seeds([[0, 1, 1, 1], [0, 1, 0, 0]], labels)
    assert a.tolist() == [True, True, True, False, True, True, False, True]
    b = stats.pool_seeds([[1, 1, 1, 1], [1, 1, 1, 1]], labels)
    result = stats.mcnemar(a, b)
    assert result.n == 8 and (result.only_a, result.only_b) == (3, 1)


# --- one accuracy ---------------------------------------------------------------------------------


def test_standard_error_of_one_accuracy_is_the_issues_0_82_points():
    assert 100 * stats.accuracy_standard_error(0.78, 2551) == pytest.approx(0.82, abs=0.005)
    assert 100 * stats.accuracy_standard_error(0.78, 512) == pytest.approx(1.83, abs=0.005)
    with pytest.raises(ValueError, match="positive integer"):
        stats.accuracy_standard_error(0.5, 0)


def test_wilson_interval_solves_its_defining_equation():
    """Both ends p solve (p_hat - p)^2 = z^2 p (1 - p) / n; at 0 successes the upper end is z^2 / (n + z^2)."""
    z = 1.959963984540054
    for p_hat, n in ((0.3, 50), (0.78, 2551), (0.95, 40)):
        low, high = stats.wilson_interval(p_hat, n)
        for p in (low, high):
            assert (p_hat - p) ** 2 == pytest.approx(z * z * p * (1 - p) / n, rel=1e-9)
        assert low < p_hat < high
    assert stats.wilson_interval(0.0, 10) == (pytest.approx(0.0, abs=1e-15), pytest.approx(z * z / (10 + z * z)))
    assert stats.wilson_interval(1.0, 10) == (pytest.approx(10 / (10 + z * z)), pytest.approx(1.0, abs=1e-15))


# --- floors and retention -------------------------------------------------------------------------


def test_majority_class_accuracy():
    assert stats.majority_class_accuracy([0, 1, 1, 1]) == 0.75
    assert stats.majority_class_accuracy(np.array([2, 2, 0, 1, 1, 2])) == 0.5
    with pytest.raises(ValueError, match="non-empty"):
        stats.majority_class_accuracy([])


def test_retention_two_ways_on_the_landed_cpu_run():
    """The issue: 98.0% of the teacher for KD, but 92.7% of the teacher's gain over the majority class
    (hard labels 91.7%, KD + hidden 93.1%). The floor is the test split's majority class, which the
    random-init student (a constant predictor here) scores exactly."""
    teacher, students = LANDED_DISTILL["teacher"], LANDED_DISTILL["students"]
    floor = students["random init + hard labels"][0]
    shares = {}
    for name in ("layer-skip init + hard labels", "layer-skip init + KD", "layer-skip init + KD + hidden"):
        r = stats.retention(stats.mean(students[name]), teacher, floor)
        shares[name] = (round(100 * r.of_teacher, 1), round(100 * r.of_gain, 1))
    assert shares == {"layer-skip init + hard labels": (97.7, 91.7), "layer-skip init + KD": (98.0, 92.7),
                      "layer-skip init + KD + hidden": (98.1, 93.1)}


def test_retention_at_the_floor_and_at_the_teacher():
    assert stats.retention(0.56, 0.8, 0.56).of_gain == 0.0
    assert stats.retention(0.8, 0.8, 0.56).of_gain == pytest.approx(1.0)
    assert stats.retention(0.56, 0.8, 0.56).of_teacher == pytest.approx(0.7)
    assert stats.retention(0.6, 0.55, 0.56).of_gain is None  # a teacher below the floor has no gain to share
    with pytest.raises(ValueError, match="accuracy in"):
        stats.retention(1.2, 0.8, 0.5)


# --- scipy as an oracle, where installed ----------------------------------------------------------


def test_against_scipy_where_installed():
    sp = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for df in (1, 2, 3, 5.5, 12, 80):
        for t in (-7.0, -1.3, 0.2, 2.0, 9.0):
            assert stats.t_cdf(t, df) == pytest.approx(sp.t.cdf(t, df), abs=1e-12)
        for p in (0.01, 0.6, 0.975, 0.9995):
            assert stats.t_quantile(p, df) == pytest.approx(sp.t.ppf(p, df), rel=1e-9)
    for _ in range(20):
        a, b = rng.normal(0.8, 0.02, 5), rng.normal(0.79, 0.02, 5)
        ours, theirs = stats.paired_difference(a, b), sp.ttest_rel(a, b)
        assert ours.t == pytest.approx(theirs.statistic) and ours.p_value == pytest.approx(theirs.pvalue)
        low, high = theirs.confidence_interval(0.95)
        assert (ours.ci_low, ours.ci_high) == (pytest.approx(low), pytest.approx(high))
    for k, n in ((0, 7), (3, 20), (40, 100), (86, 236)):
        assert stats.binomial_two_sided_p(k, n) == pytest.approx(sp.binomtest(k, n, 0.5).pvalue, rel=1e-9)
    for x in (0.0, 0.5, 3.84, 20.0):
        assert stats.chi2_one_df_survival(x) == pytest.approx(sp.chi2.sf(x, 1), abs=1e-14)
