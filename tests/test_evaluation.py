"""The shared evaluation helpers, checked against plain definitions."""

import numpy as np
import pandas as pd
import pytest

from tfrs_course.evaluation import factorized_top_k_accuracy, list_accuracy, retrieve


def _by_definition(queries, positives, candidates, ks):
    """One row at a time: count the candidates that score strictly above the true one."""
    hits = {k: 0 for k in ks}
    for query, positive in zip(queries, positives, strict=True):
        true_score = float(np.dot(query, positive))
        above = sum(float(np.dot(query, candidate)) > true_score for candidate in candidates)
        for k in ks:
            hits[k] += above < k
    return {k: hits[k] / len(queries) for k in ks}


@pytest.mark.parametrize("chunk_size", [1, 7, 2048])
def test_factorized_top_k_accuracy_matches_the_definition(chunk_size):
    rng = np.random.default_rng(3)
    candidates = rng.normal(size=(60, 5)).astype(np.float32)
    queries = rng.normal(size=(45, 5)).astype(np.float32)
    # Most true candidates come from the index; a few (like out-of-vocabulary items) do not.
    positives = candidates[rng.integers(0, 60, size=45)]
    positives[:5] = rng.normal(size=(5, 5))
    ks = [1, 3, 10, 50, 100]
    got = factorized_top_k_accuracy(queries, positives, candidates, ks, chunk_size=chunk_size)
    assert got == pytest.approx(_by_definition(queries, positives, candidates, ks))
    assert got[100] == 1.0 and got[1] < got[10]


def test_factorized_top_k_accuracy_without_rows():
    empty = np.zeros((0, 4), dtype=np.float32)
    assert factorized_top_k_accuracy(empty, empty, np.ones((3, 4)), [1, 5]) == {1: 0.0, 5: 0.0}


@pytest.mark.slow
def test_factorized_top_k_accuracy_agrees_with_tfrs():
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    rng = np.random.default_rng(11)
    # Small integers make every dot product exact in float32, so rounding cannot
    # decide a near-tie differently in TensorFlow and numpy; ties are frequent and
    # both sides must treat them the same way (only strictly higher scores count).
    candidates = rng.integers(-3, 4, size=(150, 8)).astype(np.float32)
    queries = rng.integers(-3, 4, size=(300, 8)).astype(np.float32)
    positives = candidates[rng.integers(0, 150, size=300)]
    ks = (1, 5, 10, 50, 100)
    metric = tfrs.metrics.FactorizedTopK(candidates=tf.data.Dataset.from_tensor_slices(candidates).batch(32), ks=ks)
    metric.update_state(tf.constant(queries), tf.constant(positives))
    expected = {k: float(value) for k, value in zip(ks, metric.result(), strict=True)}
    assert factorized_top_k_accuracy(queries, positives, candidates, ks) == pytest.approx(expected, abs=1e-6)


def test_lists_break_ties_by_candidate_order_and_miss_items_outside_the_pool():
    # One user; candidates a and b tie, c scores lower; z is not a candidate.
    users, user_vectors = ["u"], np.array([[1.0, 0.0]], dtype=np.float32)
    items = ["a", "b", "c"]
    item_vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.0]], dtype=np.float32)
    assert retrieve(users, user_vectors, items, item_vectors, ["u", "u"], 2).tolist() == [["a", "b"], ["a", "b"]]
    test = pd.DataFrame({"user_no": ["u", "u", "u"], "item_no": ["a", "b", "z"]})
    assert list_accuracy(users, user_vectors, items, item_vectors, test, [1, 3]) == {1: 1 / 3, 3: 2 / 3}
    # FactorizedTopK's number counts the tie (b) and the outsider (z, scored with its own vector) as hits.
    positives = np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0]], dtype=np.float32)
    assert factorized_top_k_accuracy(np.repeat(user_vectors, 3, axis=0), positives, item_vectors, [1]) == {1: 1.0}


def test_lists_need_a_vector_for_every_test_user():
    test = pd.DataFrame({"user_no": ["u", "stranger"], "item_no": ["a", "a"]})
    with pytest.raises(KeyError, match="stranger"):
        list_accuracy(["u"], np.ones((1, 2), np.float32), ["a"], np.ones((1, 2), np.float32), test, [1])
