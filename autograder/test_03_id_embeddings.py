"""Autograder tests for lesson 3: ID embeddings with ``tfrs.Model``.

Drivers build the student's tower, model and recommendations from fixed weights
and return plain data; the tests compare with the reference solution (and, for
the tower, with what any correct tower must do, whatever its random weights).
"""

import numpy as np

from tfrs_course.grading import expect_same, graded
from tfrs_course.grading.drivers import lesson_03 as drivers

# --- make_id_tower -----------------------------------------------------------------

TABLE_HINT = (
    "The Embedding needs one row per distinct id plus one for the out-of-vocabulary bucket: "
    "Embedding(len(vocabulary) + 1, embedding_dim). A table one row short cannot hold the last id."
)
LOOKUP_HINT = (
    "StringLookup(vocabulary=the sorted distinct ids, num_oov_indices=1) then the Embedding: "
    "each known id gets its own vector, and every unknown id gets the one out-of-vocabulary vector."
)


def _check_table(student, reference, values, dim):
    expected = reference.run(drivers.tower_table, values, dim)
    got = student.run(drivers.tower_table, values, dim)
    expect_same(got, expected, call=f"make_id_tower({len(values)} ids, {dim}): the embedding table", hint=TABLE_HINT)


def _check_lookups(student, reference, values, dim, queries):
    expected = reference.run(drivers.tower_lookups, values, dim, queries)
    got = student.run(drivers.tower_lookups, values, dim, queries)
    expect_same(
        got, expected,
        call=f"make_id_tower({values!r}, {dim}) called on {queries!r} (same_row[i, j]: ids i and j share a vector)",
        hint=LOOKUP_HINT,
    )  # fmt: skip


@graded("make_id_tower", points=1)
def test_tower_table_has_a_row_for_unknown_ids(student, reference):
    _check_table(student, reference, ["b", "a", "c", "a"], 4)


@graded("make_id_tower", points=1)
def test_tower_gives_known_ids_their_own_vector_and_unknown_ids_one_shared(student, reference):
    _check_lookups(student, reference, ["30", "-12", "7", "30"], 3, ["7", "30", "-12", "new", "99", "7"])


@graded("make_id_tower", points=1, hidden=True)
def test_tower_with_many_repeated_ids(student, reference):
    rng = np.random.default_rng(0)
    values = rng.integers(-(2**40), 2**40, size=30).astype(str)
    repeated = rng.choice(values, 200).tolist()
    _check_table(student, reference, repeated, 8)
    queries = rng.choice(values, 6).tolist() + ["unknown-1", "unknown-2"]
    _check_lookups(student, reference, repeated, 8, queries)


# --- IdModel -------------------------------------------------------------------------

MODEL_HINT = (
    "compute_loss: user_embeddings = self.user_model(features['user_no']), item_embeddings = "
    "self.item_model(features['item_no']), then self.task(user_embeddings, item_embeddings, "
    "compute_metrics=not training). The user is the query: pass the user embeddings first."
)

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


@graded("IdModel", points=1)
def test_compute_loss_equals_the_reference(student, reference):
    towers = _towers(0)
    batch = {"user_no": ["11", "-5", "404", "11"], "item_no": ["i3", "i1", "i4", "i2"]}
    expected = reference.run(drivers.id_model_loss, towers, batch)
    got = student.run(drivers.id_model_loss, towers, batch)
    expect_same(got, expected, rtol=1e-4, atol=1e-5, call="IdModel(...).compute_loss(a batch of 4 rows)", hint=MODEL_HINT)


@graded("IdModel", points=1, hidden=True)
def test_training_steps_match_the_reference(student, reference):
    towers = _towers(1, dim=4)
    rng = np.random.default_rng(2)
    batches = [
        {"user_no": rng.choice(USERS + ["new"], 5).tolist(), "item_no": rng.choice(ITEMS + ["new"], 5).tolist()}
        for _ in range(2)
    ]
    expected = reference.run(drivers.train_id_model, towers, batches, 0.3)
    got = student.run(drivers.train_id_model, towers, batches, 0.3)
    expect_same(got, expected, rtol=1e-4, atol=1e-5, call="IdModel(...).fit() on 2 batches", hint=MODEL_HINT)


# --- recommend -------------------------------------------------------------------------

RECOMMEND_HINT = (
    "Use index.query_with_exclusions(tf.constant([user_id]), exclusions, k=k) with exclusions of "
    "shape (1, n) and dtype tf.string, and return the k ids of the first row as str. If excluded "
    "items come back, the exclusions were not applied; if fewer than k come back, they were "
    "removed after asking for only k."
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
    expected = reference.run(drivers.recommend_from_index, towers, ids, user_id, exclude, k)
    got = student.run(drivers.recommend_from_index, towers, ids, user_id, exclude, k)
    expect_same(
        got, expected,
        call=f"recommend(index over {len(ids)} items, {user_id!r}, exclude_item_ids={exclude!r}, k={k})",
        hint=hint,
    )  # fmt: skip


def _best_items(seed, user_id, count):
    """The best items for a user by plain numpy scoring, to choose what to exclude."""
    towers, ids = _index_data(seed)
    row = towers["user_vocabulary"].index(user_id) + 1
    scores = towers["item_vectors"] @ towers["user_table"][row]
    return [ids[i] for i in np.argsort(-scores)[:count]]


@graded("recommend", points=1)
def test_recommend_leaves_out_the_users_items(student, reference):
    exclude = _best_items(0, "u2", 3)  # the user's three favourites must not come back
    _check_recommend(student, reference, 0, "u2", exclude, 5)


@graded("recommend", points=1)
def test_recommend_with_nothing_to_exclude(student, reference):
    _check_recommend(
        student, reference, 1, "u1", [], 4,
        hint="With nothing to exclude, return the plain top k. An empty exclusion list must still be "
        "a tf.string tensor of shape (1, 0): tf.constant([[]], dtype=tf.string). " + RECOMMEND_HINT,
    )  # fmt: skip


@graded("recommend", points=1, hidden=True)
def test_recommend_for_an_unknown_user_with_many_exclusions(student, reference):
    towers, ids = _index_data(2)
    exclude = ids[::2]  # half the catalogue, mostly items the user would not get anyway
    _check_recommend(student, reference, 2, "stranger", exclude, 6)
