"""Autograder tests for lesson 1: baseline metrics.

Each test calls the student's function and the reference solution (from
``solutions/``) on the same inputs and compares the plain-data results.
"""

import numpy as np
import pandas as pd

from tfrs_course.grading import graded
from tfrs_course.grading.assertions import Hint, compare_call, describe_call, expect_same, student_call

# Each exercise is worth 2 points per level of difficulty (docs/instructor.md, "Points").
DIFFICULTY = {"select_top_users": 1, "most_popular_items": 1, "top_k_accuracy": 2}


def _interactions(user_ids, item_ids):
    return pd.DataFrame({"user_no": list(user_ids), "item_no": list(item_ids)})


def _random_interactions(seed, n_rows, n_users, n_items):
    """Random pairs with many equal counts, so tie-breaking matters."""
    rng = np.random.default_rng(seed)
    users = rng.integers(-(2**40), 2**40, size=n_users).astype(str)
    items = rng.integers(-(2**40), 2**40, size=n_items).astype(str)
    frame = _interactions(rng.choice(users, n_rows), rng.choice(items, n_rows))
    return frame.drop_duplicates().reset_index(drop=True)


# Ties, laid out so that three orders differ: the order the ids first appear in
# ("9", "10", "-3", ...), their numeric order (-12 < -3 < 8 < 9 ...) and their text
# order ("-12" < "-3" < "10" < "25" ...). Only the text order is right, as the lesson
# says. Six tied ids, not three: with three, sorting the counts alone with the default
# (unstable) quicksort happened to give the text order, and only the hidden tests saw it.
TIED_IDS = ["9", "10", "-3", "25", "-12", "8"]
# The tests ask for the top id and the first four tied ones.
TIED_TOP = 5


def _tied_table(column):
    """One id with three rows, then six ids with two rows each, then one with one row."""
    ids = ["7", "7", "7", *TIED_IDS, *TIED_IDS, "100"]
    others = [f"x{i}" for i in range(len(ids))]
    return _interactions(ids, others) if column == "user_no" else _interactions(others, ids)


# --- select_top_users ------------------------------------------------------------

TOP_USERS_HINT = Hint(
    "Rank users by their number of rows, largest first; among users with equal counts, the smaller id "
    "in text order comes first (ids are text: '-3' < '10' < '9'), never the order they happen to appear "
    "in, and never their value as numbers. Return a list of str. Ids already in text order keep it through a "
    "sort on the counts alone only if that sort is stable: the default (quicksort) may reorder equal counts.",
    code="Count rows per user with groupby (or value_counts), then sort on two keys at once: the count "
    "descending and the id ascending (sort_values takes a list of columns and a list for `ascending`).",
)


@graded("select_top_users", points=0.5)
def test_select_top_users_small_table(student, reference):
    train = _interactions(["u1", "u2", "u2", "u3", "u3", "u3"], ["a", "a", "b", "a", "b", "c"])
    compare_call(student, reference, "select_top_users", train, 2, hint=TOP_USERS_HINT)


@graded("select_top_users", points=0.5)
def test_select_top_users_breaks_ties_by_id_as_text(student, reference):
    compare_call(student, reference, "select_top_users", _tied_table("user_no"), TIED_TOP, hint=TOP_USERS_HINT)


@graded("select_top_users", points=0.5, hidden=True)
def test_select_top_users_n_larger_than_users(student, reference):
    train = _interactions(["b", "a", "b"], ["x", "y", "z"])
    compare_call(student, reference, "select_top_users", train, 10, hint="With fewer users than n, return them all.")


@graded("select_top_users", points=0.5, hidden=True)
def test_select_top_users_random_tables(student, reference):
    for seed in range(3):
        train = _random_interactions(seed, n_rows=400, n_users=60, n_items=40)
        compare_call(student, reference, "select_top_users", train, 25, hint=TOP_USERS_HINT)


# --- most_popular_items ------------------------------------------------------------

POPULAR_HINT = Hint(
    "The most popular item comes first: order items by their number of rows, largest first (if your "
    "list starts with the rarest items, the sort is ascending); among equal counts, the smaller id in "
    "text order comes first ('-3' < '10' < '9'), not the order of appearance or the numeric value. A sort "
    "on the counts alone keeps ids in text order among ties only if it is stable (kind='stable'); the "
    "default quicksort may reorder them.",
    code="Count rows per item, then sort on the count descending and the item id ascending together.",
)


@graded("most_popular_items", points=0.5)
def test_most_popular_items_small_table(student, reference):
    train = _interactions(["u1", "u2", "u3", "u1", "u2", "u1"], ["a", "a", "a", "b", "b", "c"])
    compare_call(student, reference, "most_popular_items", train, 2, hint=POPULAR_HINT)


