r"""Every statistic a claim of the kit rests on, in one place.

Notation: an *arm* is one way of training a model (e.g. "KD" or "hard labels"), run once per seed
:math:`i = 1..n`; :math:`a_i` and :math:`b_i` are the two arms' scores (accuracies as fractions) at
seed :math:`i`, trained on the same data order and evaluated on the same test set of :math:`N`
examples. Seeds are what varies between runs; the test set is what varies between examples.

* Seed-to-seed: :func:`summarize` (mean and sample standard deviation), :func:`paired_difference`
  (mean of :math:`d_i = a_i - b_i` with its Student-t confidence interval and paired t-test).
* Example-to-example: :func:`mcnemar` (exact binomial and continuity-corrected chi-square tests on
  two models' per-example correctness), :func:`pool_seeds`, :func:`accuracy_standard_error`,
  :func:`wilson_interval`.
* Against a floor: :func:`majority_class_accuracy`, :func:`retention`.

The distributions are computed here (regularised incomplete beta by Lentz's continued fraction,
binomial sums in exact integers), so the library needs no scipy; the tests compare them with
published tables and closed forms, and with scipy where it is installed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

DEFAULT_CONFIDENCE = 0.95


# ------------------------------------------------------------------------------------- argument checks


def _values(values, name: str, *, at_least: int = 1) -> np.ndarray:
    """``values`` as a 1-d float array of finite numbers with at least ``at_least`` entries."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-d sequence of numbers, got shape {array.shape}")
    if len(array) < at_least:
        raise ValueError(f"{name} needs at least {at_least} value(s), got {len(array)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), e.g. 0.95, got {confidence!r}")
    return float(confidence)


def _degrees_of_freedom(df) -> float:
    if isinstance(df, bool) or not isinstance(df, (int, float)) or not df > 0 or not math.isfinite(df):
        raise ValueError(f"degrees of freedom must be a positive finite number, got {df!r}")
    return float(df)


def _correctness(correct, name: str) -> np.ndarray:
    """Per-example correctness as a 1-d boolean array (booleans or 0/1 accepted)."""
    array = np.asarray(correct)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array of per-example correctness, got shape {array.shape}")
    if array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must hold booleans or 0/1 (1: the example was classified correctly)")
        array = array.astype(bool)
    return array


# --------------------------------------------------------------------------------- means over seeds


def mean(values) -> float:
    r""":math:`\bar x = \frac1n \sum_i x_i`."""
    return float(_values(values, "values").mean())


def sample_std(values) -> float:
    r"""The sample standard deviation :math:`s = \sqrt{\frac{1}{n-1}\sum_i (x_i - \bar x)^2}` (``n >= 2``)."""
    return float(_values(values, "values", at_least=2).std(ddof=1))


@dataclass(frozen=True)
class Summary:
    """Mean and sample std of one arm over its seeds (``std`` is None for a single seed: it is undefined)."""

    n: int
    mean: float
    std: float | None
    per_seed: list[float]

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(values) -> Summary:
    """:class:`Summary` of one arm's per-seed ``values`` (mean, sample std, n, and the values themselves)."""
    array = _values(values, "values")
    return Summary(n=len(array), mean=float(array.mean()), std=float(array.std(ddof=1)) if len(array) > 1 else None,
                   per_seed=[float(v) for v in array])


