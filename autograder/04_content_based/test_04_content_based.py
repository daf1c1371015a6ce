"""Autograder tests for lesson 4: content-based towers.

Functions of plain data are called with ``student.call``; the tower and the
index are built and exercised by the drivers in
``autograder/04_content_based/drivers.py``, which return plain data.
"""

import numpy as np
import pandas as pd

from tfrs_course.grading import describe_call, graded
from tfrs_course.grading.assertions import (
    Hint,
    compare_call,
    compare_run,
    expect_same,
    observed_runs,
    student_call,
)
from tfrs_course.grading.drivers import load

drivers = load("04_content_based")

# Each exercise is worth 2 points per level of difficulty (docs/instructor.md, "Points").
DIFFICULTY = {"content_vectors": 2, "user_vectors": 1, "frozen_tower": 2, "top_k_through_index": 1}


def _items(rows):
    """A small items table from (item_no, gender, brand, product_group) tuples."""
    frame = pd.DataFrame(rows, columns=["item_no", "gender_description", "brand", "product_group"])
    return frame.assign(colour="blue")[["item_no", "colour", "gender_description", "brand", "product_group"]]


SMALL_ITEMS = _items([
    ("i1", "girls", "molo", "tops"),
    ("i2", "boys", "reima", "coats and jackets"),
    ("i3", "unisex", "rare brand", "tops"),
    ("i4", "girls", "molo", "rare group"),
])  # fmt: skip
SMALL_VOCABULARIES = {
    "gender_description": ["boys", "girls", "unisex"],
    "brand": ["molo", "reima"],
    "product_group": ["tops", "coats and jackets"],
}


# The same items with their ids out of order, and features whose dict order and
# vocabulary orders are neither the usual nor alphabetical: rows must keep the table's
# order and columns the dict's, which SMALL_ITEMS and SMALL_VOCABULARIES cannot show.
SHUFFLED_ITEMS = SMALL_ITEMS.iloc[[2, 0, 3, 1]].reset_index(drop=True)
REORDERED_VOCABULARIES = {
    "product_group": ["tops", "coats and jackets"],
    "gender_description": ["unisex", "girls", "boys"],
    "brand": ["reima", "molo"],
}


def _random_items(seed, n_items):
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(-(2**40), 2**40, 2**20), size=n_items, replace=False).astype(str)
    genders = rng.choice(["boys", "girls", "unisex"], n_items)
    brands = rng.choice([f"brand {i}" for i in range(12)], n_items)
    groups = rng.choice([f"group {i}" for i in range(8)], n_items)
    return _items(zip(ids, genders, brands, groups, strict=True))


# --- content_vectors ---------------------------------------------------------------

VECTORS_HINT = Hint(
    "One-hot features: for each feature in the dict's order, one float32 column per vocabulary value in "
    "the vocabulary's order, then '<feature>=other' for every value not in the vocabulary; one row per "
    "item in the order of `items`, indexed by item_no.",
    code="Bucket each feature's rare values into 'other' first, then compare the bucketed column with "
    "each value to make a 0/1 column.",
)
COLUMN_ORDER_HINT = Hint(
    "Your columns are right but in another order. Features come in the order of the vocabularies "
    "dict's keys, whatever it is, and each feature's values in the order of its vocabulary list, "
    "then '<feature>=other': not a fixed feature order, and not sorted.",
    code="Loop over vocabularies.items() and over [*vocabulary, 'other'] to build the columns.",
)
ROW_ORDER_HINT = Hint(
    "Your rows are right but in another order. Rows come in the order of `items`, one per row of "
    "the table: not sorted by item_no.",
    code="Index the result by items['item_no'] as it is; do not sort the table or the index.",
)


def _vectors_hint(got, expected):
    """The hint for a wrong content_vectors result: the order rule it broke, if order is all that is wrong."""
    if isinstance(got, pd.DataFrame) and len(got) == len(expected):
        if list(got.columns) != list(expected.columns) and set(got.columns) == set(expected.columns):
            return COLUMN_ORDER_HINT
        if list(got.index) != list(expected.index) and set(got.index) == set(expected.index):
            return ROW_ORDER_HINT
    return VECTORS_HINT


