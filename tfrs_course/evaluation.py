"""Evaluation helpers shared by lessons 2-6.

Lesson 1 has students write both of these themselves; later lessons import them
so every lesson measures the same users with the same metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

KS = (1, 5, 10, 50, 100)


def most_active_users(train: pd.DataFrame, n: int) -> list[str]:
    """The n users with the most train rows; ties broken by user id, ascending.

    Args:
        train: interactions with a ``user_no`` column.
        n: how many users to keep.

    Returns:
        User ids, the most active first.
    """
    counts = train.groupby("user_no").size().rename("count").reset_index()
    ordered = counts.sort_values(["count", "user_no"], ascending=[False, True], kind="stable")
    return ordered["user_no"].head(n).tolist()


def restrict_to_users(frames: Sequence[pd.DataFrame], users: Sequence[str]) -> list[pd.DataFrame]:
    """The rows of each frame whose ``user_no`` is in ``users``, with a fresh index (copies, not views)."""
    wanted = pd.Index(users)
    return [frame[frame["user_no"].isin(wanted)].reset_index(drop=True) for frame in frames]


def top_k_accuracy(true_ids: np.ndarray, retrieved_ids: np.ndarray, ks: Sequence[int] = KS) -> dict[int, float]:
    """Share of rows whose true id is among their first k retrieved ids (a row counts once).

    Args:
        true_ids: shape (rows,).
        retrieved_ids: shape (rows, list length), best first.
        ks: cut-offs; a k longer than the list uses the whole list.

    Returns:
        ``{k: accuracy}``; 0.0 for every k when there are no rows.
    """
    true_ids = np.asarray(true_ids)
    retrieved_ids = np.asarray(retrieved_ids)
    if len(true_ids) == 0 or retrieved_ids.size == 0:
        return {k: 0.0 for k in ks}
    hit_by = np.logical_or.accumulate(retrieved_ids == true_ids[:, None], axis=1)
    return {k: float(hit_by[:, min(k, hit_by.shape[1]) - 1].mean()) for k in ks}
