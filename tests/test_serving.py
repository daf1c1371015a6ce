"""tfrs_course.serving against plain numpy: exact top-k is exact, ScaNN's recall is high. No timings."""

import subprocess
import sys

import numpy as np
import pytest

import tfrs_course  # noqa: F401  (before TensorFlow: legacy Keras)
from tfrs_course import serving
from tfrs_course.environment import subprocess_environment


def _numpy_top_k(queries, candidates, k):
    """The top k the plain way: every score, one stable sort per row (ties: lower index first)."""
    scores = queries.astype(np.float32) @ candidates.astype(np.float32).T
    indices = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, indices, axis=1), indices


@pytest.mark.parametrize(
    ("queries", "candidates", "k", "group_size", "workers"),
    [
        (300, 20_000, 100, 8, 2),  # the grouped path, many query blocks, two threads
        (300, 20_000, 100, 16, 1),
        (7, 5_000, 13, 32, None),
        (5, 40, 100, 8, None),  # k larger than the candidates: all of them
        (3, 500, 500, 8, None),  # too few candidates to group: the plain path
    ],
)
def test_exact_top_k_equals_numpy_on_random_vectors(queries, candidates, k, group_size, workers):
    rng = np.random.default_rng(queries + candidates)
    q = rng.standard_normal((queries, 16)).astype(np.float32)
    c = rng.standard_normal((candidates, 16)).astype(np.float32)
    scores, indices = serving.exact_top_k(q, c, k, group_size=group_size, query_block=64, workers=workers)
    expected_scores, expected = _numpy_top_k(q, c, k)
    assert indices.shape == expected.shape == (queries, min(k, candidates))
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)


