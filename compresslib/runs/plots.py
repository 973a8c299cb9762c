"""Plots of the reference runs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def learning_curves(curves: dict[str, list[list[tuple[int, float]]]], teacher_accuracy: float, path: Path, *,
                    title: str, ylabel: str = "validation accuracy") -> None:
    """One line per model: the mean over seeds of (step, value) curves, with a band of +- one std;
    the teacher's value as a dashed line."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, runs in curves.items():
        steps = np.array([s for s, _ in runs[0]])
        values = np.array([[v for _, v in run] for run in runs])
        mean = values.mean(0)
        line, = ax.plot(steps, mean, marker="o", ms=3, label=name)
        if len(runs) > 1:
            std = values.std(0, ddof=1)
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.axhline(teacher_accuracy, color="black", ls="--", lw=1, label="teacher (test)")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def accuracy_bars(rows: list[dict], path: Path, *, title: str) -> None:
    """Bars of test accuracy (mean +- std over seeds) per model, labelled with % of the teacher."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    names = [r["model"] for r in rows]
    means = np.array([r["accuracy_mean"] for r in rows]) * 100
    stds = np.array([r["accuracy_std"] for r in rows]) * 100
    colors = ["#444444"] + [f"C{i}" for i in range(len(rows) - 1)]
    ax.bar(range(len(rows)), means, yerr=stds, capsize=4, color=colors)
    for i, r in enumerate(rows):
        ax.text(i, means[i] + stds[i] + 0.4, f"{r['percent_of_teacher']:.1f}%", ha="center", fontsize=8)
    ax.set_xticks(range(len(rows)), [n.replace(" + ", "\n+ ") for n in names], fontsize=7)
    low = max(0.0, means.min() - stds.max() - 8)
    ax.set_ylim(low, min(100.0, means.max() + stds.max() + 4))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
