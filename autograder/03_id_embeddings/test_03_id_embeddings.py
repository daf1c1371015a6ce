"""Autograder tests for lesson 3: ID embeddings with ``tfrs.Model``.

Drivers build the student's tower, model and recommendations from fixed weights
and return plain data; the tests compare with the reference solution (and, for
the tower, with what any correct tower must do, whatever its random weights).
"""

import math

import numpy as np

from tfrs_course.grading import graded
from tfrs_course.grading.assertions import Hint, compare_run, expect_same, graph_mode_hint, student_run
from tfrs_course.grading.drivers import load

drivers = load("03_id_embeddings")

# --- make_id_tower -----------------------------------------------------------------

TABLE_HINT = Hint(
    "The embedding table needs one row per distinct id plus one for the out-of-vocabulary (OOV) bucket.",
    code="Count the distinct ids (each once) and add the number of OOV indices of the lookup.",
)
SHORT_TABLE_HINT = Hint("Your table has too few rows: a table one row short cannot hold the last id.") + TABLE_HINT
LONG_TABLE_HINT = (
    Hint(
        "Your table has too many rows: the ids repeat, and each distinct id needs one row however often it "
        "appears (count the OOV bucket once, too)."
    )
    + TABLE_HINT
)
LOOKUP_HINT = Hint(
    "A lookup turns each id into a row number, then the embedding table gives that row's vector: "
    "each known id gets its own vector, and every unknown id gets the one out-of-vocabulary vector.",
    code="A StringLookup over the distinct ids (any fixed order) with one OOV index, followed by the Embedding.",
)

# Each exercise is worth 2 points per level of difficulty (docs/instructor.md, "Points").
DIFFICULTY = {"make_id_tower": 1, "IdModel": 1, "recommend": 2}
# Losses summed in another order (a correct model may reduce differently) differ in the last digits.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


TOWER_GRAPH_HINT = graph_mode_hint("tower", "the ids are a symbolic tensor")


def _is_shape_list(shapes):
    return isinstance(shapes, list) and all(
        isinstance(shape, list) and len(shape) == 2 and all(type(size) is int for size in shape) for shape in shapes
    )


def _table_summary(shapes):
    """The first embedding table's size and how many there are, from the tables' shapes the driver saw.

    Summarised here, in the grader, not by the driver: student code shares the driver's process.
    Anything but a list of shapes is left as it is, for the comparison to name.
    """
    if not _is_shape_list(shapes):
        return shapes
    rows, dim = shapes[0] if shapes else (0, 0)
    return {"embedding_layers": len(shapes), "rows": rows, "dim": dim}


def _table_hint(got, expected):
    """Name the likely mistake from the number of rows that came back."""
    rows = got.get("rows") if isinstance(got, dict) else None
    if not isinstance(rows, int) or rows == expected["rows"]:
        return TABLE_HINT
    return LONG_TABLE_HINT if rows > expected["rows"] else SHORT_TABLE_HINT


def _check_table(student, reference, values, dim):
    call = f"make_id_tower({len(values)} ids, {dim}): the embedding table"
    expected = _table_summary(reference.run(drivers.tower_table, values, dim))
    got = student_run(student, drivers.tower_table, values, dim, call=call, name="make_id_tower", hint=TABLE_HINT)
    got = _table_summary(got)
    expect_same(got, expected, call=call, hint=_table_hint(got, expected))


def _lookup_summary(seen):
    """What the tower does, whatever its random weights: the output's shape, which queries share a vector
    (``same_row[i, j]``), and the ids its lookup holds. Made here from the vectors the driver saw."""
    vectors = seen.get("vectors") if isinstance(seen, dict) else None
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2 or vectors.dtype.kind not in "biuf":
        return seen
    vectors = vectors.astype(np.float64)
    same_row = np.all(np.isclose(vectors[:, None, :], vectors[None, :, :], rtol=0, atol=1e-9), axis=2)
    return {"shape": list(vectors.shape), "same_row": same_row, "vocabulary": seen.get("vocabulary")}


