"""Autograder tests for lesson 5: the hybrid model.

The tower and the model are classes, so the drivers in
``tfrs_course.grading.drivers.lesson_05`` build them from plain vocabularies,
set their weights from the weights' shapes, use them on small batches, and
return plain data for the tests to compare.
"""

import numpy as np

from tfrs_course.grading import describe_call, expect_same, graded
from tfrs_course.grading.drivers import lesson_05

# Sizes chosen so that no two embedding tables have the same shape.
VOCABULARIES = {
    "user_no": ["u1", "u2", "u3", "u4"],
    "item_no": ["i1", "i2", "i3", "i4", "i5", "i6"],
    "gender_description": ["unisex", "girls", "boys"],
    "brand": ["molo", "reima", "kavat"],
    "product_group": ["tops", "boots", "bottoms", "swimwear and coverups"],
}
KNOWN_ITEMS = {
    "item_no": ["i1", "i4", "i6", "i2"],
    "gender_description": ["girls", "boys", "unisex", "girls"],
    "brand": ["molo", "kavat", "reima", "kavat"],
    "product_group": ["tops", "swimwear and coverups", "boots", "bottoms"],
}
UNKNOWN_ITEMS = {
    "item_no": ["new item", "i3", "i5", "i6"],
    "gender_description": ["boys", "unisex", "girls", "boys"],
    "brand": ["reima", "brand seen only in test", "molo", "kavat"],
    "product_group": ["boots", "tops", "group seen only in test", "bottoms"],
}
ROWS = {
    "user_no": ["u1", "u2", "u3", "u4", "u1", "u3"],
    "item_no": ["i1", "i2", "i3", "i4", "i5", "i6"],
    "gender_description": ["girls", "boys", "unisex", "girls", "boys", "unisex"],
    "brand": ["molo", "reima", "kavat", "molo", "kavat", "reima"],
    "product_group": ["tops", "boots", "bottoms", "swimwear and coverups", "tops", "boots"],
}


def _random_vocabularies_and_rows(seed, n_rows):
    rng = np.random.default_rng(seed)
    vocabularies = {
        "user_no": rng.integers(-(2**40), 2**40, size=9).astype(str).tolist(),
        "item_no": rng.integers(-(2**40), 2**40, size=23).astype(str).tolist(),
        "gender_description": ["boys", "unisex", "girls"],
        "brand": [f"brand {i}" for i in range(11)],
        "product_group": [f"group {i}" for i in range(7)],
    }
    rows = {name: rng.choice(values, n_rows).tolist() for name, values in vocabularies.items()}
    return vocabularies, rows


def _compare(student, reference, driver, *args, hint, **kwargs):
    expected = reference.run(driver, *args, **kwargs)
    got = student.run(driver, *args, **kwargs)
    expect_same(got, expected, call=describe_call(driver.__name__, *args, **kwargs), hint=hint, rtol=1e-4, atol=1e-5)


# --- ItemTower -------------------------------------------------------------------------

SHAPES_HINT = (
    "Each embedding table needs one row per vocabulary value plus one for unknown values (OOV): "
    "Embedding(len(values) + 1, dim) after StringLookup(num_oov_indices=1). The ID, brand and group "
    "tables are 16, 8 and 5 wide; the gender one-hot has no weights."
)
OUTPUT_HINT = (
    "The output is [ID embedding (16) | gender one-hot (len(genders), no OOV column) | brand (8) | "
    "group (5)], joined on axis 1: 16 + 3 + 8 + 5 = 32 columns, as wide as the user embedding. "
    "Use the vocabularies in the order given."
)


@graded("ItemTower", points=1)
def test_item_tower_weight_shapes(student, reference):
    _compare(student, reference, lesson_05.item_tower_weight_shapes, VOCABULARIES, hint=SHAPES_HINT)


@graded("ItemTower", points=1)
def test_item_tower_vectors_of_known_items(student, reference):
    _compare(student, reference, lesson_05.item_tower_output, VOCABULARIES, KNOWN_ITEMS, hint=OUTPUT_HINT)


@graded("ItemTower", points=1, hidden=True)
def test_item_tower_unknown_ids_brands_and_groups(student, reference):
    _compare(
        student, reference, lesson_05.item_tower_output, VOCABULARIES, UNKNOWN_ITEMS,
        hint="Unknown ids, brands and groups all use row 0 of their table.",
    )  # fmt: skip


@graded("ItemTower", points=1, hidden=True)
def test_item_tower_random_vocabularies(student, reference):
    vocabularies, rows = _random_vocabularies_and_rows(1, 30)
    _compare(student, reference, lesson_05.item_tower_output, vocabularies, rows, hint=OUTPUT_HINT)


# --- HybridModel ------------------------------------------------------------------------

LOSS_HINT = (
    "Embed the users with self.user_tower(features['user_no']) and the items with self.item_tower "
    "given each item feature under its own name ({name: features[name] for name in ITEM_FEATURES}), "
    "then return self.task(user_embeddings, item_embeddings, ...). A different loss usually means a "
    "feature was fed under another feature's name."
)


@graded("HybridModel", points=1)
def test_hybrid_loss_on_one_batch(student, reference):
    _compare(student, reference, lesson_05.hybrid_loss, VOCABULARIES, ROWS, hint=LOSS_HINT)


@graded("HybridModel", points=1, hidden=True)
def test_hybrid_loss_with_unknown_values(student, reference):
    vocabularies, rows = _random_vocabularies_and_rows(2, 40)
    rows["brand"][::3] = ["a brand seen only in test"] * len(rows["brand"][::3])
    rows["user_no"][::4] = ["a new user"] * len(rows["user_no"][::4])
    _compare(student, reference, lesson_05.hybrid_loss, vocabularies, rows, hint=LOSS_HINT)


@graded("HybridModel", points=1, hidden=True)
def test_hybrid_trains_with_fit(student, reference):
    vocabularies, rows = _random_vocabularies_and_rows(3, 48)
    _compare(
        student, reference, lesson_05.hybrid_fit, vocabularies, rows, 16,
        hint="compute_loss must work inside model.fit (graph mode): use TensorFlow operations only.",
    )  # fmt: skip