def _compare_content_vectors(student, reference, items, vocabularies):
    """compare_call for content_vectors, with the hint that names what went wrong."""
    expected = reference.call("content_vectors", items, vocabularies)
    got = student_call(student, "content_vectors", items, vocabularies, hint=VECTORS_HINT)
    expect_same(
        got, expected, call=describe_call("content_vectors", items, vocabularies),
        hint=_vectors_hint(got, expected), check_index=True,
    )  # fmt: skip


SIDE_EFFECTS_HINT = Hint(
    "Your function changed the DataFrame it was given, or pandas warned about setting values on a "
    "copy of a slice (chained assignment). A function should build new objects, not write into its input.",
    code="Do not assign into `items`; build new Series with .where(...), .map(...) or .assign(...) on a copy.",
)


@graded("content_vectors", points=1)
def test_content_vectors_small_table(student, reference):
    _compare_content_vectors(student, reference, SHUFFLED_ITEMS, REORDERED_VOCABULARIES)


def _in_sorted_order(result):
    """A DataFrame with its rows and columns sorted, anything else as it is: order is the other tests' business."""
    if not isinstance(result, pd.DataFrame):
        return result
    try:
        return result.sort_index(axis=0).sort_index(axis=1)
    except TypeError:  # labels of mixed types cannot be sorted; the comparison then names the wrong labels
        return result


@graded("content_vectors", points=1)
def test_content_vectors_leaves_its_input_alone(student, reference):
    call = describe_call("content_vectors", SMALL_ITEMS, SMALL_VOCABULARIES)
    got, expected = observed_runs(
        student, reference, drivers.content_vectors_side_effects, SMALL_ITEMS, SMALL_VOCABULARIES, call=call,
        name="content_vectors", hint=SIDE_EFFECTS_HINT,
    )  # fmt: skip
    expect_same(
        got["input_after_the_call"], expected["input_after_the_call"], call=f"{call}: its input after the call",
        hint=SIDE_EFFECTS_HINT, check_index=True,
    )  # fmt: skip
    expect_same(
        got["pandas_warnings"], expected["pandas_warnings"], call=f"{call}: pandas' warnings during the call",
        hint=SIDE_EFFECTS_HINT,
    )  # fmt: skip
    # A function that returns nothing leaves its input alone too: it must not earn this point for it.
    expect_same(
        _in_sorted_order(got["result"]), _in_sorted_order(expected["result"]),
        call=f"{call}: its result (rows and columns sorted: order is checked by the other tests)",
        hint=VECTORS_HINT, check_index=True,
    )  # fmt: skip


@graded("content_vectors", points=1, hidden=True)
def test_content_vectors_random_tables(student, reference):
    for seed in range(2):
        items = _random_items(seed, 40)
        vocabularies = {
            "product_group": ["group 3", "group 0", "group 5"],
            "gender_description": ["unisex", "girls", "boys"],
            "brand": ["brand 7", "brand 1", "brand 2", "brand 11"],
        }
        _compare_content_vectors(student, reference, items, vocabularies)


@graded("content_vectors", points=1, hidden=True)
def test_content_vectors_everything_rare(student, reference):
    vocabularies = {"gender_description": ["girls"], "brand": [], "product_group": ["no such group"]}
    _compare_content_vectors(student, reference, SMALL_ITEMS, vocabularies)


# --- user_vectors ----------------------------------------------------------------------

MEAN_HINT = Hint(
    "Each user's row is the mean of their items' vectors: the sum divided by how many items they have. "
    "Values above 1 mean the vectors were summed, not averaged. Users sorted ascending (as text), "
    "columns as in item_vectors.",
    code="Look up each interaction's item vector (by item_no), then group the rows by user_no and average.",
)


def _item_vectors(reference, items, vocabularies):
    """The item vectors the user-vector tests start from: the reference's, never the student's."""
    return reference.call("content_vectors", items, vocabularies)


def _check_user_vectors_of_small_items(student, reference, interactions):
    item_vectors = _item_vectors(reference, SMALL_ITEMS, SMALL_VOCABULARIES)
    compare_call(student, reference, "user_vectors", interactions, item_vectors, hint=MEAN_HINT, check_index=True)