def _check_lookups(student, reference, values, dim, queries):
    call = (
        f"make_id_tower({values!r}, {dim}) called on {queries!r} in graph mode "
        "(same_row[i, j]: ids i and j share a vector)"
    )
    expected = _lookup_summary(reference.run(drivers.tower_lookups, values, dim, queries))
    got = student_run(
        student, drivers.tower_lookups, values, dim, queries, call=call, name="make_id_tower",
        hint=TOWER_GRAPH_HINT + LOOKUP_HINT,
    )  # fmt: skip
    expect_same(_lookup_summary(got), expected, call=call, hint=LOOKUP_HINT)


@graded("make_id_tower", points=0.5)
def test_tower_table_has_a_row_for_unknown_ids(student, reference):
    _check_table(student, reference, ["b", "a", "c", "a", "b"], 4)


@graded("make_id_tower", points=1)
def test_tower_gives_known_ids_their_own_vector_and_unknown_ids_one_shared(student, reference):
    _check_lookups(student, reference, ["30", "-12", "7", "30"], 3, ["7", "30", "-12", "new", "99", "7"])


@graded("make_id_tower", points=0.5, hidden=True)
def test_tower_with_many_repeated_ids(student, reference):
    rng = np.random.default_rng(0)
    values = rng.integers(-(2**40), 2**40, size=30).astype(str)
    repeated = rng.choice(values, 200).tolist()
    _check_table(student, reference, repeated, 8)
    queries = rng.choice(values, 6).tolist() + ["unknown-1", "unknown-2"]
    _check_lookups(student, reference, repeated, 8, queries)


# --- IdModel -------------------------------------------------------------------------

MODEL_HINT = Hint(
    "The loss of a batch: embed its users with the user tower and its items with the item tower, and "
    "let the retrieval task score them. The user is the query: the task takes the user embeddings first.",
    code="compute_loss reads the batch's 'user_no' and 'item_no' features and returns what self.task returns; "
    "check the order of the task's two arguments.",
)

GRAPH_HINT = graph_mode_hint("compute_loss", "the features are symbolic tensors")

USERS = ["-5", "11", "404"]
ITEMS = ["i1", "i2", "i3", "i4"]


def _towers(seed, dim=3):
    rng = np.random.default_rng(seed)
    return {
        "user_vocabulary": USERS,
        "item_vocabulary": ITEMS,
        "user_table": rng.normal(size=(len(USERS) + 1, dim)).astype(np.float32),
        "item_table": rng.normal(size=(len(ITEMS) + 1, dim)).astype(np.float32),
    }


def _loss_hint(got, expected, batch_size):
    """Name the likely mistake from the loss that came back."""
    if isinstance(got, float) and math.isclose(got * batch_size, expected, rel_tol=1e-4):
        return (
            Hint(
                f"Your loss is the expected one divided by the batch size ({batch_size}): it is averaged over "
                "the rows. The retrieval task already returns the loss of the whole batch (a sum); return it as it is."
            )
            + MODEL_HINT
        )
    return MODEL_HINT


@graded("IdModel", points=1)
def test_compute_loss_equals_the_reference(student, reference):
    towers = _towers(0)
    batch = {"user_no": ["11", "-5", "404", "11"], "item_no": ["i3", "i1", "i4", "i2"]}
    call = "IdModel(...).compute_loss(a batch of 4 rows), in graph mode"
    expected = reference.run(drivers.id_model_loss, towers, batch)
    got = student_run(
        student, drivers.id_model_loss, towers, batch, call=call, name="IdModel", hint=GRAPH_HINT + MODEL_HINT
    )
    expect_same(got, expected, call=call, hint=_loss_hint(got, expected, len(batch["user_no"])), **TOLERANCE)