def test_exact_top_k_on_clustered_vectors_like_the_benchmark():
    q = serving.clustered_vectors(130, 32, seed=7)
    c = serving.clustered_vectors(30_000, 32, seed=8)
    _, indices = serving.exact_top_k(q, c, 100)
    np.testing.assert_array_equal(indices, _numpy_top_k(q, c, 100)[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_exact_top_k_breaks_ties_like_a_stable_sort(workers):
    # Small integer vectors: scores tie in large numbers, at the k-th place and inside the top k.
    rng = np.random.default_rng(1)
    q = rng.integers(-1, 2, (90, 3)).astype(np.float32)
    c = rng.integers(-1, 2, (6_000, 3)).astype(np.float32)
    for k in (1, 7, 100):
        _, indices = serving.exact_top_k(q, c, k, query_block=32, workers=workers)
        np.testing.assert_array_equal(indices, _numpy_top_k(q, c, k)[1])


def test_exact_top_k_orders_ties_inside_the_top_k_by_index():
    # Distinct scores except a few exact duplicates: candidates repeated further down the list.
    rng = np.random.default_rng(2)
    c = rng.standard_normal((8_000, 8)).astype(np.float32)
    q = rng.standard_normal((40, 8)).astype(np.float32)
    best = _numpy_top_k(q, c, 20)[1]
    c[7_990:] = c[best[0, :10]]  # the first query's top 10 again, at higher indices
    _, indices = serving.exact_top_k(q, c, 30, query_block=16)
    np.testing.assert_array_equal(indices, _numpy_top_k(q, c, 30)[1])


def test_reference_top_k_and_identical_vectors():
    c = np.ones((3_000, 4), dtype=np.float32)  # every candidate ties with every other
    q = np.ones((2, 4), dtype=np.float32)
    _, indices = serving.exact_top_k(q, c, 50)
    np.testing.assert_array_equal(indices, np.tile(np.arange(50), (2, 1)))
    np.testing.assert_array_equal(serving.reference_top_k(q, c, 50)[1], indices)


def test_recall_at_k():
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert serving.recall_at_k(exact[:, ::-1], exact) == 1.0
    assert serving.recall_at_k(np.array([[1, 2, 9, 9], [8, 0, 0, 0]]), exact) == pytest.approx(3 / 8)
    assert serving.recall_at_k(np.empty((0, 3)), np.empty((0, 3))) == 0.0


def test_scann_finds_most_of_the_exact_top_k():
    queries = serving.clustered_vectors(200, 16, clusters=20, seed=1)
    candidates = serving.clustered_vectors(4_000, 16, clusters=20, seed=2)
    _, exact = _numpy_top_k(queries, candidates, 20)
    settings = serving.ScannSettings(num_leaves=20, num_leaves_to_search=8, num_reordering_candidates=200)
    _, found = serving.scann_top_k(serving.build_scann(candidates, settings, k=20), queries, 20)
    assert found.shape == (200, 20)
    assert serving.recall_at_k(found, exact) > 0.9


def test_brute_force_agrees_with_numpy():
    queries = serving.clustered_vectors(50, 8, seed=3)
    candidates = serving.clustered_vectors(2_000, 8, seed=4)
    _, tfrs_indices = serving.brute_force_top_k(serving.build_brute_force(candidates), queries, 10)
    np.testing.assert_array_equal(tfrs_indices, _numpy_top_k(queries, candidates, 10)[1])


def test_compare_indexes_reports_every_method():
    queries = serving.clustered_vectors(20, 8, seed=5)
    candidates = serving.clustered_vectors(3_000, 8, seed=6)
    settings = (serving.ScannSettings(num_leaves=10, num_leaves_to_search=10, num_reordering_candidates=100),)
    rows = serving.compare_indexes(queries, candidates, 10, scann_settings=settings, repeats=1)
    assert [row["method"] for row in rows] == ["TFRS BruteForce", "exact_top_k (numpy)", settings[0].label()]
    assert rows[0]["recall"] == rows[1]["recall"] == 1.0 and rows[2]["recall"] > 0.9
    assert all(row["seconds"] > 0 for row in rows)


def test_median_seconds_interleaved_times_each_function():
    calls = []
    seconds = serving.measure.median_seconds_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmups=1
    )
    assert calls == ["a", "b"] * 4  # in turns: one warm-up round, then three timed rounds
    assert set(seconds) == {"a", "b"} and all(value >= 0 for value in seconds.values())


def _adversarial_candidates():
    """Candidates built to trip a fast top-k: zero vectors, exact duplicates, very long and very short vectors."""
    rng = np.random.default_rng(9)
    candidates = rng.standard_normal((6_000, 8)).astype(np.float32)
    candidates[::7] = 0  # many zero vectors: every query scores them 0, a tie
    candidates[1_000:1_300] = candidates[5]  # 300 copies of one vector, more than k
    candidates[5_990:] = candidates[17]  # copies far down the catalogue
    candidates[3] *= 1e4  # one very long vector, first for most queries
    candidates[4] *= 1e-4  # one very short one
    return candidates


@pytest.mark.parametrize("k", [1, 50, 100, 250])
@pytest.mark.parametrize("workers", [1, 2])
def test_exact_top_k_on_adversarial_candidates(k, workers):
    candidates = _adversarial_candidates()
    rng = np.random.default_rng(k)
    queries = rng.standard_normal((70, 8)).astype(np.float32)
    queries[0] = 0  # a zero query: every candidate ties at 0, so the first k rows win
    queries[1] = -candidates[3]  # a query that puts the long vector last
    queries[2] = candidates[5]  # a query whose best is the 301 copies of candidates[5] (and itself)
    queries[3] *= 1e5
    _, indices = serving.exact_top_k(queries, candidates, k, query_block=16, workers=workers)
    np.testing.assert_array_equal(indices, _numpy_top_k(queries, candidates, k)[1])
    np.testing.assert_array_equal(indices[0], np.arange(k))


@pytest.mark.parametrize("count", [1, 2, 99])
def test_exact_top_k_with_fewer_candidates_than_k(count):
    rng = np.random.default_rng(count)
    candidates = rng.standard_normal((count, 4)).astype(np.float32)
    queries = rng.standard_normal((9, 4)).astype(np.float32)
    scores, indices = serving.exact_top_k(queries, candidates, 100)
    assert indices.shape == scores.shape == (9, count)
    np.testing.assert_array_equal(indices, _numpy_top_k(queries, candidates, 100)[1])
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_exact_scann_settings_score_the_searched_leaves_exactly():
    queries = serving.clustered_vectors(200, 16, clusters=20, seed=1)
    candidates = serving.clustered_vectors(4_000, 16, clusters=20, seed=2)
    settings = serving.ScannSettings(num_leaves=20, num_leaves_to_search=20, scoring="exact")
    scores, found = serving.scann_top_k(serving.build_scann(candidates, settings, k=20), queries, 20)
    expected_scores, exact = _numpy_top_k(queries, candidates, 20)
    # Every leaf searched and every score exact: the exact top 20 (ties aside, there are none here).
    assert serving.recall_at_k(found, exact) == 1.0
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)