@graded("user_vectors", points=1)
def test_user_vectors_small_example(student, reference):
    interactions = pd.DataFrame({"user_no": ["u2", "u1", "u2", "u2"], "item_no": ["i1", "i2", "i4", "i3"]})
    _check_user_vectors_of_small_items(student, reference, interactions)


@graded("user_vectors", points=0.5, hidden=True)
def test_user_vectors_text_order_of_users(student, reference):
    # First seen 9, 10, -3; as numbers -3 < 9 < 10; as text "-3" < "10" < "9": only text order is right.
    interactions = pd.DataFrame({
        "user_no": ["9", "10", "-3", "10", "9", "-3", "-3"],
        "item_no": ["i1", "i2", "i3", "i4", "i2", "i1", "i4"],
    })  # fmt: skip
    _check_user_vectors_of_small_items(student, reference, interactions)


@graded("user_vectors", points=0.5, hidden=True)
def test_user_vectors_random_histories(student, reference):
    items = _random_items(5, 60)
    vectors = _item_vectors(
        reference,
        items,
        {"gender_description": ["girls", "boys"], "brand": ["brand 1"], "product_group": ["group 2", "group 4"]},
    )
    rng = np.random.default_rng(6)
    interactions = pd.DataFrame({
        "user_no": rng.choice(["a", "b", "c", "d", "e"], 80),
        "item_no": rng.choice(items["item_no"].to_numpy(), 80),
    }).drop_duplicates()  # fmt: skip
    compare_call(student, reference, "user_vectors", interactions, vectors, hint=MEAN_HINT, check_index=True)


# --- frozen_tower -------------------------------------------------------------------

TOWER_IDS = ["-5", "12", "3", "x7"]
TOWER_VALUES = np.array([[1.0, 0.0, 0.5], [0.0, 2.0, 0.25], [3.0, 1.0, 0.0], [0.5, 0.5, 0.5]], dtype=np.float32)
ZERO_ROW_HINT = Hint(
    "A lookup with one out-of-vocabulary index gives unknown ids row 0 and the known ids rows 1..n, "
    "so the table needs a zero row first, then the vectors in order. If each id gets the "
    "vector of the id before it (shifted by one row), the zero row is missing.",
    code="Stack a row of zeros on top of the vectors, and use that matrix as the Embedding's constant initial values.",
)
FROZEN_HINT = Hint(
    "The tower must not learn: it has no trainable weights, so an optimizer cannot change its vectors.",
    code="Keras layers and models take trainable=False.",
)


@graded("frozen_tower", points=1)
def test_frozen_tower_looks_up_known_ids(student, reference):
    queries = ["12", "-5", "3", "12"]
    compare_run(
        student, reference, drivers.frozen_tower_lookups, TOWER_IDS, TOWER_VALUES, queries,
        name="frozen_tower", call=f"frozen_tower(vectors of ids {TOWER_IDS}) called on {queries}", hint=ZERO_ROW_HINT,
    )  # fmt: skip


@graded("frozen_tower", points=1)
def test_frozen_tower_does_not_train(student, reference):
    queries = ["x7", "-5", "12", "3", "-5"]
    call = f"frozen_tower(vectors of ids {TOWER_IDS}), trained for three steps on {queries}"
    got, expected = observed_runs(
        student, reference, drivers.frozen_tower_after_training, TOWER_IDS, TOWER_VALUES, queries, call=call,
        name="frozen_tower", hint=FROZEN_HINT,
    )  # fmt: skip
    expect_same(
        got["trainable_weight_shapes"], expected["trainable_weight_shapes"],
        call=f"{call}: the shapes of its trainable weights", hint=FROZEN_HINT,
    )  # fmt: skip
    # A tower that returns zeros cannot train either: it must not earn this point for it.
    expect_same(
        got["vectors_before_training"], expected["vectors_before_training"],
        call=f"{call}: its vectors before training", hint=ZERO_ROW_HINT,
    )  # fmt: skip
    expect_same(
        got["vectors_after_training"], expected["vectors_after_training"],
        call=f"{call}: its vectors after training", hint=FROZEN_HINT,
    )  # fmt: skip


UNKNOWN_HINT = Hint(
    "An id that `vectors` does not hold gets a row of zeros. A StringLookup with one out-of-vocabulary "
    "index sends every unknown id to index 0; with none (num_oov_indices=0) it raises an error on them.",
    code="Keep num_oov_indices=1 and put the zero row first, at index 0.",
)


