"""Drivers for lesson 2: the in-batch loss and the hand-written Keras model.

Every driver takes plain data (numpy arrays, lists of str), builds TensorFlow
objects from it, runs the student's code on them and returns plain data.
The student's losses and training steps run in graph mode, with batches whose
size is unknown until they run, as ``model.fit`` runs them in the lesson: code
that works only eagerly (``len()`` of a tensor, ``.numpy()``) fails here as it
would there.
TensorFlow is imported inside the drivers, so that listing a lesson's tests
(which imports this module) stays quick.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _plain(value: Any) -> float | np.ndarray:
    """A tensor or number as a float (scalar) or a float64 array."""
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)
    return float(array) if array.ndim == 0 else array


@functools.cache
def _loss_graph(loss: Callable[..., Any], with_logq: bool) -> Callable[..., Any]:
    """The loss as the lesson's fit runs it: called from train_step, unconverted, in graph mode.

    One graph per loss function for the whole submission, as fit traces the loss once:
    every test calls it on batches of the same signature, and tracing costs more than a call.
    """
    import tensorflow as tf

    from tfrs_course.grading.graph_mode import as_fit_runs_it

    embeddings = tf.TensorSpec([None, None], tf.float32)
    logq = [tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.string)] if with_logq else []
    return as_fit_runs_it(loss, [embeddings, embeddings, *logq])


def call_loss(lookup: Callable[[str], Any], name: str, queries: np.ndarray, candidates: np.ndarray) -> Any:
    """Call a student's loss function on float32 tensors.

    Args:
        lookup: returns the student's object of a name.
        name: the loss function's name.
        queries: (B, dim) query embeddings.
        candidates: (B, dim) candidate embeddings.

    Returns:
        The loss as a float (or an array, if the student's function returned one).
    """
    import tensorflow as tf

    loss = _loss_graph(lookup(name), with_logq=False)
    return _plain(loss(tf.constant(queries, tf.float32), tf.constant(candidates, tf.float32)))


def call_logq_loss(
    lookup: Callable[[str], Any],
    queries: np.ndarray,
    candidates: np.ndarray,
    probabilities: np.ndarray,
    candidate_ids: list[str],
) -> Any:
    """Call the student's ``logq_in_batch_loss`` on tensors: float32 embeddings and probabilities, string ids.

    Returns:
        The loss as a float (or an array, if the student's function returned one).
    """
    import tensorflow as tf

    loss = _loss_graph(lookup("logq_in_batch_loss"), with_logq=True)
    return _plain(
        loss(
            tf.constant(queries, tf.float32), tf.constant(candidates, tf.float32),
            tf.constant(probabilities, tf.float32), tf.constant(list(candidate_ids), tf.string),
        )
    )  # fmt: skip


def squared_score_loss(query_embeddings, candidate_embeddings):
    """The loss the model tests train with: the summed squared gap between the scores and the identity.

    Deliberately not the in-batch softmax loss of exercise 1: grading workers hold these drivers,
    and student code can reach them, so they must not hold an exercise's answer. A model test
    checks how the model trains with whatever loss it is given, so any loss both towers move serves.
    """
    import tensorflow as tf

    scores = tf.linalg.matmul(query_embeddings, candidate_embeddings, transpose_b=True)
    return tf.reduce_sum(tf.square(scores - tf.eye(tf.shape(scores)[0], tf.shape(scores)[1])))


def id_tower(vocabulary: Sequence[str], table: np.ndarray):
    """StringLookup (one out-of-vocabulary row, row 0) then an Embedding holding ``table``.

    Args:
        vocabulary: the known ids.
        table: (len(vocabulary) + 1, dim) initial embedding weights.

    Returns:
        A built ``tf.keras.Sequential``.
    """
    import tensorflow as tf

    embedding = tf.keras.layers.Embedding(len(vocabulary) + 1, table.shape[1])
    tower = tf.keras.Sequential(
        [tf.keras.layers.StringLookup(vocabulary=list(vocabulary), num_oov_indices=1), embedding]
    )
    tower(tf.constant([vocabulary[0]]))
    embedding.set_weights([np.asarray(table, dtype=np.float32)])
    return tower


def _batch(users: Sequence[str], items: Sequence[str]):
    import tensorflow as tf

    features = {"user_no": tf.constant(list(users)), "item_no": tf.constant(list(items))}
    # One batch of all the rows, whose size the graph does not know, as in the lesson's batched datasets.
    return tf.data.Dataset.from_tensor_slices(features).batch(len(users))


def _model(lookup, towers: dict, learning_rate: float):
    import tensorflow as tf

    user_tower = id_tower(towers["user_vocabulary"], towers["user_table"])
    item_tower = id_tower(towers["item_vocabulary"], towers["item_table"])
    model = lookup("TwoTowerModel")(user_tower, item_tower, squared_score_loss)
    # Graph steps, as in the lesson's fit: a step that works only eagerly fails here too.
    model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate))
    return model, user_tower, item_tower


def _tables(user_tower, item_tower) -> dict[str, np.ndarray]:
    return {
        "user_table": user_tower.layers[-1].get_weights()[0].astype(np.float64),
        "item_table": item_tower.layers[-1].get_weights()[0].astype(np.float64),
    }


def train_two_tower(
    lookup: Callable[[str], Any],
    towers: dict,
    batches: list[dict],
    learning_rate: float = 0.1,
) -> dict:
    """Build the student's ``TwoTowerModel`` from given weights and fit it on given batches.

    Args:
        lookup: returns the student's object of a name.
        towers: ``user_vocabulary``, ``item_vocabulary`` (lists of str) and
            ``user_table``, ``item_table`` (initial embedding tables).
        batches: each ``{"user_no": [...], "item_no": [...]}``, one training step each,
            in order (one epoch).
        learning_rate: Adagrad's learning rate.

    Returns:
        ``{"loss": the epoch's reported loss, "user_table": ..., "item_table": ...}``
        with the tables after training.
    """
    model, user_tower, item_tower = _model(lookup, towers, learning_rate)
    dataset = _batch(batches[0]["user_no"], batches[0]["item_no"])
    for batch in batches[1:]:
        dataset = dataset.concatenate(_batch(batch["user_no"], batch["item_no"]))
    history = model.fit(dataset, epochs=1, verbose=0)
    return {"loss": float(history.history["loss"][-1]), **_tables(user_tower, item_tower)}


def evaluate_two_tower(lookup: Callable[[str], Any], towers: dict, batch: dict) -> dict:
    """Build the student's ``TwoTowerModel`` from given weights and evaluate it on one batch.

    Args:
        lookup: returns the student's object of a name.
        towers: as for :func:`train_two_tower`.
        batch: ``{"user_no": [...], "item_no": [...]}``.

    Returns:
        ``{"loss": evaluate's loss, "user_table": ..., "item_table": ...}`` with the
        tables after evaluation (they must not have changed).
    """
    model, user_tower, item_tower = _model(lookup, towers, 0.1)
    results = model.evaluate(_batch(batch["user_no"], batch["item_no"]), return_dict=True, verbose=0)
    return {"loss": float(results["loss"]), **_tables(user_tower, item_tower)}
