"""Top-100 for 2,000 users over 61,704 items: TFRS BruteForce, exact_top_k and ScaNN.

Run ``python -m tfrs_course.benchmarks serving`` (or ``make bench-serving``).
The vectors are seeded and clustered (see
:func:`tfrs_course.serving.clustered_vectors`), 32-dimensional like the course's
towers; the catalogue has 61,704 items, as Babyshop does. Each method is timed
as the median of several runs after a warm-up, and its recall@100 is measured
against the exact top 100. These are benchmark figures, not tests: they vary
with the machine and with whatever else it is running.
"""

from __future__ import annotations

import os
import time

import tfrs_course  # noqa: F401  (before TensorFlow: legacy Keras)
from tfrs_course import serving

USERS = 2_000
ITEMS = 61_704
DIM = 32
K = 100
REPEATS = 7


def main() -> None:
    """Print a table: method, build seconds, median seconds for all users, recall@100."""
    queries = serving.clustered_vectors(USERS, DIM, seed=0)
    candidates = serving.clustered_vectors(ITEMS, DIM, seed=1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"top-{K} of {USERS:,} users x {ITEMS:,} items x {DIM} dims; {os.cpu_count()} CPU cores, "
        f"load average {load:.1f}; median of {REPEATS} runs after a warm-up"
    )
    started = time.perf_counter()
    rows = serving.compare_indexes(queries, candidates, K, repeats=REPEATS)
    reference = rows[0]["seconds"]
    print(f"{'method':<38}{'build s':>9}{'seconds':>10}{'vs BruteForce':>15}{'recall@100':>12}")
    for row in rows:
        print(
            f"{row['method']:<38}{row['build_seconds']:>9.2f}{row['seconds']:>10.4f}"
            f"{reference / row['seconds']:>14.1f}x{row['recall']:>12.4f}"
        )
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
