"""TFRS's indexes over candidate vectors: exact ``BruteForce`` and approximate ``ScaNN``.

Identifiers are the candidates' row numbers, so results compare directly with
:func:`tfrs_course.serving.exact.exact_top_k`. TensorFlow is imported only when
an index is built or queried; import ``tfrs_course`` before TensorFlow as
everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def build_brute_force(candidates: np.ndarray, k: int = 100):
    """TFRS's exact index over candidate vectors (identifiers are the row numbers).

    Args:
        candidates: shape (candidates, dim).
        k: the default number of results.

    Returns:
        A ``tfrs.layers.factorized_top_k.BruteForce`` layer, indexed.
    """
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    index = tfrs.layers.factorized_top_k.BruteForce(k=k)
    index.index(tf.constant(np.asarray(candidates, dtype=np.float32)))
    return index


def brute_force_top_k(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Query a BruteForce (or any TFRS top-k) layer with query vectors; return numpy ``(scores, indices)``."""
    import tensorflow as tf

    scores, indices = index(tf.constant(np.asarray(queries, dtype=np.float32)), k=k)
    return scores.numpy(), indices.numpy()


@dataclass(frozen=True)
class ScannSettings:
    """How a ScaNN index partitions and scores (see ``tfrs.layers.factorized_top_k.ScaNN``).

    Attributes:
        num_leaves: clusters the candidates are partitioned into.
        num_leaves_to_search: clusters scored for each query; more is slower and more exact.
        num_reordering_candidates: approximate results re-scored exactly before the top k is taken.
        dimensions_per_block: compression of the approximate scores; 2 keeps them accurate.
    """

    num_leaves: int
    num_leaves_to_search: int
    num_reordering_candidates: int
    dimensions_per_block: int = 2

    def label(self) -> str:
        return (
            f"ScaNN {self.num_leaves_to_search}/{self.num_leaves} leaves, "
            f"reorder {self.num_reordering_candidates}"
        )


# Settings compared by lesson 6 and the serving benchmark, from fast to exact.
SCANN_SETTINGS: tuple[ScannSettings, ...] = (
    ScannSettings(num_leaves=500, num_leaves_to_search=10, num_reordering_candidates=200),
    # Re-scoring 300 candidates exactly is what lifts recall@100 above 0.95; searching
    # more leaves costs more time than it buys.
    ScannSettings(num_leaves=500, num_leaves_to_search=15, num_reordering_candidates=300),
    ScannSettings(num_leaves=1000, num_leaves_to_search=40, num_reordering_candidates=300),
)


def build_scann(candidates: np.ndarray, settings: ScannSettings, k: int = 100):
    """A ScaNN approximate index over candidate vectors, through TFRS.

    Args:
        candidates: shape (candidates, dim).
        settings: the index's settings.
        k: the default number of results.

    Returns:
        A ``tfrs.layers.factorized_top_k.ScaNN`` layer, indexed (identifiers are
        the row numbers). Query it with :func:`scann_top_k`.
    """
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    index = tfrs.layers.factorized_top_k.ScaNN(
        k=k,
        num_leaves=settings.num_leaves,
        num_leaves_to_search=settings.num_leaves_to_search,
        num_reordering_candidates=settings.num_reordering_candidates,
        dimensions_per_block=settings.dimensions_per_block,
    )
    index.index(tf.constant(np.asarray(candidates, dtype=np.float32)))
    return index


def scann_top_k(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Query a ScaNN layer with query vectors; return numpy ``(scores, indices)``, best first."""
    return brute_force_top_k(index, queries, k)
