"""Autograder tests for lesson 5: the hybrid model.

The tower and the model are classes, so the drivers in
``autograder/05_hybrid/drivers.py`` build them from plain vocabularies,
set their weights from the weights' shapes, use them on small batches, and
return plain data for the tests to compare. The item tower is compared by its
behaviour (which columns each feature moves, which values share a vector), so
any vocabulary order and any layout of layers that computes the same function passes.
"""

import numpy as np

from tfrs_course.grading import graded
from tfrs_course.grading.assertions import Hint, compare_run, expect_same, graph_mode_hint, student_run
from tfrs_course.grading.drivers import load

drivers = load("05_hybrid")

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

# Each exercise is worth 2 points per level of difficulty (docs/instructor.md, "Points").
DIFFICULTY = {"ItemTower": 3, "HybridModel": 1}
# Float32 layers summed in a different order (a student may concatenate or add in their own
# order) differ from the reference in the last digits.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


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


def _tower_call(vocabularies, batch, what):
    sizes = ", ".join(f"{len(values)} {name}" for name, values in vocabularies.items() if name != "user_no")
    return f"ItemTower(vocabularies of {sizes}) on {len(batch['item_no'])} items: {what}"


# --- ItemTower -------------------------------------------------------------------------

SHAPES_HINT = Hint(
    "Each embedding table needs one row per vocabulary value plus one for unknown values (OOV). The ID, "
    "brand and group tables are 16, 8 and 5 wide; the gender one-hot has no weights.",
    code="A lookup with one OOV index in front of an Embedding whose number of rows counts that index too.",
)
OUTPUT_HINT = Hint(
    "The item vector joins four parts side by side: the ID embedding (16 columns), the gender one-hot "
    "(one column per gender, no OOV column), the brand (8) and the group (5) embeddings: 32 columns, "
    "as wide as the user embedding. Each feature moves only its own columns; each known value has its own "
    "vector and all unknown values of a feature share one.",
    code="Concatenate the four parts along axis 1; the gender lookup's one-hot output mode with no OOV index.",
)


@graded("ItemTower", points=1.5)
def test_item_tower_weight_shapes(student, reference):
    compare_run(
        student, reference, drivers.item_tower_weight_shapes, VOCABULARIES, name="ItemTower",
        call=_tower_call(VOCABULARIES, KNOWN_ITEMS, "the shapes of its trainable weights"), hint=SHAPES_HINT, **TOLERANCE,
    )  # fmt: skip


TOWER_GRAPH_HINT = graph_mode_hint("tower", "the features are symbolic tensors")


def _is_matrix(value):
    return isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind in "biuf"


def _behaviour(seen):
    """What an item tower does, in terms that do not depend on its weights or layout, from the driver's vectors.

    Made here, in the grader, not by the driver: student code shares the driver's process.
    Returns ``{"shape": output shape on the batch, "features": {feature: {"columns": how many
    output columns that feature moves, "same_vector": (V, V) booleans, whether two of its values
    give the same vector}}, "gender_is_one_hot": bool, "shared_columns": columns moved by more
    than one feature, "dead_columns": columns no feature moves}``; anything but the driver's
    report is left as it is, for the comparison to name.
    """
    varied = seen.get("varied") if isinstance(seen, dict) else None
    if not (
        isinstance(varied, dict) and _is_matrix(seen.get("batch")) and set(varied) == set(drivers.ITEM_FEATURES)
        and all(_is_matrix(vectors) and vectors.shape[1] == seen["batch"].shape[1] for vectors in varied.values())
    ):  # fmt: skip
        return seen
    moved_by, report = {}, {}
    for feature, vectors in varied.items():
        moved = ~np.all(np.isclose(vectors, vectors[:1], rtol=0, atol=1e-9), axis=0)
        moved_by[feature] = moved
        same = np.all(np.isclose(vectors[:, None, :], vectors[None, :, :], rtol=0, atol=1e-9), axis=2)
        report[feature] = {"columns": int(moved.sum()), "same_vector": same}
    gender = varied["gender_description"][:, moved_by["gender_description"]]
    counts = np.sum(list(moved_by.values()), axis=0)
    return {
        "shape": list(seen["batch"].shape),
        "features": report,
        "gender_is_one_hot": bool(np.isin(gender, (0.0, 1.0)).all() and np.all(gender.sum(axis=1) == 1)),
        "shared_columns": int(np.sum(counts > 1)),
        "dead_columns": int(np.sum(counts == 0)),
    }


