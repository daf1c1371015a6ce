"""Small plotting helpers shared by the lessons."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


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
    longest = 0
    for name, values in history.items():
        axes.plot(range(1, len(values) + 1), values, marker="o", label=name)
        longest = max(longest, len(values))
    # Epochs are counted 1..N, as in epoch_table, and only whole epochs exist.
    axes.set_xticks(range(1, longest + 1))
    axes.set_xlabel("epoch")
    axes.set_title(title)
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def epoch_table(history: dict[str, list[float]]) -> pd.DataFrame:
    """Per-epoch metrics as a table whose index is the epoch, counted 1..N as in the plots.

    Args:
        history: metric name -> one value per epoch (e.g. a Keras ``History.history``).

    Returns:
        A DataFrame with one row per epoch and one column per metric.
    """
    length = max((len(values) for values in history.values()), default=0)
    return pd.DataFrame(history, index=pd.RangeIndex(1, length + 1, name="epoch"))
