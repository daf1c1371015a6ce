"""Measuring serving: recall against the exact top k, wall time, and vectors to measure on.

:func:`compare_indexes` is what lesson 6 and ``make bench-serving`` print: TFRS
``BruteForce``, :func:`~tfrs_course.serving.exact.exact_top_k` and ScaNN on the
same queries, timed alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from tfrs_course.serving.exact import exact_top_k
from tfrs_course.serving.indexes import (
    SCANN_SETTINGS,
    ScannSettings,
    brute_force_top_k,
    build_brute_force,
    build_scann,
    scann_top_k,
)


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
    return median_seconds_interleaved({"": function}, repeats, warmups)[""]


def median_seconds_interleaved(
    functions: dict[str, Callable[[], object]], repeats: int = 5, warmups: int = 1
) -> dict[str, float]:
    """Median wall time of each function, calling them in turn: one call of each per round.

    On a shared machine the load changes from second to second; taking turns
    exposes every function to the same changes, so their ratios stay fair.

    Args:
        functions: name -> a function called with no arguments.
        repeats: timed rounds.
        warmups: untimed rounds first.

    Returns:
        name -> seconds.
    """
    for _ in range(warmups):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return {name: float(np.median(seconds)) for name, seconds in times.items()}


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

    Every index is built first; then the methods are timed in turns (see
    :func:`median_seconds_interleaved`), so that a change in the machine's load
    slows them alike.

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
        queries), ``recall`` (recall@k against exact_top_k's top k) and
        ``build_seconds`` (time to build the index; 0 for exact_top_k).
    """
    recall = recall or recall_at_k
    started = time.perf_counter()
    brute_force = build_brute_force(candidates, k)
    rows = [{"method": "TFRS BruteForce", "build_seconds": time.perf_counter() - started}]
    searches = {"TFRS BruteForce": lambda: brute_force_top_k(brute_force, queries, k)}
    rows.append({"method": "exact_top_k (numpy)", "build_seconds": 0.0})
    searches["exact_top_k (numpy)"] = lambda: exact_top_k(queries, candidates, k)
    for settings in scann_settings:
        started = time.perf_counter()
        index = build_scann(candidates, settings, k)
        rows.append({"method": settings.label(), "build_seconds": time.perf_counter() - started})
        searches[settings.label()] = lambda index=index: scann_top_k(index, queries, k)
    _, truth = searches["exact_top_k (numpy)"]()
    seconds = median_seconds_interleaved(searches, repeats)
    for row in rows:
        _, found = searches[row["method"]]()
        row["seconds"] = seconds[row["method"]]
        row["recall"] = recall(found, truth)
    return rows