def test_scann_settings_reject_unknown_scoring():
    with pytest.raises(ValueError, match="scoring"):
        serving.ScannSettings(num_leaves=10, num_leaves_to_search=2, scoring="fast")
    with pytest.raises(ValueError, match="num_reordering_candidates"):
        serving.ScannSettings(num_leaves=10, num_leaves_to_search=2)
    with pytest.raises(ValueError, match="re-score nothing"):
        serving.ScannSettings(num_leaves=10, num_leaves_to_search=2, num_reordering_candidates=50, scoring="exact")


def test_recommended_scann_settings_reach_the_recall_goal_on_the_benchmark_vectors():
    # The benchmark's catalogue and settings; fewer users keep the test short. Recall, not time.
    queries = serving.clustered_vectors(300, 32, seed=0)
    candidates = serving.clustered_vectors(61_704, 32, seed=1)
    settings = serving.SCANN_SETTINGS[serving.RECOMMENDED]
    _, found = serving.scann_top_k(serving.build_scann(candidates, settings, k=100), queries, 100)
    assert serving.recall_at_k(found, serving.exact_top_k(queries, candidates, 100)[1]) >= 0.95


def test_building_scann_indexes_keeps_their_native_logs_out_of_the_output():
    """ScaNN's C++ logs go straight to file descriptor 2; a lesson's output must not show them."""
    program = (
        "import tfrs_course\n"
        "from tfrs_course import serving\n"
        "vectors = serving.clustered_vectors(2_000, 8, clusters=10, seed=0)\n"
        "for settings in serving.SCANN_SETTINGS:\n"
        "    serving.build_scann(vectors, settings, k=10)\n"
        "print('built', flush=True)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=subprocess_environment(), check=False
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "built"
    assert "Partitioner" not in completed.stderr and "absl" not in completed.stderr, completed.stderr[-2000:]


def _numpy_blas_threads() -> int | None:
    """numpy's OpenBLAS thread count, read through the library itself (None for another BLAS)."""
    import ctypes
    import glob
    import os

    numpy_dir = os.path.dirname(np.__file__)
    for path in glob.glob(os.path.join(numpy_dir, os.pardir, "numpy.libs", "*openblas*")):
        library = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            getter = getattr(library, name, None)
            if getter is not None:
                getter.restype = ctypes.c_int
                return getter()
    return None


def test_exact_top_k_leaves_numpys_blas_threads_as_it_found_them():
    """Its threads multiply on one BLAS thread each; after the call, the caller's products must use every
    core again. (OpenBLAS's per-thread setting changed the whole process's count: after one call,
    every later matrix product in the notebook ran on one core, 1.5x slower here.)"""
    before = _numpy_blas_threads()
    if before is None:
        pytest.skip("numpy here does not use a bundled OpenBLAS")
    # Products big enough for OpenBLAS to consider its threads (it runs small ones on one).
    queries = serving.clustered_vectors(512, 32, seed=0)
    candidates = serving.clustered_vectors(20_000, 32, seed=1)
    found = serving.exact_top_k(queries, candidates, 10, workers=2)
    assert _numpy_blas_threads() == before
    assert np.array_equal(found[1], serving.reference_top_k(queries, candidates, 10)[1])