# -------------------------------------------------------------------------------- the t distribution


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    r""":math:`I_x(a, b) = \frac{1}{B(a,b)} \int_0^x t^{a-1}(1-t)^{b-1}\,dt` for ``0 <= x <= 1``, ``a, b > 0``.

    Evaluated with the continued fraction of Numerical Recipes (6.4) by the modified Lentz method, on
    the side of the symmetry :math:`I_x(a,b) = 1 - I_{1-x}(b,a)` where it converges fast
    (:math:`x < (a+1)/(a+b+2)`); absolute error about 1e-15."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must lie in [0, 1], got {x!r}")
    if not (a > 0 and b > 0):
        raise ValueError(f"a and b must be positive, got a={a!r}, b={b!r}")
    if x == 0.0 or x == 1.0:
        return float(x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_continued_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(1.0 - x, b, a) / b


def _beta_continued_fraction(x: float, a: float, b: float, *, tiny: float = 1e-300, eps: float = 1e-16) -> float:
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            return h
    raise ArithmeticError(f"the incomplete beta continued fraction did not converge for x={x}, a={a}, b={b}")


def t_cdf(t: float, df: float) -> float:
    r"""Student's t distribution function :math:`F_\nu(t) = P(T \le t)` with :math:`\nu` = ``df`` degrees of freedom:

    .. math:: F_\nu(t) = 1 - \tfrac12 I_{\nu/(\nu+t^2)}(\tfrac\nu2, \tfrac12) \quad (t \ge 0), \qquad F_\nu(-t) = 1 - F_\nu(t).
    """
    df = _degrees_of_freedom(df)
    if math.isnan(t):
        raise ValueError("t must be a number, got NaN")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * regularized_incomplete_beta(df / (df + t * t), df / 2, 0.5)  # P(T > |t|)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    r"""The ``p`` quantile :math:`t_{p,\nu}` of Student's t: the ``t`` with :math:`F_\nu(t) = p`, ``0 < p < 1``.

    Found by bisection on :func:`t_cdf` to machine precision (e.g. :math:`t_{0.975, 4} = 2.776`)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p < 1:
        raise ValueError(f"p must lie in (0, 1), got {p!r}")
    df = _degrees_of_freedom(df)
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
    return 0.5 * (low + high)


# -------------------------------------------------------------------- paired differences over seeds


@dataclass(frozen=True)
class PairedDifference:
    r"""The mean paired difference :math:`\bar d` of two arms over ``n`` seeds, with its CI and paired t-test.

    ``std``, ``standard_error``, ``ci_low``, ``ci_high``, ``t`` and ``p_value`` are None when ``n = 1``
    (one seed says nothing about the spread)."""

    n: int
    mean: float
    std: float | None
    standard_error: float | None
    confidence: float
    ci_low: float | None
    ci_high: float | None
    t: float | None
    p_value: float | None
    differences: list[float]

    def as_dict(self) -> dict:
        return asdict(self)


def paired_difference(a, b, *, confidence: float = DEFAULT_CONFIDENCE) -> PairedDifference:
    r"""Compare arm ``a`` with arm ``b`` seed by seed: :math:`d_i = a_i - b_i`, ``a[i]`` and ``b[i]`` from the same seed.

    .. math::

        \bar d = \frac1n\sum_i d_i, \quad s_d = \sqrt{\frac{\sum_i (d_i-\bar d)^2}{n-1}}, \quad
        \mathrm{SE} = \frac{s_d}{\sqrt n}, \quad t = \frac{\bar d}{\mathrm{SE}},

        \text{CI} = \bar d \pm t_{1-(1-c)/2,\; n-1}\,\mathrm{SE}, \qquad
        p = 2\,\bigl(1 - F_{n-1}(|t|)\bigr) \text{ (two-sided paired t-test of } \mathbb E[d] = 0).

    When every :math:`d_i` is equal, :math:`s_d = 0`: the CI is the point :math:`\bar d`, and
    :math:`p` is 0 if :math:`\bar d \ne 0`, else 1.

    Args:
        a, b: per-seed scores of the two arms, in the same seed order, equal lengths.
        confidence: ``c`` of the two-sided interval, in (0, 1).
    """
    confidence = _confidence(confidence)
    a, b = _values(a, "a"), _values(b, "b")
    if len(a) != len(b):
        raise ValueError(f"a and b must hold one score per seed each, in the same seed order; got {len(a)} and {len(b)}")
    d = a - b
    n, mean_d = len(d), float(d.mean())
    if n == 1:
        return PairedDifference(n, mean_d, None, None, confidence, None, None, None, None, [float(d[0])])
    std = float(d.std(ddof=1))
    se = std / math.sqrt(n)
    if se == 0.0:
        t = 0.0 if mean_d == 0 else math.copysign(math.inf, mean_d)
        p = 1.0 if mean_d == 0 else 0.0
        low = high = mean_d
    else:
        t = mean_d / se
        p = min(1.0, 2.0 * (1.0 - t_cdf(abs(t), n - 1)))
        half = t_quantile(1.0 - (1.0 - confidence) / 2.0, n - 1) * se
        low, high = mean_d - half, mean_d + half
    return PairedDifference(n, mean_d, std, se, confidence, low, high, t, p, [float(x) for x in d])


