"""Serving retrieval: exact top-k fast, approximate top-k with ScaNN, and how to compare them.

A two-tower model serves recommendations by scoring a query (user) vector
against every candidate (item) vector and keeping the k best. This module has
the pieces lesson 6 and ``python -m tfrs_course.benchmarks serving`` measure:

- :func:`exact_top_k`: exact top-k in numpy, in blocks of queries, several
  times faster than TFRS's ``BruteForce`` on a CPU. It returns exactly what a
  full sort returns: scores descending, ties broken by the lower candidate index
  (as ``tf.math.top_k`` breaks them).
- :func:`reference_top_k`: the same result the slow, obvious way (one stable
  sort of every score), for tests.
- :func:`build_scann` and :func:`scann_top_k`: an approximate index through
  ``tfrs.layers.factorized_top_k.ScaNN``.
- :func:`build_brute_force` and :func:`brute_force_top_k`: TFRS's exact index,
  the reference for speed.
- :func:`recall_at_k`, :func:`median_seconds` and :func:`clustered_vectors`.

TensorFlow is imported only by the functions that need it, so ``exact_top_k``
works without it; import ``tfrs_course`` before TensorFlow as everywhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

# Candidates per group in exact_top_k's first pass; see there. 16 balances the
# cost of the per-group maxima against the number of shortlisted scores.
GROUP_SIZE = 16
# Queries per block: a block's scores (100 x 61,704 float32, 25 MB) stay in the
# CPU's last-level cache, so gathering the shortlist from them is cheap.
QUERY_BLOCK = 100


def reference_top_k(queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by scoring everything and sorting: slow, obviously right.

    Args:
        queries: shape (queries, dim).
        candidates: shape (candidates, dim).
        k: how many candidates per query; more than there are gives all of them.

    Returns:
        ``(scores, indices)``, each of shape (queries, min(k, candidates)): the
        best dot products, descending, and the candidates' row numbers; equal
        scores are ordered by row number, ascending.
    """
    scores = np.asarray(queries, dtype=np.float32) @ np.asarray(candidates, dtype=np.float32).T
    indices = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, scores.shape[1])]
    return np.take_along_axis(scores, indices, axis=1), indices