def _check_behaviour(student, reference, vocabularies, batch, *, call, hint):
    expected = _behaviour(reference.run(drivers.item_tower_behaviour, vocabularies, batch))
    got = student_run(
        student, drivers.item_tower_behaviour, vocabularies, batch, call=call, name="ItemTower",
        hint=TOWER_GRAPH_HINT + hint,
    )  # fmt: skip
    expect_same(_behaviour(got), expected, call=call, hint=hint, **TOLERANCE)


@graded("ItemTower", points=1.5)
def test_item_tower_vectors_of_known_items(student, reference):
    _check_behaviour(
        student, reference, VOCABULARIES, KNOWN_ITEMS, hint=OUTPUT_HINT,
        call=_tower_call(VOCABULARIES, KNOWN_ITEMS, "which columns each feature moves, in graph mode"),
    )  # fmt: skip


@graded("ItemTower", points=1.5, hidden=True)
def test_item_tower_unknown_ids_brands_and_groups(student, reference):
    _check_behaviour(
        student, reference, VOCABULARIES, UNKNOWN_ITEMS,
        call=_tower_call(VOCABULARIES, UNKNOWN_ITEMS, "unknown ids, brands and groups, in graph mode"),
        hint=Hint("All unknown ids (brands, groups) share their table's one OOV row.") + OUTPUT_HINT,
    )  # fmt: skip


@graded("ItemTower", points=1.5, hidden=True)
def test_item_tower_random_vocabularies(student, reference):
    vocabularies, rows = _random_vocabularies_and_rows(1, 30)
    _check_behaviour(
        student, reference, vocabularies, rows, hint=OUTPUT_HINT,
        call=_tower_call(vocabularies, rows, "which columns each feature moves, in graph mode"),
    )  # fmt: skip


# --- HybridModel ------------------------------------------------------------------------

LOSS_HINT = Hint(
    "The loss of a batch: embed its users with the user tower and its items with the item tower, which "
    "takes every item feature under its own name, and let the task score them, users first. A different "
    "loss usually means a feature was fed under another feature's name.",
    code="Build the item tower's input dict from ITEM_FEATURES, each key mapped to the batch's column of "
    "the same name; metrics only when not training.",
)


# Shown when the student's code raised: the drivers run compute_loss in graph mode, as model.fit does.
GRAPH_HINT = graph_mode_hint("compute_loss", "the features are symbolic tensors")


def _model_call(rows, what):
    return f"HybridModel(...) on a batch of {len(rows['user_no'])} rows: {what}"


def _check_model(student, reference, driver, *args, call):
    expected = reference.run(driver, *args)
    got = student_run(student, driver, *args, call=call, name="HybridModel", hint=GRAPH_HINT + LOSS_HINT)
    expect_same(got, expected, call=call, hint=LOSS_HINT, **TOLERANCE)


@graded("HybridModel", points=1)
def test_hybrid_loss_on_one_batch(student, reference):
    call = _model_call(ROWS, "compute_loss in training and in evaluation, in graph mode")
    _check_model(student, reference, drivers.hybrid_loss, VOCABULARIES, ROWS, call=call)


@graded("HybridModel", points=0.5, hidden=True)
def test_hybrid_loss_with_unknown_values(student, reference):
    vocabularies, rows = _random_vocabularies_and_rows(2, 40)
    rows["brand"][::3] = ["a brand seen only in test"] * len(rows["brand"][::3])
    rows["user_no"][::4] = ["a new user"] * len(rows["user_no"][::4])
    call = _model_call(rows, "compute_loss with unknown users and brands, in graph mode")
    _check_model(student, reference, drivers.hybrid_loss, vocabularies, rows, call=call)


@graded("HybridModel", points=0.5, hidden=True)
def test_hybrid_trains_with_fit(student, reference):
    vocabularies, rows = _random_vocabularies_and_rows(3, 48)
    call = _model_call(rows, "fit() for 2 epochs in batches of 16")
    _check_model(student, reference, drivers.hybrid_fit, vocabularies, rows, 16, call=call)