# ------------------------------------------------------------------ per-example tests (McNemar)


@dataclass(frozen=True)
class McNemar:
    r"""McNemar's test of two models on the same ``n`` examples.

    ``only_a``: examples model A gets right and B wrong (:math:`n_{10}`); ``only_b``: B right, A wrong
    (:math:`n_{01}`); ``both`` and ``neither`` complete the 2x2 table."""

    n: int
    both: int
    only_a: int
    only_b: int
    neither: int
    p_exact: float
    chi2: float | None
    p_chi2: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def binomial_two_sided_p(k: int, n: int) -> float:
    r"""Two-sided exact binomial test of :math:`p = 1/2`: :math:`\min\bigl(1, 2 \sum_{j \le \min(k, n-k)} \binom{n}{j} 2^{-n}\bigr)`
    (1 when ``n = 0``)."""
    if not (isinstance(k, (int, np.integer)) and isinstance(n, (int, np.integer)) and 0 <= k <= n):
        raise ValueError(f"need integers 0 <= k <= n, got k={k!r}, n={n!r}")
    k, n = int(k), int(n)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, j) for j in range(min(k, n - k) + 1))
    return min(1.0, 2 * tail / 2**n)


def chi2_one_df_survival(x: float) -> float:
    r""":math:`P(\chi^2_1 \ge x) = \operatorname{erfc}\bigl(\sqrt{x/2}\bigr)` for ``x >= 0``."""
    if not x >= 0:
        raise ValueError(f"a chi-square statistic is non-negative, got {x!r}")
    return math.erfc(math.sqrt(x / 2.0))


