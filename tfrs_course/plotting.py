"""Small plotting helpers shared by the lessons."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def plot_accuracy_by_k(accuracies: dict[str, dict[int, float]], title: str = "Top-k accuracy on test"):
    """Grouped bars: one group per k, one bar per approach.

    Args:
        accuracies: approach name -> {k: accuracy}.
        title: the chart's title.

    Returns:
        The matplotlib Figure.
    """
    names = list(accuracies)
    ks = sorted({k for by_k in accuracies.values() for k in by_k})
    positions = np.arange(len(ks))
    width = 0.8 / max(len(names), 1)
    figure, axes = plt.subplots(figsize=(7, 3.5))
    for offset, name in enumerate(names):
        heights = [accuracies[name].get(k, np.nan) for k in ks]
        axes.bar(positions + offset * width, heights, width, label=name)
    axes.set_xticks(positions + width * (len(names) - 1) / 2, [f"top-{k}" for k in ks])
    axes.set_ylabel("accuracy")
    axes.set_title(title)
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def plot_training_curves(history: dict[str, list[float]], title: str = "Training"):
    """Line plot of per-epoch metrics (e.g. a Keras ``History.history``).

    Args:
        history: metric name -> one value per epoch.
        title: the chart's title.

    Returns:
        The matplotlib Figure.
    """
    figure, axes = plt.subplots(figsize=(6, 3.5))
    for name, values in history.items():
        axes.plot(range(1, len(values) + 1), values, marker="o", label=name)
    axes.set_xlabel("epoch")
    axes.set_title(title)
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure
