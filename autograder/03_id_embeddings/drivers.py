"""Drivers for lesson 3: the ID tower, the ``tfrs.Model`` and recommending from an index.

TensorFlow is imported inside the drivers, so that listing a lesson's tests
(which imports this module) stays quick. The student's model runs in graph mode,
on batches whose size is unknown until they run, as ``model.fit`` runs it in the
lesson: code that works only eagerly (``len()`` of a tensor, ``.numpy()``) fails
here as it would there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _layers_of(tower, kind) -> list:
    """The layers of a given class inside a tower, however it was put together."""
    found = [layer for layer in getattr(tower, "layers", []) if isinstance(layer, kind)]
    return found or [module for module in tower.submodules if isinstance(module, kind)]


def tower_table(lookup: Callable[[str], Any], values: Sequence[str], dim: int) -> list:
    """The shapes of the embedding tables of the student's tower, read without calling it.

    Drivers report observations, never verdicts (student code runs in the same process and
    could change a verdict): the test compares them with the reference's in the grader.

    Args:
        lookup: returns the student's object of a name.
        values: the ids to build the tower from.
        dim: the embedding size.

    Returns:
        ``[[rows, vector length], ...]``, one per Embedding layer, in the tower's order.
    """
    import tensorflow as tf

    tower = lookup("make_id_tower")(list(values), dim)
    return [
        [int(embedding.input_dim), int(embedding.output_dim)]
        for embedding in _layers_of(tower, tf.keras.layers.Embedding)
    ]


def tower_lookups(lookup: Callable[[str], Any], values: Sequence[str], dim: int, queries: Sequence[str]) -> dict:
    """The student's tower's vectors for some ids, computed in graph mode, and the ids its lookup holds.

    The tower runs as ``model.fit`` runs it (see :mod:`tfrs_course.grading.graph_mode`): in a
    graph, on a batch whose size is unknown until it runs, with its ``call`` converted by
    AutoGraph. A tower that works only eagerly (``.numpy()`` of a tensor, say) fails here as
    it would there.

    Args:
        lookup: returns the student's object of a name.
        values: the ids to build the tower from.
        dim: the embedding size.
        queries: ids to embed, known and unknown.

    Returns:
        ``{"vectors": (Q, dim) array, whatever the tower's random weights, "vocabulary":
        the distinct known ids the lookup holds, sorted}``.
    """
    import tensorflow as tf

    from tfrs_course.grading.graph_mode import as_fit_runs_it

    tower = lookup("make_id_tower")(list(values), dim)
    embed = as_fit_runs_it(tower, [tf.TensorSpec([None], tf.string)])
    vectors = np.asarray(embed(tf.constant(list(queries))), dtype=np.float64)
    lookups = _layers_of(tower, tf.keras.layers.StringLookup)
    vocabulary = sorted(lookups[0].get_vocabulary(include_special_tokens=False)) if lookups else []
    return {"vectors": vectors, "vocabulary": vocabulary}


def _row_tower(table: np.ndarray):
    """A tower of the driver's own that embeds row numbers (as text) with a given table.

    The tests' towers must map ids to fixed vectors, but not by the lookup of ids that
    ``make_id_tower`` asks for: whatever a worker holds, student code can reach, so a
    driver's tower must not be that exercise's answer. The drivers turn ids into row
    numbers themselves (:func:`_rows`), so this tower only converts text to numbers.
    """
    import tensorflow as tf

    embedding = tf.keras.layers.Embedding(table.shape[0], table.shape[1])
    tower = tf.keras.Sequential([
        tf.keras.layers.Lambda(lambda rows: tf.strings.to_number(rows, out_type=tf.int64)),
        embedding,
    ])  # fmt: skip
    tower(tf.constant(["0"]))
    embedding.set_weights([np.asarray(table, dtype=np.float32)])
    return tower


def _rows(ids: Sequence[str], vocabulary: Sequence[str]) -> list[str]:
    """Each id's row in a table whose row 0 is for unknown ids, as text (what :func:`_row_tower` reads)."""
    row_of = {value: row for row, value in enumerate(vocabulary, start=1)}
    return [str(row_of.get(value, 0)) for value in ids]


def _towers(towers: dict) -> tuple:
    """The fixed user and item towers, which read rows (see :func:`_batch_rows`)."""
    return _row_tower(towers["user_table"]), _row_tower(towers["item_table"])


def _batch_rows(towers: dict, batch: dict) -> dict:
    """A batch with its ids turned into the towers' rows."""
    return {
        "user_no": _rows(batch["user_no"], towers["user_vocabulary"]),
        "item_no": _rows(batch["item_no"], towers["item_vocabulary"]),
    }


def id_model_loss(lookup: Callable[[str], Any], towers: dict, batch: dict) -> float:
    """``compute_loss`` of the student's ``IdModel`` on one batch, with a plain Retrieval task, in graph mode.

    Args:
        lookup: returns the student's object of a name.
        towers: ``user_vocabulary``, ``item_vocabulary`` (lists of str), ``user_table``,
            ``item_table`` (embedding tables with one extra, first, row for unknown ids).
        batch: ``{"user_no": [...], "item_no": [...]}``.

    Returns:
        The loss, a float.
    """
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    from tfrs_course.grading.graph_mode import as_fit_runs_it

    user_tower, item_tower = _towers(towers)
    rows = _batch_rows(towers, batch)
    model = lookup("IdModel")(user_tower, item_tower, tfrs.tasks.Retrieval())
    features = {"user_no": tf.constant(rows["user_no"]), "item_no": tf.constant(rows["item_no"])}
    ids = tf.TensorSpec([None], tf.string)
    compute_loss = as_fit_runs_it(
        lambda features: model.compute_loss(features, training=True), [{"user_no": ids, "item_no": ids}]
    )
    return float(compute_loss(features))


def train_id_model(lookup: Callable[[str], Any], towers: dict, batches: list[dict], learning_rate: float) -> dict:
    """Fit the student's ``IdModel`` for one epoch over given batches, from given weights.

    Args:
        lookup: returns the student's object of a name.
        towers: as for :func:`id_model_loss`.
        batches: each ``{"user_no": [...], "item_no": [...]}``; one step each.
        learning_rate: Adagrad's learning rate.

    Returns:
        ``{"user_table": ..., "item_table": ...}`` after training.
    """
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    user_tower, item_tower = _towers(towers)
    model = lookup("IdModel")(user_tower, item_tower, tfrs.tasks.Retrieval())
    # Graph steps, as in the lesson's fit: a step that works only eagerly fails here too.
    model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate))
    dataset = None
    for batch in batches:
        rows = _batch_rows(towers, batch)
        # One batch of all its rows, whose size the graph does not know, as in the lesson's batched datasets.
        step = tf.data.Dataset.from_tensor_slices(
            {"user_no": tf.constant(rows["user_no"]), "item_no": tf.constant(rows["item_no"])}
        ).batch(len(rows["user_no"]))
        dataset = step if dataset is None else dataset.concatenate(step)
    model.fit(dataset, epochs=1, verbose=0)
    return {
        "user_table": user_tower.layers[-1].get_weights()[0].astype(np.float64),
        "item_table": item_tower.layers[-1].get_weights()[0].astype(np.float64),
    }


def _bytes_as_shown(value: Any) -> Any:
    """Ids the student left as bytes, as ``str()`` shows them (``"b'item07'"``); anything else as it is.

    Bytes cannot cross to the tests (:mod:`tfrs_course.grading.boundary` refuses them), and the
    refusal would not say that the ids need decoding; shown like this, they reach the test,
    which names the mistake. Exact types only: a subclass crosses (or is refused) as it is.
    """
    if type(value) is bytes:
        return str(value)
    if type(value) is np.ndarray and value.dtype.kind in "SO":
        return [_bytes_as_shown(item) for item in value.tolist()]
    if type(value) in (list, tuple):
        return [_bytes_as_shown(item) for item in value]
    return value


def recommend_from_index(
    lookup: Callable[[str], Any],
    towers: dict,
    candidate_ids: Sequence[str],
    user_id: str,
    exclude: Sequence[str],
    k: int,
) -> Any:
    """Build a BruteForce index over given item vectors and call the student's ``recommend``.

    Args:
        lookup: returns the student's object of a name.
        towers: ``user_vocabulary`` and ``user_table`` for the query tower, and
            ``item_vectors``: one row per candidate id.
        candidate_ids: the indexed item ids.
        user_id: the user to recommend for.
        exclude: item ids to leave out.
        k: how many items.

    Returns:
        What ``recommend`` returned (it should be a list of str), with bytes shown as text (see
        :func:`_bytes_as_shown`).
    """
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    index = tfrs.layers.factorized_top_k.BruteForce(_row_tower(towers["user_table"]))
    index.index(tf.constant(np.asarray(towers["item_vectors"], dtype=np.float32)), tf.constant(list(candidate_ids)))
    # The query tower reads rows: the user is asked for by theirs.
    (user_row,) = _rows([user_id], towers["user_vocabulary"])
    return _bytes_as_shown(lookup("recommend")(index, user_row, list(exclude), k))
