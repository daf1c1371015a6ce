"""Serving retrieval: exact top-k fast, approximate top-k with ScaNN, and how to compare them.

A two-tower model serves recommendations by scoring a query (user) vector
against every candidate (item) vector and keeping the k best. Lesson 6 and
``python -m tfrs_course.benchmarks serving`` use three modules, one job each:

- :mod:`~tfrs_course.serving.exact`: exact top-k in numpy,
  :func:`exact_top_k` (fast) and :func:`reference_top_k` (obvious, for tests);
- :mod:`~tfrs_course.serving.indexes`: TFRS's ``BruteForce`` layer and ScaNN
  indexes over candidate vectors, the ScaNN settings the lesson compares and
  the one it recommends (``SCANN_SETTINGS[RECOMMENDED]``);
- :mod:`~tfrs_course.serving.measure`: recall@k, median wall time,
  :func:`compare_indexes` (all of the above on the same queries) and the
  clustered vectors it is measured on.

Everything is importable from here: ``from tfrs_course.serving import exact_top_k``.
"""

from tfrs_course.serving.exact import exact_top_k, reference_top_k
from tfrs_course.serving.indexes import (
    RECOMMENDED,
    SCANN_SETTINGS,
    ScannSettings,
    brute_force_top_k,
    build_brute_force,
    build_scann,
    scann_top_k,
)
from tfrs_course.serving.measure import (
    clustered_vectors,
    compare_indexes,
    median_seconds,
    recall_at_k,
)

__all__ = [
    "RECOMMENDED",
    "SCANN_SETTINGS",
    "ScannSettings",
    "brute_force_top_k",
    "build_brute_force",
    "build_scann",
    "clustered_vectors",
    "compare_indexes",
    "exact_top_k",
    "median_seconds",
    "recall_at_k",
    "reference_top_k",
    "scann_top_k",
]