def mcnemar(correct_a, correct_b) -> McNemar:
    r"""McNemar's test on two arrays of per-example correctness for the same test set (same order).

    With :math:`n_{10}` = A right and B wrong, :math:`n_{01}` = A wrong and B right, under the null
    hypothesis (the two models are equally accurate) each discordant example is A's with probability
    1/2:

    * exact: :math:`p = \min\bigl(1, 2\,P(X \le \min(n_{10}, n_{01}))\bigr)`,
      :math:`X \sim \mathrm{Bin}(n_{10}+n_{01}, \tfrac12)` (:func:`binomial_two_sided_p`);
    * chi-square with Edwards' continuity correction:
      :math:`\chi^2 = \frac{(\max(|n_{10}-n_{01}| - 1, 0))^2}{n_{10}+n_{01}}` on 1 degree of freedom,
      :math:`p = P(\chi^2_1 \ge \chi^2)` (None when there is no discordant example).

    The concordant examples (both right, both wrong) do not enter either test.
    """
    a, b = _correctness(correct_a, "correct_a"), _correctness(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b must cover the same examples; got {len(a)} and {len(b)}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    chi2 = max(abs(only_a - only_b) - 1, 0) ** 2 / discordant if discordant else None
    return McNemar(
        n=len(a), both=int((a & b).sum()), only_a=only_a, only_b=only_b, neither=int((~a & ~b).sum()),
        p_exact=binomial_two_sided_p(min(only_a, only_b), discordant),
        chi2=chi2, p_chi2=chi2_one_df_survival(chi2) if chi2 is not None else None,
    )


def correctness(predictions, labels) -> np.ndarray:
    """Per-example correctness ``predictions == labels`` (1-d integer class arrays of equal length)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.ndim != 1 or predictions.shape != labels.shape or len(labels) == 0:
        raise ValueError(f"predictions and labels must be 1-d and of equal, non-zero length; got shapes "
                         f"{predictions.shape} and {labels.shape}")
    return predictions == labels


def pool_seeds(predictions_per_seed: Sequence, labels) -> np.ndarray:
    r"""Per-example correctness of one arm, concatenated over its seeds (seed order kept).

    ``predictions_per_seed[i]`` holds seed ``i``'s predicted class for every example of the test set
    ``labels``. Passing two arms' pooled arrays to :func:`mcnemar` pairs each (seed, example) of A with
    the same (seed, example) of B, so the table counts :math:`n \cdot N` pairs. The pairs from one
    example are not independent across seeds, so the pooled p-value is smaller than a test of one seed
    would give; report it beside the paired t-test over seeds, not instead of it."""
    if len(predictions_per_seed) == 0:
        raise ValueError("predictions_per_seed needs at least one seed's predictions")
    return np.concatenate([correctness(p, labels) for p in predictions_per_seed])


# ------------------------------------------------------------------------------ one accuracy


def _accuracy_and_n(accuracy: float, n: int) -> tuple[float, int]:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (the number of test examples) must be a positive integer, got {n!r}")
    if isinstance(accuracy, bool) or not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be a fraction in [0, 1], got {accuracy!r}")
    return float(accuracy), int(n)


def accuracy_standard_error(accuracy: float, n: int) -> float:
    r"""The binomial standard error of an accuracy :math:`\hat p` measured on ``n`` examples:
    :math:`\sqrt{\hat p (1 - \hat p) / n}` (0.0082, i.e. 0.82 points, at 78% on 2,551 examples)."""
    p, n = _accuracy_and_n(accuracy, n)
    return math.sqrt(p * (1.0 - p) / n)


def wilson_interval(accuracy: float, n: int, *, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    r"""Wilson's score interval for a proportion :math:`\hat p` of ``n`` examples: the ``p`` with
    :math:`|\hat p - p| \le z \sqrt{p(1-p)/n}`, :math:`z = \Phi^{-1}(1 - (1-c)/2)`:

    .. math:: \frac{\hat p + \frac{z^2}{2n} \pm z \sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}}

    It stays inside [0, 1] and is sensible at 0 or ``n`` successes, where the Wald interval collapses."""
    p, n = _accuracy_and_n(accuracy, n)
    z = NormalDist().inv_cdf(1.0 - (1.0 - _confidence(confidence)) / 2.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# ------------------------------------------------------------------------------ against a floor


def majority_class_accuracy(labels) -> float:
    """The accuracy of always predicting the most frequent label of ``labels``: its count over ``len(labels)``.
    What a model that learned nothing but the class balance scores."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-d array, got shape {labels.shape}")
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / len(labels))


@dataclass(frozen=True)
class Retention:
    r"""How much of the teacher a compressed model keeps, two ways (fractions, 1.0 = all of it):

    * ``of_teacher`` :math:`= \mathrm{acc} / \mathrm{acc}_T` (the raw percentage papers quote);
    * ``of_gain`` :math:`= (\mathrm{acc} - f) / (\mathrm{acc}_T - f)`, the share of the teacher's gain over the
      majority-class floor :math:`f` (0 for a model that learned nothing, whatever the class balance);
      None when the teacher does not beat the floor (it has no gain to share)."""

    accuracy: float
    teacher: float
    floor: float
    of_teacher: float
    of_gain: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def retention(accuracy: float, teacher: float, floor: float) -> Retention:
    """:class:`Retention` of ``accuracy`` relative to ``teacher`` above ``floor`` (all fractions in [0, 1]; the
    teacher above 0)."""
    for name, value in (("accuracy", accuracy), ("teacher", teacher), ("floor", floor)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be an accuracy in [0, 1], got {value!r}")
    if teacher == 0:
        raise ValueError("teacher accuracy is 0: there is nothing to retain a share of")
    gain = (accuracy - floor) / (teacher - floor) if teacher > floor else None
    return Retention(float(accuracy), float(teacher), float(floor), accuracy / teacher, gain)