def exact_top_k(
    queries: np.ndarray,
    candidates: np.ndarray,
    k: int,
    *,
    query_block: int = QUERY_BLOCK,
    group_size: int = GROUP_SIZE,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by dot product, the same result as :func:`reference_top_k`, fast.

    Sorting every score is what makes brute force slow: 2,000 queries x 61,704
    candidates are 123 million scores. This function sorts almost none of them.
    For each block of queries it:

    1. scores the block against all candidates (one matrix product, into a
       buffer that is reused, because fresh memory costs more than the product);
    2. puts the candidates in groups of ``group_size`` and takes each group's
       best score. Group ``g`` holds candidates ``g``, ``g + G``, ``g + 2G``...
       (``G`` groups in all), so the maxima are an element-wise maximum of
       ``group_size`` contiguous slices, which numpy vectorises well;
    3. keeps the k groups with the highest maxima: the k best candidates must
       lie in them, because a candidate outside has k better group maxima above it;
    4. partitions the k x group_size shortlisted scores (``np.argpartition``) to
       get the top k, and sorts those k by score, then by index.

    Exact ties can make steps 3 and 4 pick an arbitrary one of several equal
    candidates; rows where that may have happened are rare outside constructed
    tests and are redone with a full stable sort, so the result is always the
    same as :func:`reference_top_k`'s. Blocks of queries run in ``workers``
    threads: numpy's matrix product, reductions and partitions release the GIL.

    Args:
        queries: shape (queries, dim).
        candidates: shape (candidates, dim).
        k: how many candidates per query; more than there are gives all of them.
        query_block: queries scored together.
        group_size: candidates per group in step 2.
        workers: threads; 1 by default, which leaves the matrix product to
            BLAS's own threads (faster on 2 cores).

    Returns:
        ``(scores, indices)`` as :func:`reference_top_k` returns them: float32
        scores descending, int64 row numbers, ties by row number ascending.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    candidates = np.ascontiguousarray(candidates, dtype=np.float32)
    count = len(candidates)
    k = min(k, count)
    if k == 0 or len(queries) == 0 or k * group_size >= count:
        # Too few candidates for the grouping to save anything.
        return reference_top_k(queries, candidates, k)
    groups = -(-count // group_size)
    padded = groups * group_size
    # Whole groups only: zero rows pad the candidates, and their scores are set
    # to -inf so that they are never chosen.
    padded_t = np.zeros((candidates.shape[1], padded), dtype=np.float32)
    padded_t[:, :count] = candidates.T
    member_offsets = (np.arange(group_size) * groups)[None, :, None]
    row_offsets = (np.arange(query_block) * padded)[:, None]
    scores_out = np.empty((len(queries), k), dtype=np.float32)
    indices_out = np.empty((len(queries), k), dtype=np.int64)

    def one_block(start: int, buffer: np.ndarray) -> None:
        block = queries[start : start + query_block]
        rows = len(block)
        scores = buffer[:rows]
        np.matmul(block, padded_t, out=scores)
        scores[:, count:] = -np.inf
        maxima = scores.reshape(rows, group_size, groups).max(axis=1)
        best_groups = np.argpartition(maxima, groups - k, axis=1)[:, groups - k :]
        # Groups in order read the scores in a more cache-friendly order, and
        # np.take on the flat buffer is about twice as fast as take_along_axis.
        best_groups.sort(axis=1)
        columns = (best_groups[:, None, :] + member_offsets).reshape(rows, -1)
        shortlist = scores.ravel().take(columns + row_offsets[:rows])
        chosen = np.argpartition(shortlist, shortlist.shape[1] - k, axis=1)[:, -k:]
        top_scores = np.take_along_axis(shortlist, chosen, axis=1)
        top_indices = np.take_along_axis(columns, chosen, axis=1)
        order = np.lexsort((top_indices, -top_scores), axis=1)
        top_scores = np.take_along_axis(top_scores, order, axis=1)
        top_indices = np.take_along_axis(top_indices, order, axis=1)
        # Where more candidates (or groups) than k tie at the cut, a partition
        # may have kept a tied one with a higher index: redo those rows exactly.
        kth_score = top_scores[:, -1:]
        kth_maximum = np.take_along_axis(maxima, best_groups, axis=1).min(axis=1, keepdims=True)
        unsure = ((shortlist >= kth_score).sum(axis=1) > k) | (
            ((maxima >= kth_maximum).sum(axis=1) > k) & (kth_score[:, 0] <= kth_maximum[:, 0])
        )
        for row in np.flatnonzero(unsure):
            top_scores[row], top_indices[row] = _top_k_with_ties(scores[row, :count], top_scores[row, -1], k)
        scores_out[start : start + rows] = top_scores
        indices_out[start : start + rows] = top_indices

    starts = list(range(0, len(queries), query_block))
    threads = max(1, min(workers or 1, len(starts)))
    buffers = [np.empty((min(query_block, len(queries)), padded), dtype=np.float32) for _ in range(threads)]
    if threads == 1:
        for start in starts:
            one_block(start, buffers[0])
    else:
        # Thread t handles every t-th block with its own buffer.
        def worker(thread: int) -> None:
            for start in starts[thread::threads]:
                one_block(start, buffers[thread])

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(worker, range(threads)))
    return scores_out, indices_out


def _top_k_with_ties(scores: np.ndarray, kth_score: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One row's exact top k when its k-th best score is known: ties go to the lowest indices.

    Everything above ``kth_score`` is in; of the candidates equal to it, the
    first ones by index fill the remaining places.
    """
    above = np.flatnonzero(scores > kth_score)
    tied = np.flatnonzero(scores == kth_score)[: k - len(above)]
    chosen = np.concatenate([above, tied])
    order = np.lexsort((chosen, -scores[chosen]))
    return scores[chosen[order]], chosen[order]


def recall_at_k(approximate_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean share of each row's exact top-k that the approximate top-k also found.

    Args:
        approximate_ids: shape (rows, k), ids from an approximate index.
        exact_ids: shape (rows, k), the exact top-k ids of the same queries.

    Returns:
        A float in [0, 1]: the average over rows of |approximate & exact| / k.
        0.0 for no rows. Order within a row does not matter.
    """
    approximate_ids, exact_ids = np.asarray(approximate_ids), np.asarray(exact_ids)
    if exact_ids.size == 0:
        return 0.0
    found = sum(len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approximate_ids, exact_ids, strict=True))
    return found / exact_ids.size


def median_seconds(function: Callable[[], object], repeats: int = 5, warmups: int = 1) -> float:
    """Median wall time of ``function()`` over ``repeats`` calls, after ``warmups`` untimed calls.

    The warm-up absorbs one-off costs (tracing a tf.function, loading a ScaNN
    searcher, faulting in memory); the median ignores a call slowed by another
    process.

    Args:
        function: called with no arguments.
        repeats: timed calls.
        warmups: untimed calls first.

    Returns:
        Seconds.
    """
    for _ in range(warmups):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def clustered_vectors(count: int, dim: int, *, clusters: int = 200, spread: float = 0.35, seed: int = 0) -> np.ndarray:
    """Seeded vectors that cluster like trained embeddings do.

    Trained item vectors are not spread evenly: items of one brand or product
    group sit near each other. Uniform random vectors are the worst case for an
    approximate index and not what it meets in practice, so benchmarks use
    points scattered around ``clusters`` random centres.

    Args:
        count: how many vectors.
        dim: their length.
        clusters: how many centres.
        spread: the scatter around a centre, relative to the spread of centres.
        seed: the random seed.

    Returns:
        A float32 array of shape (count, dim).
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    members = rng.integers(0, clusters, count)
    return (centres[members] + spread * rng.standard_normal((count, dim))).astype(np.float32)


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


def compare_indexes(
    queries: np.ndarray,
    candidates: np.ndarray,
    k: int = 100,
    *,
    scann_settings: Sequence[ScannSettings] = SCANN_SETTINGS,
    repeats: int = 5,
    recall: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> list[dict[str, float | str]]:
    """Time TFRS BruteForce, :func:`exact_top_k` and ScaNN on the same queries; recall against exact.

    Args:
        queries: shape (queries, dim).
        candidates: shape (candidates, dim).
        k: results per query.
        scann_settings: the ScaNN settings to try.
        repeats: timed runs per method (after one warm-up); the median is reported.
        recall: computes recall from (found ids, exact ids); :func:`recall_at_k` if
            None (lesson 6 passes the student's own).

    Returns:
        One dict per method: ``method``, ``seconds`` (median wall time for all
        queries), ``recall`` (recall@k against the exact top k) and
        ``build_seconds`` (time to build the index; 0 for exact_top_k).
    """
    recall = recall or recall_at_k
    rows = []
    started = time.perf_counter()
    brute_force = build_brute_force(candidates, k)
    built = time.perf_counter() - started
    _, truth = brute_force_top_k(brute_force, queries, k)
    rows.append({
        "method": "TFRS BruteForce", "build_seconds": built,
        "seconds": median_seconds(lambda: brute_force_top_k(brute_force, queries, k), repeats),
        "recall": recall(truth, truth),
    })  # fmt: skip
    _, exact = exact_top_k(queries, candidates, k)
    rows.append({
        "method": "exact_top_k (numpy)", "build_seconds": 0.0,
        "seconds": median_seconds(lambda: exact_top_k(queries, candidates, k), repeats),
        "recall": recall(exact, truth),
    })  # fmt: skip
    for settings in scann_settings:
        started = time.perf_counter()
        index = build_scann(candidates, settings, k)
        built = time.perf_counter() - started
        _, found = scann_top_k(index, queries, k)
        rows.append({
            "method": settings.label(), "build_seconds": built,
            "seconds": median_seconds(lambda index=index: scann_top_k(index, queries, k), repeats),
            "recall": recall(found, exact),
        })  # fmt: skip
    return rows