# Visible: unknown ids are what the zero row is for, and a tower without it (num_oov_indices=0)
# looks up every known id right; only this test shows it the unknown ones.
@graded("frozen_tower", points=1)
def test_frozen_tower_unknown_ids_get_zeros(student, reference):
    queries = ["unknown", "x7", "-5", "", "7x"]
    compare_run(
        student, reference, drivers.frozen_tower_lookups, TOWER_IDS, TOWER_VALUES, queries,
        name="frozen_tower", call=f"frozen_tower(vectors of ids {TOWER_IDS}) called on {queries}",
        hint=UNKNOWN_HINT + ZERO_ROW_HINT,
    )  # fmt: skip


@graded("frozen_tower", points=1, hidden=True)
def test_frozen_tower_wide_random_vectors(student, reference):
    rng = np.random.default_rng(11)
    ids = rng.integers(-(2**40), 2**40, size=30).astype(str).tolist()
    values = rng.random((30, 17)).astype(np.float32)
    queries = [ids[29], ids[0], "missing", *ids[10:15]]
    compare_run(
        student,
        reference,
        drivers.frozen_tower_lookups,
        ids,
        values,
        queries,
        name="frozen_tower",
        call=f"frozen_tower(vectors of 30 ids, 17 columns) called on {queries}",
        hint=ZERO_ROW_HINT,
    )


# --- top_k_through_index -----------------------------------------------------------

INDEX_USERS = ["u1", "u2", "u3"]
INDEX_USER_VALUES = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.4]], dtype=np.float32)
INDEX_ITEMS = list("abcdefghijkl")
INDEX_ITEM_VALUES = np.array(
    [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.0, 0.3], [1.0, 1.0], [0.1, 0.1],
     [0.7, 0.0], [0.3, 0.9], [0.0, 0.0], [0.4, 0.2], [0.8, 0.6], [0.05, 0.95]],
    dtype=np.float32,
)  # fmt: skip
INDEX_HINT = Hint(
    "Each row holds the user's k best item ids (str) by dot product, best first. The index returns "
    "10 items unless you pass k; it returns ids as bytes.",
    code="Pass k to the index when you query it, and decode the ids it returns to str.",
)


def _index_call(users, items, queries, k):
    return f"top_k_through_index(towers over {len(users)} users and {len(items)} items, user_ids={queries}, k={k})"


@graded("top_k_through_index", points=1)
def test_top_k_through_index_small_example(student, reference):
    compare_run(
        student, reference, drivers.index_top_k, INDEX_USERS, INDEX_USER_VALUES, INDEX_ITEMS, INDEX_ITEM_VALUES,
        ["u3", "u1", "u2"], 3, name="top_k_through_index",
        call=_index_call(INDEX_USERS, INDEX_ITEMS, ["u3", "u1", "u2"], 3), hint=INDEX_HINT,
    )  # fmt: skip


@graded("top_k_through_index", points=0.5, hidden=True)
def test_top_k_through_index_ties_and_unknown_users(student, reference):
    item_values = np.tile(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32), (4, 1))
    compare_run(
        student, reference, drivers.index_top_k, INDEX_USERS, INDEX_USER_VALUES, INDEX_ITEMS, item_values,
        ["u1", "stranger", "u2"], 4, name="top_k_through_index",
        call=_index_call(INDEX_USERS, INDEX_ITEMS, ["u1", "stranger", "u2"], 4),
        hint="Ties keep the order in which the items were indexed; an unknown user scores 0 with every item.",
    )  # fmt: skip


@graded("top_k_through_index", points=0.5, hidden=True)
def test_top_k_through_index_random_catalogue(student, reference):
    rng = np.random.default_rng(3)
    users = [f"user {i}" for i in range(6)]
    items = rng.integers(-(2**40), 2**40, size=40).astype(str).tolist()
    for k in (1, 12):
        compare_run(
            student, reference, drivers.index_top_k, users, rng.random((6, 4)).astype(np.float32), items,
            rng.random((40, 4)).astype(np.float32), users[::-1], k, name="top_k_through_index",
            call=_index_call(users, items, users[::-1], k), hint=INDEX_HINT,
        )  # fmt: skip
