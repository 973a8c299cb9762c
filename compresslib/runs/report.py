"""Reports of the reference runs: Markdown tables and PNG plots, drawn from ``results.json`` alone.

Rules every figure follows:

* each accuracy plot draws the majority-class accuracy (what a constant guess scores) of the split it shows;
* the axis says which split it measures (``validation accuracy (%)`` or ``test accuracy (%)``), and a
  reference line drawn on it comes from the same split;
* lines join measured points only: no line is drawn across a range where there is no data.

The figures use matplotlib's object API (``matplotlib.figure.Figure``), so no backend is set and
importing this module changes nothing for a notebook. Files are written atomically; each plotting function returns its ``Figure``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from compresslib.files import atomic_path

MAJORITY_LABEL = "majority class (a constant guess)"


# ------------------------------------------------------------------------------------------ text


def pct(value: float | None, std: float | None = None, digits: int = 1) -> str:
    """A fraction as a percentage, with ``± std`` when there is one (``–`` for a missing value)."""
    if value is None:
        return "–"
    text = percent(value, digits)
    return text + (f" ± {percent(std, digits)}" if std is not None else "")


def percent(fraction: float | None, digits: int = 1) -> str:
    """``100 * fraction`` to ``digits`` decimals, never ``-0.0`` (a float32 accuracy a hair below its float64
    floor); ``–`` for None (a value that is undefined, such as a share of no gain)."""
    return "–" if fraction is None else f"{round(100 * fraction, digits) + 0.0:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r`` (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError(f"a table of {len(header)} columns needs {len(header)} alignments and cells per row")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def claims_markdown(claims: Sequence[Mapping]) -> str:
    """One bullet per claim, its generated sentence (``results.json["claims"]``)."""
    return "\n".join(f"- {claim['sentence']}" for claim in claims)


def figure_links(figures: Sequence[tuple[str, str]], prefix: str = "") -> str:
    """Markdown image links ``![alt](prefix + file)`` for ``(alt, file)`` pairs, one per line."""
    return "\n".join(f"![{alt}]({prefix}{name})" for alt, name in figures)


# --------------------------------------------------------------------------------------- figures


def _new_axes(size=(7, 4.2)):
    fig = Figure(figsize=size)
    return fig, fig.subplots()


def _save(fig: Figure, path) -> Figure:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return fig


def _majority(ax, majority: float | None) -> None:
    if majority is not None:
        ax.axhline(100 * majority, color="black", ls=":", lw=1, label=MAJORITY_LABEL)


def learning_curves(curves: Mapping[str, Sequence[Sequence[Sequence[float]]]], path, *, title: str,
                    majority: float | None, reference: tuple[str, float] | None = None,
                    ylabel: str = "validation accuracy (%)") -> Figure:
    """Mean over seeds of each model's ``[(step, accuracy), ...]`` curves (band: ± one sample std where
    there are several seeds), the majority class of the same split, and an optional reference line
    ``(label, accuracy)`` measured on that split too."""
    fig, ax = _new_axes()
    for name, runs in curves.items():
        steps = np.array([s for s, _ in runs[0]])
        values = 100 * np.array([[v for _, v in run] for run in runs])
        mean = values.mean(0)
        line, = ax.plot(steps, mean, marker="o", ms=3, label=name)
        if len(runs) > 1:
            std = values.std(0, ddof=1)
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    if reference is not None:
        ax.axhline(100 * reference[1], color="black", ls="--", lw=1, label=reference[0])
    _majority(ax, majority)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def accuracy_bars(bars: Sequence[Mapping], path, *, title: str, majority: float | None,
                  ylabel: str = "test accuracy (%)") -> Figure:
    """One bar per model (``{"model", "mean", "std", "label"}``; ``std`` None for one run), the error bar one
    sample std, ``label`` written above the bar, and the majority class as a dotted line."""
    fig, ax = _new_axes()
    means = 100 * np.array([b["mean"] for b in bars])
    stds = 100 * np.array([b["std"] or 0.0 for b in bars])
    colors = ["#444444"] + [f"C{i}" for i in range(len(bars) - 1)]
    ax.bar(range(len(bars)), means, yerr=stds, capsize=4, color=colors)
    for i, bar in enumerate(bars):
        ax.text(i, means[i] + stds[i] + 0.4, bar.get("label", ""), ha="center", fontsize=7)
    _majority(ax, majority)
    ax.set_xticks(range(len(bars)), [b["model"].replace(" + ", "\n+ ") for b in bars], fontsize=7)
    floor = min(means.min() - stds.max(), 100 * majority if majority is not None else 100)
    ax.set_ylim(max(0.0, floor - 5), min(100.0, means.max() + stds.max() + 4))
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    if majority is not None:
        ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def accuracy_vs_sparsity(curves: Mapping[str, Mapping[float, Mapping]], path, *, title: str,
                         full: Mapping, majority: float | None, ylabel: str = "test accuracy (%)",
                         xlabel: str = "sparsity (%)") -> Figure:
    """Accuracy against sparsity: each method's measured sparsities (``{sparsity: {"mean", "std"}}``) joined
    in order, with error bars of one sample std; the dense model (``full``: ``{"mean", "std"}``) as its own
    point at 0% with a band, not joined to the methods' points (nothing was measured in between)."""
    fig, ax = _new_axes((6.4, 4.2))
    markers = "os^vDP*X"
    for i, (label, points) in enumerate(curves.items()):
        xs = sorted(points)
        ax.errorbar([100 * x for x in xs], [100 * points[x]["mean"] for x in xs],
                    yerr=[100 * (points[x]["std"] or 0.0) for x in xs], marker=markers[i % len(markers)],
                    capsize=3, label=label)
    spread = full.get("std") or 0.0
    ax.errorbar([0.0], [100 * full["mean"]], yerr=[100 * spread], marker="*", ms=10, color="black", capsize=3,
                ls="none", label="full model (0%)")
    if spread:
        ax.axhspan(100 * (full["mean"] - spread), 100 * (full["mean"] + spread), color="grey", alpha=0.2,
                   label="full model ± 1 std")
    _majority(ax, majority)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def grouped_bars(groups: Mapping[str, Mapping[str, float]], path, *, title: str, ylabel: str) -> Figure:
    """Bars of fractions (shown in %): one group per inner key, one colour per outer key (e.g. sparsity
    per kind of weight matrix, one colour per global sparsity)."""
    fig, ax = _new_axes((6.4, 3.6))
    labels = list(next(iter(groups.values())))
    width = 0.8 / len(groups)
    for i, (name, values) in enumerate(groups.items()):
        ax.bar([j + i * width for j in range(len(labels))], [100 * values[k] for k in labels], width, label=name)
    ax.set_xticks([j + width * (len(groups) - 1) / 2 for j in range(len(labels))], labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def accuracy_vs_labels(curves: Mapping[str, Mapping[int, Mapping]], path, *, title: str, majority: float | None,
                       reference: tuple[str, float] | None = None,
                       bands: Sequence[tuple[str, float, float | None]] = (), ylabel: str = "test accuracy (%)",
                       xlabel: str = "hard labels (snippets, log scale)") -> Figure:
    """Accuracy against the number of labels: each method's measured points (``{labels: {"mean", "std", "n"}}``)
    joined in order on a log axis, error bars one sample std over seeds, the seeds per point in the legend;
    ``bands`` are methods without labels (``(label, mean, std)``), drawn as a horizontal line with a ±1 std
    band; ``reference`` a line such as the teacher's accuracy on the same split."""
    fig, ax = _new_axes((7, 4.6))
    markers = "os^vDP*X"
    for i, (label, points) in enumerate(curves.items()):
        xs = sorted(points)
        seeds = sorted({points[x]["n"] for x in xs})
        ax.errorbar(xs, [100 * points[x]["mean"] for x in xs], yerr=[100 * (points[x]["std"] or 0.0) for x in xs],
                    marker=markers[i % len(markers)], capsize=4, label=f"{label} ({'/'.join(map(str, seeds))} seeds)")
    for i, (label, mean, std) in enumerate(bands):
        line = ax.axhline(100 * mean, color=f"C{len(curves) + i}", ls="-.", lw=1.2, label=label)
        if std:
            ax.axhspan(100 * (mean - std), 100 * (mean + std), color=line.get_color(), alpha=0.15)
    if reference is not None:
        ax.axhline(100 * reference[1], color="black", ls="--", lw=1, label=reference[0])
    _majority(ax, majority)
    ax.set_xscale("log")
    every = sorted({x for points in curves.values() for x in points})
    ax.set_xticks(every, [f"{x:,}" for x in every])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def accuracy_vs_bytes(points: Sequence[Mapping], path, *, title: str, majority: float | None, front: Sequence[str] = (),
                      ylabel: str = "test accuracy (%)", xlabel: str = "bytes as stored (MB, log scale)") -> Figure:
    """The frontier plot: one point per model (``{"name", "label", "bytes", "mean", "std", "group", "kind"}``),
    accuracy against bytes on a log axis with error bars of one sample std over seeds; one colour per
    ``group`` (e.g. the base model), one marker per ``kind`` (the technique); the names in ``front`` (the
    Pareto frontier, by increasing bytes) joined by a dashed line, which joins measured points only; the
    majority class as a dotted line. Each point is annotated with its ``label``."""
    fig, ax = _new_axes((8.4, 5.6))
    groups = list(dict.fromkeys(p["group"] for p in points))
    kinds = list(dict.fromkeys(p["kind"] for p in points))
    markers = "o^sDvP*Xh<>"
    for p in points:
        color = f"C{groups.index(p['group'])}"
        marker = markers[kinds.index(p["kind"]) % len(markers)]
        ax.errorbar([p["bytes"] / 1e6], [100 * p["mean"]], yerr=[100 * (p["std"] or 0.0)], marker=marker, color=color,
                    ms=6, capsize=2, ls="none", alpha=0.9)
        ax.annotate(p["label"], (p["bytes"] / 1e6, 100 * p["mean"]), fontsize=5.5, xytext=(3, 3),
                    textcoords="offset points", color=color)
    by_name = {p["name"]: p for p in points}
    if front:
        ax.plot([by_name[n]["bytes"] / 1e6 for n in front], [100 * by_name[n]["mean"] for n in front], color="grey",
                ls="--", lw=1, label="Pareto frontier (no model smaller and more accurate)")
    for g, group in enumerate(groups):
        ax.plot([], [], color=f"C{g}", marker="o", ls="none", label=group)
    for k, kind in enumerate(kinds):
        ax.plot([], [], color="black", marker=markers[k % len(markers)], ls="none", label=kind, alpha=0.6)
    _majority(ax, majority)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6.5, loc="lower right", ncol=2)
    return _save(fig, path)
