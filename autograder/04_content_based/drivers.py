"""Drivers for lesson 4 (content-based towers): they build and exercise the student's objects.

Each driver receives ``lookup`` (the student's object by name) and plain data,
and returns plain data that the tests compare with the reference's.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd


def content_vectors_side_effects(lookup, items: pd.DataFrame, vocabularies: dict[str, list[str]]) -> dict:
    """Call ``content_vectors`` on a filtered slice of ``items``, as the lesson's data would be.

    The slice is what made the original notebook's in-place writes warn: pandas
    cannot tell whether a write to it reaches the table it came from.

    Returns what was observed, never a verdict: the worker runs student code, which
    could change a verdict, so the test decides in the grader by comparing these
    observations with the reference's.

    Args:
        lookup: the student's objects by name.
        items: a small items table (it must have rows with an empty ``colour``; they are left out).
        vocabularies: passed through to ``content_vectors``.

    Returns:
        ``{"input_after_the_call": the slice as it is after the call, "pandas_warnings":
        [warning class names], "result": what the function returned}``. The result is
        there because a function that returns nothing leaves its input alone too, and
        must not earn the test's point for it.
    """
    content_vectors = lookup("content_vectors")
    sliced = items[items["colour"] != ""]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = content_vectors(sliced, vocabularies)
    pandas_warnings = sorted(
        {warning.category.__name__ for warning in caught if "pandas" in warning.category.__module__}
    )
    return {"input_after_the_call": sliced, "pandas_warnings": pandas_warnings, "result": result}


def frozen_tower_lookups(lookup, ids: list[str], values: np.ndarray, queries: list[str]) -> np.ndarray:
    """Build the student's frozen tower from vectors and embed a batch of ids.

    Args:
        lookup: the student's objects by name.
        ids: the ids that have vectors (the DataFrame's index).
        values: shape (len(ids), width), their vectors.
        queries: the ids to embed; may include unknown ids.

    Returns:
        float32 array of shape (len(queries), width).
    """
    import tensorflow as tf

    vectors = pd.DataFrame(
        values, index=pd.Index(ids, name="item_no"), columns=[f"f{i}" for i in range(values.shape[1])]
    )
    tower = lookup("frozen_tower")(vectors)
    return np.asarray(tower(tf.constant(queries, dtype=tf.string)), dtype=np.float32)


def frozen_tower_after_training(lookup, ids: list[str], values: np.ndarray, queries: list[str]) -> dict:
    """Build the student's tower, try to train it for a few steps, and report what it looked like before and after.

    Returns observations, never a verdict (see :func:`content_vectors_side_effects`): the
    test compares them with the reference's, so a tower that returns zeros, which cannot
    train either, does not earn the point for it.

    Args:
        lookup: the student's objects by name.
        ids: the ids that have vectors.
        values: shape (len(ids), width), their vectors.
        queries: the ids of the training batch.

    Returns:
        ``{"trainable_weight_shapes": [shape of each trainable weight], "vectors_before_training":
        (len(queries), width) array, "vectors_after_training": the same after three optimizer steps}``.
    """
    import tensorflow as tf

    vectors = pd.DataFrame(values, index=pd.Index(ids), columns=[f"f{i}" for i in range(values.shape[1])])
    tower = lookup("frozen_tower")(vectors)
    batch = tf.constant(queries, dtype=tf.string)
    before = np.asarray(tower(batch), dtype=np.float32)
    optimizer = tf.keras.optimizers.SGD(learning_rate=0.5)
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(tower(batch) - 1.0))
        gradients = tape.gradient(loss, tower.trainable_variables)
        pairs = [(g, v) for g, v in zip(gradients, tower.trainable_variables, strict=True) if g is not None]
        if pairs:
            optimizer.apply_gradients(pairs)
    return {
        "trainable_weight_shapes": [[int(dim) for dim in weight.shape] for weight in tower.trainable_weights],
        "vectors_before_training": before,
        "vectors_after_training": np.asarray(tower(batch), dtype=np.float32),
    }


# Where an id the index driver hands out ends and the vector it carries begins (see _vector_tower).
_VECTOR_MARK = "|"
_CARRIED_VECTOR = re.compile(r"\|[-+0-9.eE,]*")


def _carrying_vectors(ids: list[str], values: np.ndarray) -> list[str]:
    """Each id with its vector written after it: ``"a|0.5,0.25"``."""
    return [
        f"{id_}{_VECTOR_MARK}" + ",".join(repr(float(value)) for value in row)
        for id_, row in zip(ids, np.asarray(values, dtype=np.float32), strict=True)
    ]


def _vector_tower(width: int):
    """A tower of the driver's own that reads each id's vector from the id itself; zeros for an id without one.

    The index exercise needs towers that map ids to fixed vectors, but not by the lookup
    that ``frozen_tower`` asks for: whatever a worker holds, student code can reach, so a
    driver's tower must not be that exercise's answer. This one only parses text: the ids
    it is given carry their vectors (:func:`_carrying_vectors`).
    """
    import tensorflow as tf

    zeros = ",".join(["0"] * width)

    def vectors(ids):
        text = tf.strings.regex_replace(ids, r"^[^|]*\|?", "")
        text = tf.where(tf.strings.length(text) > 0, text, zeros)
        return tf.strings.to_number(tf.strings.split(text, ",").to_tensor(), out_type=tf.float32)

    return tf.keras.Sequential([tf.keras.layers.Lambda(vectors)])


def _without_vectors(value: Any) -> Any:
    """The student's result with the vectors the ids carried taken out again (text, bytes, lists and arrays)."""
    if isinstance(value, str):
        return _CARRIED_VECTOR.sub("", value)
    if isinstance(value, bytes):
        return _CARRIED_VECTOR.sub("", value.decode("utf-8", "replace")).encode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind in "US":
        cleaned = [_without_vectors(item) for item in value.ravel().tolist()]
        return np.array(cleaned, dtype=value.dtype.kind).reshape(value.shape)
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        cleaned = np.empty(value.size, dtype=object)
        for position, item in enumerate(value.ravel().tolist()):
            cleaned[position] = _without_vectors(item)
        return cleaned.reshape(value.shape)
    if isinstance(value, list | tuple):
        return type(value)(_without_vectors(item) for item in value)
    return value


def index_top_k(
    lookup,
    user_ids: list[str],
    user_values: np.ndarray,
    item_ids: list[str],
    item_values: np.ndarray,
    query_users: list[str],
    k: int,
) -> np.ndarray:
    """Give the student's ``top_k_through_index`` two fixed towers and return its answer.

    The ids the function gets carry their vectors, which the towers read (:func:`_vector_tower`);
    they are taken out of its result again.

    Args:
        lookup: the student's objects by name.
        user_ids, user_values: the users' vectors.
        item_ids, item_values: the items' vectors, indexed in this order.
        query_users: the users to recommend to.
        k: how many items per user.

    Returns:
        The student's result (an array of item ids, one row per query user).
    """
    width = np.shape(item_values)[1]
    known_users = dict(zip(user_ids, _carrying_vectors(user_ids, user_values), strict=True))
    # Unknown users carry no vector: the tower gives them zeros.
    users = [known_users.get(user, user) for user in query_users]
    result = lookup("top_k_through_index")(
        _vector_tower(width), _vector_tower(width), np.asarray(_carrying_vectors(item_ids, item_values), dtype=str),
        np.asarray(users, dtype=str), k,
    )  # fmt: skip
    return _without_vectors(result)
