"""Drivers for lesson 6: what a call of the student's ``blocked_top_k`` costs in memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np


def blocked_top_k_peak_memory(
    lookup: Callable[[str], Any], n_queries: int, n_candidates: int, dim: int, k: int, block: int, seed: int
) -> dict:
    """Call the student's ``blocked_top_k`` on seeded vectors and measure its peak memory.

    The vectors are made before measuring, so the peak is what the call itself
    allocated: NumPy reports its arrays to ``tracemalloc``. (Memory that
    TensorFlow allocates is not seen; the exercise is written in NumPy.)

    Args:
        lookup: returns the student's object of a name.
        n_queries: how many query vectors.
        n_candidates: how many candidate vectors.
        dim: their length.
        k: how many candidates per query.
        block: how many candidates to score at a time.
        seed: for the vectors.

    Returns:
        ``{"ids": the result, "peak_bytes": the most memory the call held at once}``.
    """
    rng = np.random.default_rng(seed)
    queries = rng.standard_normal((n_queries, dim))
    candidates = rng.standard_normal((n_candidates, dim))
    function = lookup("blocked_top_k")
    tracemalloc.start()
    try:
        ids = function(queries, candidates, k, block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {"ids": ids, "peak_bytes": int(peak)}