@graded("IdModel", points=1, hidden=True)
def test_training_steps_match_the_reference(student, reference):
    towers = _towers(1, dim=4)
    rng = np.random.default_rng(2)
    batches = [
        {"user_no": rng.choice(USERS + ["new"], 5).tolist(), "item_no": rng.choice(ITEMS + ["new"], 5).tolist()}
        for _ in range(2)
    ]
    call = "IdModel(...).fit() on 2 batches"
    compare_run(
        student, reference, drivers.train_id_model, towers, batches, 0.3, call=call, name="IdModel",
        hint=GRAPH_HINT + MODEL_HINT, **TOLERANCE,
    )  # fmt: skip


# --- recommend -------------------------------------------------------------------------

RECOMMEND_HINT = Hint(
    "Ask the index for the user's best items with the excluded items left out by the index itself, so "
    "that k items always come back. If excluded items come back, the exclusions were not applied; if "
    "fewer than k come back, they were removed after asking for only k.",
    code="The index's query_with_exclusions takes a batch of one query and exclusions of shape (1, n) "
    "and dtype tf.string; decode the first row's ids to str.",
)


DECODE_HINT = Hint(
    "Your ids are bytes (shown as \"b'item07'\"), or str() of bytes, which keeps the b'...' around the "
    "text: the index returns ids as bytes. Decode each id to str.",
    code="bytes.decode() turns b'item07' into 'item07'; a numpy array of bytes converts with .astype(str).",
)


def _looks_like_bytes(got):
    """Whether the result holds bytes, or str() of bytes, instead of decoded ids."""
    items = got.tolist() if isinstance(got, np.ndarray) else got
    return isinstance(items, list) and any(
        isinstance(item, bytes) or (isinstance(item, str) and item.startswith(("b'", 'b"'))) for item in items
    )


def _index_data(seed, n_items=30, dim=4):
    rng = np.random.default_rng(seed)
    users = ["u1", "u2", "u3"]
    return {
        "user_vocabulary": users,
        "user_table": rng.normal(size=(len(users) + 1, dim)).astype(np.float32),
        "item_vectors": rng.normal(size=(n_items, dim)).astype(np.float32),
    }, [f"item{i:02d}" for i in range(n_items)]


def _check_recommend(student, reference, seed, user_id, exclude, k, hint=RECOMMEND_HINT):
    towers, ids = _index_data(seed)
    call = f"recommend(index over {len(ids)} items, {user_id!r}, exclude_item_ids={exclude!r}, k={k})"
    expected = reference.run(drivers.recommend_from_index, towers, ids, user_id, exclude, k)
    got = student_run(
        student, drivers.recommend_from_index, towers, ids, user_id, exclude, k, call=call, name="recommend",
        hint=hint,
    )  # fmt: skip
    expect_same(got, expected, call=call, hint=DECODE_HINT + hint if _looks_like_bytes(got) else hint)


def _best_items(seed, user_id, count):
    """The best items for a user by plain numpy scoring, to choose what to exclude."""
    towers, ids = _index_data(seed)
    row = towers["user_vocabulary"].index(user_id) + 1
    scores = towers["item_vectors"] @ towers["user_table"][row]
    return [ids[i] for i in np.argsort(-scores)[:count]]


@graded("recommend", points=1.5)
def test_recommend_leaves_out_the_users_items(student, reference):
    exclude = _best_items(0, "u2", 3)  # the user's three favourites must not come back
    _check_recommend(student, reference, 0, "u2", exclude, 5)


@graded("recommend", points=1)
def test_recommend_with_nothing_to_exclude(student, reference):
    _check_recommend(
        student, reference, 1, "u1", [], 4,
        hint=Hint(
            "With nothing to exclude, return the plain top k. An empty exclusion list has no values to "
            "tell TensorFlow their type, so it becomes a float tensor unless you say it holds strings.",
            code="Give the exclusions' dtype explicitly; their shape is (1, 0).",
        )
        + RECOMMEND_HINT,
    )  # fmt: skip


@graded("recommend", points=1.5, hidden=True)
def test_recommend_for_an_unknown_user_with_many_exclusions(student, reference):
    towers, ids = _index_data(2)
    exclude = ids[::2]  # half the catalogue, mostly items the user would not get anyway
    _check_recommend(student, reference, 2, "stranger", exclude, 6)