@graded("most_popular_items", points=0.5)
def test_most_popular_items_breaks_ties_by_id_as_text(student, reference):
    compare_call(student, reference, "most_popular_items", _tied_table("item_no"), TIED_TOP, hint=POPULAR_HINT)


@graded("most_popular_items", points=0.5, hidden=True)
def test_most_popular_items_ties_and_short_catalogue(student, reference):
    train = _interactions(["u1", "u2", "u1", "u2", "u3"], ["9", "10", "10", "9", "11"])
    compare_call(student, reference, "most_popular_items", train, 5, hint=POPULAR_HINT)


@graded("most_popular_items", points=0.5, hidden=True)
def test_most_popular_items_random_tables(student, reference):
    for seed in range(3):
        train = _random_interactions(100 + seed, n_rows=500, n_users=80, n_items=50)
        compare_call(student, reference, "most_popular_items", train, 20, hint=POPULAR_HINT)


# --- top_k_accuracy ------------------------------------------------------------------

ACCURACY_HINT = Hint(
    "For each k, a row is a hit if its true id is among its first k retrieved ids; "
    "the accuracy is the share of rows that are hits.",
    code="Compare the whole table with the true ids in one broadcast (true ids as a column), "
    "then ask, per row, whether any of the first k columns matched, and average.",
)
ONCE_HINT = Hint(
    "A value above the expected one usually means a row with the true id twice in its list "
    "was counted twice: a row is one hit at most, however many of its first k ids match.",
    code="Reduce each row's first k matches with a logical 'any', not a sum.",
)
RAISED_HINT = (
    Hint(
        "If numpy said the operands could not be broadcast: the true ids have shape (rows,) and the first k "
        "columns shape (rows, k), and numpy lines a 1-d array up with the columns, not the rows. Make the true "
        "ids a column, shape (rows, 1), so that each row's true id is compared with that row's retrieved ids. "
        "If it said an index is out of bounds: a k longer than the list uses the whole list, so column k - 1 "
        "may not exist."
    )
    + ACCURACY_HINT
)
CUTOFF_HINT = Hint(
    "Check which columns you look at: the first k columns, and the whole list when k is longer "
    "than the list. An off-by-one in k shifts every value.",
    code="Python slices stop before their end index: the first k columns are columns 0 to k - 1.",
)


def _check_top_k(student, reference, true_ids, retrieved, ks, hint):
    """Compare with the reference; if the student's code raised, the hint is about shapes, whatever the test."""
    expected = reference.call("top_k_accuracy", true_ids, retrieved, ks)
    got = student_call(student, "top_k_accuracy", true_ids, retrieved, ks, hint=RAISED_HINT)
    expect_same(got, expected, call=describe_call("top_k_accuracy", true_ids, retrieved, ks), hint=hint)


@graded("top_k_accuracy", points=1)
def test_top_k_accuracy_small_example(student, reference):
    true_ids = np.array(["a", "b", "c", "d"])
    retrieved = np.array([["a", "x", "y"], ["x", "b", "y"], ["x", "y", "c"], ["x", "y", "z"]])
    # k = 5 is longer than the lists: an answer that reads column k - 1 must show it here, not only at grading.
    _check_top_k(student, reference, true_ids, retrieved, [1, 2, 3, 5], hint=CUTOFF_HINT)


@graded("top_k_accuracy", points=1)
def test_top_k_accuracy_counts_repeated_matches_once(student, reference):
    true_ids = np.array(["a", "b"])
    retrieved = np.array([["a", "a", "a"], ["x", "b", "b"]])
    _check_top_k(student, reference, true_ids, retrieved, [1, 3], hint=ONCE_HINT)


@graded("top_k_accuracy", points=0.5, hidden=True)
def test_top_k_accuracy_k_longer_than_list(student, reference):
    true_ids = np.array(["a", "b", "c"])
    retrieved = np.array([["x", "a"], ["b", "y"], ["x", "y"]])
    _check_top_k(student, reference, true_ids, retrieved, [1, 2, 5, 100], hint=CUTOFF_HINT)


@graded("top_k_accuracy", points=0.5, hidden=True)
def test_top_k_accuracy_no_rows(student, reference):
    true_ids = np.array([], dtype=str)
    retrieved = np.empty((0, 5), dtype=str)
    compare_call(
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
        _check_top_k(student, reference, true_ids, retrieved, [1, 5, 10, 50, 100], hint=ACCURACY_HINT + ONCE_HINT)
