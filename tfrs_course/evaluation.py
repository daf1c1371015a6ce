"""Evaluation helpers shared by lessons 2-6.

Lesson 1 has students write both of these themselves; later lessons import them
so every lesson measures the same users with the same metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# KS lives in records: a notebook may import records, but not this module, while it is graded.
from tfrs_course.records import KS


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


def factorized_top_k_accuracy(
    query_embeddings: np.ndarray,
    true_candidate_embeddings: np.ndarray,
    candidate_embeddings: np.ndarray,
    ks: Sequence[int] = KS,
    chunk_size: int = 2048,
) -> dict[int, float]:
    """Top-k accuracy of a two-tower model against every candidate, as FactorizedTopK scores it.

    A row is a hit at k when fewer than k candidates score strictly higher than
    the row's true candidate (score = dot product with the query). This is what
    ``tfrs.metrics.FactorizedTopK`` computes without candidate ids (through
    ``tf.math.in_top_k``), but with one matrix product per chunk of rows instead
    of a streaming top-k, so tens of thousands of rows take seconds on a CPU.
    The true candidate need not be among the candidates (an out-of-vocabulary
    item is scored with its own embedding, as TFRS does).

    Args:
        query_embeddings: shape (rows, dim), one query per row.
        true_candidate_embeddings: shape (rows, dim), the embedding of each row's true candidate.
        candidate_embeddings: shape (candidates, dim), every candidate that can be retrieved.
        ks: the cut-offs.
        chunk_size: rows scored per matrix product; bounds memory to chunk_size x candidates.

    Returns:
        ``{k: accuracy}``; 0.0 for every k when there are no rows.
    """
    queries = np.asarray(query_embeddings, dtype=np.float32)
    positives = np.asarray(true_candidate_embeddings, dtype=np.float32)
    candidates = np.asarray(candidate_embeddings, dtype=np.float32)
    if len(queries) == 0:
        return {k: 0.0 for k in ks}
    higher = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), chunk_size):
        block = queries[start : start + chunk_size]
        positive_scores = np.sum(block * positives[start : start + chunk_size], axis=1, keepdims=True)
        higher[start : start + chunk_size] = (block @ candidates.T > positive_scores).sum(axis=1)
    return {k: float(np.mean(higher < k)) for k in ks}


def retrieve(
    user_ids: Sequence[str],
    user_vectors: np.ndarray,
    item_ids: Sequence[str],
    item_vectors: np.ndarray,
    users: Sequence[str],
    k: int,
) -> np.ndarray:
    """Each user's top k candidate ids, from an exact index over the candidates.

    Scores are dot products; equal scores go to the candidate given first, as
    TFRS's ``BruteForce`` index breaks them.

    Args:
        user_ids: the users with a vector (str).
        user_vectors: shape (len(user_ids), dim).
        item_ids: the candidates (str), the pool the lists are drawn from.
        item_vectors: shape (len(item_ids), dim).
        users: whom to retrieve for (str), repeats allowed.
        k: the list length (at most the number of candidates).

    Returns:
        A str array of shape (len(users), k), best first.

    Raises:
        KeyError: a user has no vector.
    """
    from tfrs_course.serving import exact_top_k

    known = pd.Index(np.asarray(user_ids, dtype=str))
    rows = known.get_indexer(np.asarray(users, dtype=str))
    if (rows < 0).any():
        missing = np.asarray(users, dtype=str)[rows < 0][:3].tolist()
        raise KeyError(f"users without a vector, for example {missing}")
    wanted = np.unique(rows)
    _, top = exact_top_k(np.asarray(user_vectors, dtype=np.float32)[wanted],
                         np.asarray(item_vectors, dtype=np.float32), k)  # fmt: skip
    return np.asarray(item_ids, dtype=str)[top][np.searchsorted(wanted, rows)]


def list_accuracy(
    user_ids: Sequence[str],
    user_vectors: np.ndarray,
    item_ids: Sequence[str],
    item_vectors: np.ndarray,
    test: pd.DataFrame,
    ks: Sequence[int] = KS,
) -> dict[int, float]:
    """Top-k accuracy of the lists the users would see: retrieve, then match ids.

    Every test row gets its user's list from :func:`retrieve` and is scored with
    :func:`top_k_accuracy`. A true item that is not among the candidates can
    never be found, and a tie is never counted in the row's favour: this is the
    course's protocol for comparing approaches.

    Args:
        user_ids, user_vectors, item_ids, item_vectors: as for :func:`retrieve`.
        test: rows with ``user_no`` and ``item_no``; every user must have a vector.
        ks: cut-offs.

    Returns:
        ``{k: accuracy}``.
    """
    lists = retrieve(user_ids, user_vectors, item_ids, item_vectors, test["user_no"], max(ks))
    return top_k_accuracy(test["item_no"].to_numpy(dtype=str), lists, ks)
