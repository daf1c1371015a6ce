"""Indexes over candidate vectors: TFRS's exact ``BruteForce``, and approximate ScaNN.

ScaNN is built either through TFRS's ``ScaNN`` layer (compressed scores, then
re-scoring) or through the ``scann`` package's own builder (exact scores of
the leaves searched); :class:`ScannSettings` says which. Identifiers are the candidates' row numbers, so results compare directly with
:func:`tfrs_course.serving.exact.exact_top_k`. TensorFlow is imported only when
an index is built or queried; import ``tfrs_course`` before TensorFlow as
everywhere else.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
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
    """How a ScaNN index partitions and scores.

    Attributes:
        num_leaves: clusters the candidates are partitioned into.
        num_leaves_to_search: clusters scored for each query; more is slower and more exact.
        num_reordering_candidates: approximate results re-scored exactly before the
            top k is taken (``"ah"`` scoring only).
        dimensions_per_block: compression of the approximate scores; 2 keeps them accurate.
        scoring: ``"ah"``, compressed (asymmetric hashing) scores through TFRS's
            ``tfrs.layers.factorized_top_k.ScaNN`` layer, which always scores this
            way; or ``"exact"``, exact float scores of the candidates in the
            searched leaves, through the ``scann`` package's own builder (so no
            re-scoring is needed).
    """

    num_leaves: int
    num_leaves_to_search: int
    num_reordering_candidates: int = 0
    dimensions_per_block: int = 2
    scoring: str = "ah"

    def __post_init__(self):
        if self.scoring not in ("ah", "exact"):
            raise ValueError(f'ScannSettings.scoring must be "ah" or "exact"; got {self.scoring!r}')
        if self.scoring == "ah" and self.num_reordering_candidates <= 0:
            raise ValueError('ScannSettings with scoring="ah" need num_reordering_candidates > 0')
        if self.scoring == "exact" and self.num_reordering_candidates:
            raise ValueError('ScannSettings with scoring="exact" re-score nothing: leave num_reordering_candidates 0')

    def label(self) -> str:
        leaves = f"ScaNN {self.num_leaves_to_search}/{self.num_leaves} leaves"
        if self.scoring == "exact":
            return f"{leaves}, exact scores (scann)"
        return f"{leaves}, reorder {self.num_reordering_candidates} (TFRS)"


# Settings compared by lesson 6 and the serving benchmark. The first two are TFRS's
# ScaNN layer (compressed scores, then the best few hundred re-scored exactly).
SCANN_SETTINGS: tuple[ScannSettings, ...] = (
    ScannSettings(num_leaves=500, num_leaves_to_search=10, num_reordering_candidates=200),
    # Re-scoring 300 candidates exactly is what lifts recall@100 above 0.95 with compressed scores.
    ScannSettings(num_leaves=500, num_leaves_to_search=15, num_reordering_candidates=300),
    # For 32-d vectors, scoring the candidates of the searched leaves exactly costs less
    # than compressing and re-scoring: 12 of 500 leaves (about 2.4% of the candidates)
    # find about 97% of the top 100 of the benchmark's clustered vectors.
    ScannSettings(num_leaves=500, num_leaves_to_search=12, scoring="exact"),
)
# The settings lesson 6 recommends, and the serving benchmark checks: SCANN_SETTINGS[RECOMMENDED].
RECOMMENDED = 2


@contextlib.contextmanager
def _native_logs_held_back() -> Iterator[None]:
    """Keep what C++ code writes to file descriptor 2 out of the output, unless the block fails.

    ScaNN's clustering logs INFO lines ("PartitionerFactory ran in ...") straight to the
    process's stderr, past Python's ``sys.stderr``, so a notebook would show them.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def build_scann(candidates: np.ndarray, settings: ScannSettings, k: int = 100):
    """A ScaNN approximate index over candidate vectors (identifiers are the row numbers).

    Args:
        candidates: shape (candidates, dim).
        settings: the index's settings; ``settings.scoring`` decides how it is built.
        k: the default number of results.

    Returns:
        For ``"ah"`` scoring, a ``tfrs.layers.factorized_top_k.ScaNN`` layer,
        indexed; for ``"exact"`` scoring, a searcher from
        ``scann.scann_ops_pybind.builder(...).tree(...).score_brute_force().build()``.
        Query either with :func:`scann_top_k`.
    """
    candidates = np.ascontiguousarray(candidates, dtype=np.float32)
    with _native_logs_held_back():
        if settings.scoring == "exact":
            import scann

            return (
                scann.scann_ops_pybind.builder(candidates, k, "dot_product")
                .tree(num_leaves=settings.num_leaves, num_leaves_to_search=settings.num_leaves_to_search)
                .score_brute_force()
                .build()
            )
        import tensorflow as tf
        import tensorflow_recommenders as tfrs

        index = tfrs.layers.factorized_top_k.ScaNN(
            k=k,
            num_leaves=settings.num_leaves,
            num_leaves_to_search=settings.num_leaves_to_search,
            num_reordering_candidates=settings.num_reordering_candidates,
            dimensions_per_block=settings.dimensions_per_block,
        )
        index.index(tf.constant(candidates))
        return index


def scann_top_k(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Query an index from :func:`build_scann` with query vectors; return numpy ``(scores, indices)``, best first."""
    if hasattr(index, "search_batched_parallel"):  # the scann package's own searcher
        indices, scores = index.search_batched_parallel(
            np.ascontiguousarray(queries, dtype=np.float32), final_num_neighbors=k
        )
        return np.asarray(scores), np.asarray(indices, dtype=np.int64)
    return brute_force_top_k(index, queries, k)
