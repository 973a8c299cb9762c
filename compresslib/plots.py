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
