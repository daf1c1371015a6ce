"""Autograder tests for lesson 1: baseline metrics.

Each test calls the student's function and the reference solution (from
``solutions/``) on the same inputs and compares the plain-data results.
"""

import numpy as np
import pandas as pd

from tfrs_course.grading import describe_call, expect_same, graded


def _interactions(user_ids, item_ids):
    return pd.DataFrame({"user_no": list(user_ids), "item_no": list(item_ids)})


def _random_interactions(seed, n_rows, n_users, n_items):
    """Random pairs with many equal counts, so tie-breaking matters."""
    rng = np.random.default_rng(seed)
    users = rng.integers(-(2**40), 2**40, size=n_users).astype(str)
    items = rng.integers(-(2**40), 2**40, size=n_items).astype(str)
    frame = _interactions(rng.choice(users, n_rows), rng.choice(items, n_rows))
    return frame.drop_duplicates().reset_index(drop=True)


def _compare(student, reference, function, *args, hint, **kwargs):
    expected = reference.call(function, *args, **kwargs)
    got = student.call(function, *args, **kwargs)
    expect_same(got, expected, call=describe_call(function, *args, **kwargs), hint=hint)


# --- select_top_users ------------------------------------------------------------

ORDER_HINT = "Sort by count, largest first, then by user_no ascending for ties; return a list of str."


@graded("select_top_users", points=1)
def test_select_top_users_small_table(student, reference):
    train = _interactions(["u1", "u2", "u2", "u3", "u3", "u3"], ["a", "a", "b", "a", "b", "c"])
    _compare(student, reference, "select_top_users", train, 2, hint=ORDER_HINT)


@graded("select_top_users", points=1)
def test_select_top_users_breaks_ties_by_id(student, reference):
    train = _interactions(["30", "3", "-12", "3", "30", "-12", "7"], list("abcdefg"))
    _compare(
        student, reference, "select_top_users", train, 2,
        hint="Three users have two rows each: keep the two smallest ids in text order ('-12' < '3' < '30').",
    )  # fmt: skip


@graded("select_top_users", points=1, hidden=True)
def test_select_top_users_n_larger_than_users(student, reference):
    train = _interactions(["b", "a", "b"], ["x", "y", "z"])
    _compare(student, reference, "select_top_users", train, 10, hint="With fewer users than n, return them all.")


@graded("select_top_users", points=1, hidden=True)
def test_select_top_users_random_tables(student, reference):
    for seed in range(3):
        train = _random_interactions(seed, n_rows=400, n_users=60, n_items=40)
        _compare(student, reference, "select_top_users", train, 25, hint=ORDER_HINT)


# --- most_popular_items ------------------------------------------------------------

POPULAR_HINT = (
    "The most popular item comes first: sort counts in descending order, then item_no ascending. "
    "If your list starts with the rarest items, the sort is ascending."
)


@graded("most_popular_items", points=1)
def test_most_popular_items_small_table(student, reference):
    train = _interactions(["u1", "u2", "u3", "u1", "u2", "u1"], ["a", "a", "a", "b", "b", "c"])
    _compare(student, reference, "most_popular_items", train, 2, hint=POPULAR_HINT)


@graded("most_popular_items", points=1, hidden=True)
def test_most_popular_items_ties_and_short_catalogue(student, reference):
    train = _interactions(["u1", "u2", "u1", "u2", "u3"], ["9", "10", "10", "9", "11"])
    _compare(student, reference, "most_popular_items", train, 5, hint=POPULAR_HINT)


@graded("most_popular_items", points=1, hidden=True)
def test_most_popular_items_random_tables(student, reference):
    for seed in range(3):
        train = _random_interactions(100 + seed, n_rows=500, n_users=80, n_items=50)
        _compare(student, reference, "most_popular_items", train, 20, hint=POPULAR_HINT)


# --- top_k_accuracy ------------------------------------------------------------------

ACCURACY_HINT = (
    "For each k, a row is a hit if its true id is among its first k retrieved ids; "
    "the accuracy is the share of rows that are hits."
)
ONCE_HINT = (
    "A value above the expected one usually means a row with the true id twice in its list "
    "was counted twice: count each row at most once (np.any over the first k columns)."
)
CUTOFF_HINT = (
    "Check the slice: the first k columns are retrieved[:, :k], and a k longer than the list "
    "uses the whole list. An off-by-one in k shifts every value."
)


@graded("top_k_accuracy", points=1)
def test_top_k_accuracy_small_example(student, reference):
    true_ids = np.array(["a", "b", "c", "d"])
    retrieved = np.array([["a", "x", "y"], ["x", "b", "y"], ["x", "y", "c"], ["x", "y", "z"]])
    _compare(student, reference, "top_k_accuracy", true_ids, retrieved, [1, 2, 3], hint=CUTOFF_HINT)


@graded("top_k_accuracy", points=1)
def test_top_k_accuracy_counts_repeated_matches_once(student, reference):
    true_ids = np.array(["a", "b"])
    retrieved = np.array([["a", "a", "a"], ["x", "b", "b"]])
    _compare(student, reference, "top_k_accuracy", true_ids, retrieved, [1, 3], hint=ONCE_HINT)


@graded("top_k_accuracy", points=1, hidden=True)
def test_top_k_accuracy_k_longer_than_list(student, reference):
    true_ids = np.array(["a", "b", "c"])
    retrieved = np.array([["x", "a"], ["b", "y"], ["x", "y"]])
    _compare(student, reference, "top_k_accuracy", true_ids, retrieved, [1, 2, 5, 100], hint=CUTOFF_HINT)


@graded("top_k_accuracy", points=1, hidden=True)
def test_top_k_accuracy_no_rows(student, reference):
    true_ids = np.array([], dtype=str)
    retrieved = np.empty((0, 5), dtype=str)
    _compare(
        student, reference, "top_k_accuracy", true_ids, retrieved, [1, 5],
        hint="With no rows, return 0.0 for every k instead of dividing by zero (or returning nan).",
    )  # fmt: skip


@graded("top_k_accuracy", points=1, hidden=True)
def test_top_k_accuracy_random_lists(student, reference):
    rng = np.random.default_rng(7)
    catalogue = rng.integers(0, 2**40, size=30).astype(str)
    for rows, length in [(200, 50), (57, 10)]:
        true_ids = rng.choice(catalogue, rows)
        retrieved = rng.choice(catalogue, (rows, length))  # small catalogue: many repeats per row
        _compare(
            student, reference, "top_k_accuracy", true_ids, retrieved, [1, 5, 10, 50, 100],
            hint=f"{ACCURACY_HINT} {ONCE_HINT}",
        )  # fmt: skip
