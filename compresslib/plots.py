"""Figures the notebooks draw (the notebooks call these so their cells stay about the ideas)."""

from __future__ import annotations

import matplotlib

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "inline"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_softening(vocab, probs_by_temperature: dict[float, "list[float]"], *, k: int = 15, title: str = ""):
    """Bar charts of the ``k`` words most probable at the lowest temperature, one panel per temperature:
    the teacher's "dark knowledge" (how the wrong answers rank) shows as T grows."""
    temperatures = sorted(probs_by_temperature)
    first = probs_by_temperature[temperatures[0]]
    order = sorted(range(len(first)), key=lambda i: -first[i])[:k]
    fig, axes = plt.subplots(1, len(temperatures), figsize=(3.2 * len(temperatures), 3.4), sharey=True)
    for ax, T in zip(axes, temperatures):
        probs = probs_by_temperature[T]
        ax.bar(range(k), [probs[i] for i in order], color="tab:blue")
        ax.set_xticks(range(k), [vocab[i] for i in order], rotation=90, fontsize=8)
        ax.set_title(f"T = {T:g}")
    axes[0].set_ylabel("probability")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_gradient_scaling(temperatures, with_t2, without_t2):
    """Log-log plot of the gradient's size against T, with and without the T^2 factor."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.loglog(temperatures, with_t2, "o-", label=r"$T^2 \mathcal{L}_D$ (scaled)")
    ax.loglog(temperatures, without_t2, "s-", label=r"$\mathcal{L}_D$ without $T^2$")
    ref = [without_t2[0] * (temperatures[0] / T) ** 2 for T in temperatures]
    ax.loglog(temperatures, ref, "k:", label=r"$\propto 1/T^2$")
    ax.set_xlabel("temperature T")
    ax.set_ylabel(r"$\|\partial \mathcal{L} / \partial z\|$")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_singular_values(spectra: dict[str, "list[float]"], *, break_even: dict[str, int] | None = None, title: str = ""):
    """Two panels for each matrix ``{label: singular values (decreasing)}``: the singular values over the
    largest one (log scale), and the share of the squared singular values a rank-r factorisation keeps,
    :math:`\\sum_{i \\le r}\\sigma_i^2 / \\sum_i \\sigma_i^2`, with each matrix's break-even rank (``break_even``,
    the largest rank that still saves parameters) as a dashed line."""
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (label, values) in enumerate(spectra.items()):
        values = np.asarray(values, dtype=np.float64)
        ranks = np.arange(1, len(values) + 1)
        left.semilogy(ranks, values / values[0], color=f"C{i}", label=label)
        right.plot(ranks, np.cumsum(values**2) / np.sum(values**2), color=f"C{i}", label=label)
        if break_even and label in break_even:
            right.axvline(break_even[label], color=f"C{i}", ls="--", lw=1)
    left.set_xlabel("index i")
    left.set_ylabel(r"$\sigma_i / \sigma_1$")
    right.set_xlabel("rank r")
    right.set_ylabel("share of the squared singular values kept")
    right.set_ylim(0, 1.02)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle(title + ("  (dashed: the break-even rank)" if break_even else ""))
    fig.tight_layout()
    return fig


def plot_frontier(points: dict[str, tuple[float, float]], *, majority: float | None = None, baseline: str | None = None,
                  title: str = ""):
    """Accuracy (y, %) against bytes as stored (x, log scale), one labelled point per model
    ``{name: (bytes, accuracy)}``; the models no other model beats on both (smaller *and* at least as
    accurate) joined as the frontier; the ``baseline`` model's accuracy dashed, the majority-class
    accuracy (a constant guess) dotted."""
    items = sorted(points.items(), key=lambda item: item[1][0])
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    frontier, best = [], -1.0
    for name, (size, accuracy) in items:
        if accuracy > best:
            frontier.append((size, accuracy))
            best = accuracy
    ax.plot([s / 1e6 for s, _ in frontier], [100 * a for _, a in frontier], "-", color="tab:gray", lw=1,
            label="frontier (nothing smaller is as accurate)", zorder=1)
    for name, (size, accuracy) in items:
        ax.scatter(size / 1e6, 100 * accuracy, zorder=2)
        ax.annotate(name, (size / 1e6, 100 * accuracy), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if baseline is not None and baseline in points:
        ax.axhline(100 * points[baseline][1], color="black", ls="--", lw=1, label=f"{baseline} (uncompressed)")
    if majority is not None:
        ax.axhline(100 * majority, color="black", ls=":", lw=1, label="majority class (a constant guess)")
    ax.set_xscale("log")
    ax.set_xlabel("bytes as stored (MB, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
