"""Claims as records computed from the per-seed numbers, never typed by hand.

A run states each comparison it makes ("KD beats hard labels") with :func:`compare`, which computes the
paired difference over seeds, its confidence interval and paired t-test, and McNemar's test on the
per-example predictions where the run saved them (all in :mod:`compresslib.stats`), decides whether the
claim holds under a stated :class:`Criterion`, and writes the sentence the report and the README show,
"does not hold" included. ``results.json["claims"]`` is the list of :meth:`Claim.as_dict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from compresslib import stats

NEGATIONS = {
    "beats": "does not beat",
    "is at least as good as": "is not shown to be at least as good as",
    # a and b are accuracy changes under a compression (compressed - uncompressed): higher = loses less
    "loses less than": "is not shown to lose less than",
}


@dataclass(frozen=True)
class Criterion:
    """When a comparison of arm A with arm B holds: the lower end of the two-sided ``confidence``
    interval of the mean paired difference A - B lies above ``margin`` (in the metric's own units).

    ``margin = 0`` asks that A beat B (equivalent to a one-sided paired t-test at level
    ``(1 - confidence) / 2``); a negative margin such as ``-0.01`` asks that A be no worse than B by more
    than one point (non-inferiority)."""

    margin: float = 0.0
    confidence: float = stats.DEFAULT_CONFIDENCE

    def __post_init__(self):
        stats._confidence(self.confidence)
        if isinstance(self.margin, bool) or not isinstance(self.margin, (int, float)) or not np.isfinite(self.margin):
            raise ValueError(f"margin must be a finite number (the metric's units), got {self.margin!r}")

    def describe(self, scale: float, unit: str) -> str:
        bound = "0" if self.margin == 0 else f"{scale * self.margin:+.1f} {unit}"
        return f"the {_percent(self.confidence)} CI of the paired difference lies above {bound}"

    def holds(self, difference: stats.PairedDifference) -> bool | None:
        """True or False; None when the difference has no interval (a single seed)."""
        return None if difference.ci_low is None else bool(difference.ci_low > self.margin)


@dataclass(frozen=True)
class Claim:
    """One comparison, with every number it rests on and the sentence that reports it."""

    key: str
    a: str
    b: str
    verb: str
    metric: str
    unit: str
    scale: float
    a_summary: dict
    b_summary: dict
    difference: dict
    mcnemar: dict | None
    criterion: dict
    criterion_text: str
    holds: bool | None
    sentence: str

    def as_dict(self) -> dict:
        return asdict(self)


def compare(
    key: str,
    a: str,
    a_values: Sequence[float],
    b: str,
    b_values: Sequence[float],
    *,
    verb: str = "beats",
    criterion: Criterion = Criterion(),
    metric: str = "test accuracy",
    scale: float = 100.0,
    unit: str = "points",
    correct_a=None,
    correct_b=None,
) -> Claim:
    """The claim "``a`` ``verb`` ``b``" on ``metric``, tested on per-seed values paired by position.

    Args:
        key: a stable identifier (``"kd_beats_hard"``), the claim's name in ``results.json``.
        a, b: the arms' names as the report shows them; ``a_values[i]`` and ``b_values[i]`` share seed ``i``.
        verb: a key of :data:`NEGATIONS` (its negation is used when the claim does not hold).
        criterion: when the claim holds.
        scale, unit: how a difference is shown (accuracies as fractions: ``100`` and ``"points"``).
        correct_a, correct_b: optional per-example correctness of each arm on the same test set, pooled
            over the same seeds in the same order (:func:`compresslib.stats.pool_seeds`), for McNemar's test.
    """
    if verb not in NEGATIONS:
        raise ValueError(f"verb must be one of {sorted(NEGATIONS)}, got {verb!r}")
    if (correct_a is None) != (correct_b is None):
        raise ValueError("give per-example correctness for both arms (correct_a and correct_b) or for neither")
    difference = stats.paired_difference(a_values, b_values, confidence=criterion.confidence)
    test = stats.mcnemar(correct_a, correct_b) if correct_a is not None else None
    holds = criterion.holds(difference)
    text = criterion.describe(scale, unit)
    return Claim(
        key=key, a=a, b=b, verb=verb, metric=metric, unit=unit, scale=scale,
        a_summary=stats.summarize(a_values).as_dict(), b_summary=stats.summarize(b_values).as_dict(),
        difference=difference.as_dict(), mcnemar=test.as_dict() if test else None,
        criterion=asdict(criterion), criterion_text=text, holds=holds,
        sentence=_sentence(a, b, verb, metric, difference, test, holds, text, scale, unit),
    )


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def format_p(p: float) -> str:
    """``p < 0.001``, or p to two significant digits (``p = 0.0031``, ``p = 0.45``)."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _sentence(a, b, verb, metric, d: stats.PairedDifference, test: stats.McNemar | None, holds, criterion_text,
              scale, unit) -> str:
    seeds = f"{d.n} seed{'s' if d.n != 1 else ''}"
    if holds is None:
        return (f"{a} vs {b}: {scale * d.mean:+.1f} {unit} of {metric} on {seeds}; with one seed there is no "
                f"confidence interval, so whether {a} {verb} {b} is not tested.")
    numbers = (f"{scale * d.mean:+.1f} {unit} of {metric} ({_percent(d.confidence)} CI {scale * d.ci_low:+.1f} to "
               f"{scale * d.ci_high:+.1f}; paired t-test {format_p(d.p_value)}; {seeds}")
    if test is not None:
        numbers += (f"; McNemar exact {format_p(test.p_exact)} on {test.n} pooled predictions, "
                    f"{test.only_a} right only for {a}, {test.only_b} only for {b}")
    numbers += ")"
    if holds:
        return f"{a} {verb} {b}: {numbers}. Holds: {criterion_text}."
    return f"{a} {NEGATIONS[verb]} {b}: {numbers}. Does not hold: the criterion is that {criterion_text}."
