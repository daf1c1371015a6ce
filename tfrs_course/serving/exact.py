"""Exact top-k by dot product in numpy: the obvious way, and a fast way with the same result.

- :func:`reference_top_k` scores everything and sorts every row: slow, obviously right.
- :func:`exact_top_k` returns exactly what it returns (scores descending, ties
  broken by the lower candidate index, as ``tf.math.top_k`` breaks them), several
  times faster than TFRS's ``BruteForce`` on a CPU.

Neither needs TensorFlow.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Candidates per group in exact_top_k's second step; see there. Smaller groups
# shortlist fewer scores; below 8 the table of shortlisted groups grows instead.
GROUP_SIZE = 8
# Queries per block: a block's scores (64 x 64,000 float32, 16 MB) stay in the
# CPU's last-level cache while the block is searched.
QUERY_BLOCK = 64
# Bins per result in exact_top_k's threshold (step 3): more bins give a tighter
# threshold (fewer shortlisted groups) at the price of a longer partition.
BINS_PER_RESULT = 8


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

    1. scores the block against all candidates (one matrix product into a
       reused buffer: fresh memory costs more than the product itself);
    2. puts the candidates in groups of ``group_size`` and takes each group's
       best score. Group ``g`` holds candidates ``g``, ``g + G``, ``g + 2G``...
       (``G`` groups in all), so the maxima are an element-wise maximum of
       ``group_size`` contiguous slices, which numpy vectorises well;
    3. finds a threshold that at least k candidates reach: the groups are put
       in ``8 k`` bins the same way, and the threshold is the k-th best of the
       bins' maxima (k different candidates reach it, one per bin). Partitioning
       ``8 k`` bin maxima is much cheaper than partitioning every group;
    4. shortlists every group whose best score reaches the threshold (about k
       of them): every candidate that can be in the top k is in one, because
       the k-th best score is at least the threshold;
    5. finds the k-th best shortlisted score with ``np.partition``, keeps the k
       scores that reach it and sorts them by score, then by index.

    Where exact ties at the k-th score leave more than k candidates, the row is
    redone from all its scores (rare outside constructed tests), so the result
    is always the same as :func:`reference_top_k`'s. Blocks of queries run in ``workers`` threads,
    each with a one-thread matrix product: numpy releases the GIL in all of them.

    Args:
        queries: shape (queries, dim).
        candidates: shape (candidates, dim).
        k: how many candidates per query; more than there are gives all of them.
        query_block: queries scored together.
        group_size: candidates per group in step 2.
        workers: threads; by default one per CPU core (at most one per block) when
            numpy's BLAS thread count can be set (it is 1 during the call, then as before), else 1.

    Returns:
        ``(scores, indices)`` as :func:`reference_top_k` returns them: float32
        scores descending, int64 row numbers, ties by row number ascending.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    candidates = np.ascontiguousarray(candidates, dtype=np.float32)
    count = len(candidates)
    k = min(k, count)
    if k == 0 or len(queries) == 0 or count < 2 * group_size * k:
        # Too few candidates for the grouping to save anything.
        return reference_top_k(queries, candidates, k)
    bins = min(BINS_PER_RESULT * k, count // (2 * group_size))
    groups = bins * -(-count // (group_size * bins))  # a whole number of groups per bin
    padded = groups * group_size
    # Zero rows pad the candidates to whole groups; their scores are set to -inf so
    # that they are never chosen. Group g's first member (column g) is always real.
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
        bin_maxima = maxima.reshape(rows, groups // bins, bins).max(axis=1)
        threshold = np.partition(bin_maxima, bins - k, axis=1)[:, bins - k, None]
        # The shortlisted groups, row by row, as a (rows, width) table; short rows are
        # padded with group 0, whose scores are then masked out.
        flat = np.flatnonzero(maxima >= threshold)
        row_of, group_of = np.divmod(flat, groups)
        per_row = np.bincount(row_of, minlength=rows)
        place = np.arange(len(flat)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
        width = int(per_row.max())
        chosen = np.zeros((rows, width), dtype=np.int64)
        chosen[row_of, place] = group_of
        unused = np.ones((rows, 1, width), dtype=bool)
        unused[row_of, 0, place] = False
        columns = (chosen[:, None, :] + member_offsets).reshape(rows, -1)
        shortlist = scores.ravel().take(columns + row_offsets[:rows])
        shortlist[np.broadcast_to(unused, (rows, group_size, width)).reshape(rows, -1)] = -np.inf
        # The k-th best score of each row; partitioning values is cheaper than argpartition.
        kth = np.partition(shortlist, shortlist.shape[1] - k, axis=1)[:, shortlist.shape[1] - k, None]
        taken = shortlist >= kth
        # Where more than k candidates reach the k-th score, ties decide: those rows
        # are redone below from all their scores.
        cut_tie = np.flatnonzero(taken.sum(axis=1) != k)
        taken[cut_tie] = False
        taken[cut_tie, :k] = True
        picked = np.flatnonzero(taken)
        top_scores = shortlist.ravel()[picked].reshape(rows, k)
        top_indices = columns.ravel()[picked].reshape(rows, k)
        order = np.argsort(-top_scores, axis=1)
        top_scores = np.take_along_axis(top_scores, order, axis=1)
        top_indices = np.take_along_axis(top_indices, order, axis=1)
        # Equal scores inside the top k go by index.
        for row in np.flatnonzero((top_scores[:, 1:] == top_scores[:, :-1]).any(axis=1)):
            by_index = np.lexsort((top_indices[row], -top_scores[row]))
            top_scores[row], top_indices[row] = top_scores[row, by_index], top_indices[row, by_index]
        for row in cut_tie:
            top_scores[row], top_indices[row] = _top_k_with_ties(scores[row, :count], kth[row, 0], k)
        scores_out[start : start + rows] = top_scores
        indices_out[start : start + rows] = top_indices

    starts = list(range(0, len(queries), query_block))
    if workers is None:
        # Without a way to give BLAS one thread, one thread and BLAS's own threads are faster.
        workers = (os.cpu_count() or 1) if _openblas_threads() else 1
    threads = max(1, min(workers, len(starts)))
    buffers = [np.empty((min(query_block, len(queries)), padded), dtype=np.float32) for _ in range(threads)]
    if threads == 1:
        for start in starts:
            one_block(start, buffers[0])
    else:
        # Thread t handles every t-th block with its own buffer, and multiplies with
        # one BLAS thread: several threads each running a many-threaded product
        # would fight over the cores.
        def worker(thread: int) -> None:
            for start in starts[thread::threads]:
                one_block(start, buffers[thread])

        with _blas_threads(1), ThreadPoolExecutor(max_workers=threads) as pool:
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


@functools.cache
def _openblas_threads() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """Getter and setter of the thread count of numpy's own OpenBLAS, if it has one.

    Linux and macOS wheels of numpy bundle OpenBLAS in ``numpy.libs`` or
    ``numpy/.dylibs`` (numpy 2's under ``scipy_``-prefixed names); other builds
    (Accelerate, MKL) are left alone.
    """
    numpy_dir = os.path.dirname(np.__file__)
    found = glob.glob(os.path.join(numpy_dir, os.pardir, "numpy.libs", "*openblas*"))
    found += glob.glob(os.path.join(numpy_dir, ".dylibs", "*openblas*"))
    names = [
        ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
        ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
        ("openblas_get_num_threads", "openblas_set_num_threads"),
    ]
    for path in found:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in names:
            getter, setter = getattr(library, get_name, None), getattr(library, set_name, None)
            if getter is not None and setter is not None:
                getter.argtypes, getter.restype = [], ctypes.c_int
                setter.argtypes, setter.restype = [ctypes.c_int], None
                return getter, setter
    return None


@contextlib.contextmanager
def _blas_threads(count: int) -> Iterator[None]:
    """Within it, numpy's matrix products use ``count`` BLAS threads (where that can be set); then as before.

    OpenBLAS's thread count is one for the whole process, so it is set once here,
    around the threads that multiply, and always put back: a caller's later
    products must not be left on one core.
    """
    controls = _openblas_threads()
    if controls is None:
        yield
        return
    get, set_ = controls
    previous = get()
    set_(count)
    try:
        yield
    finally:
        set_(previous)
