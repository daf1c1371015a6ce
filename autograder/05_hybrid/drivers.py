"""Drivers for lesson 5 (the hybrid model): they build and exercise the student's towers and model.

The item tower is graded by what it does, not by where its numbers sit
(:func:`item_tower_behaviour`): which output columns each feature moves, which
values share a vector, whether gender is one-hot. So a correct tower passes
whatever order it keeps its vocabularies in, and however its layers are laid out.

Weights are set by the driver, not left to random initialisation: every
trainable variable gets values that depend only on its shape, so runs are
repeatable. For the model exercise the driver's own towers are used: plain ones that
read every feature by name, deliberately unlike the item tower the lesson asks for.
These drivers import nothing from the kit's models (the lesson's own answers): grading
workers load them, and student code can reach anything they keep alive.
"""

from __future__ import annotations

import numpy as np

# The item features, in the order the lesson's towers read them.
ITEM_FEATURES = ("item_no", "gender_description", "brand", "product_group")


def _values_for(shape) -> np.ndarray:
    """Deterministic float32 values for a variable, from its shape alone."""
    dims = [int(dim) for dim in shape]
    rng = np.random.default_rng([2024, *dims])
    return rng.normal(0.0, 0.5, size=dims).astype(np.float32)


def _set_weights(model) -> None:
    for variable in model.trainable_variables:
        variable.assign(_values_for(variable.shape))


def _tensors(batch: dict[str, list[str]], columns) -> dict:
    import tensorflow as tf

    return {column: tf.constant(list(batch[column]), dtype=tf.string) for column in columns}


def _item_tower(lookup, vocabularies: dict[str, list[str]]):
    return lookup("ItemTower")(
        vocabularies["item_no"], vocabularies["gender_description"], vocabularies["brand"],
        vocabularies["product_group"],
    )  # fmt: skip


def item_tower_weight_shapes(lookup, vocabularies: dict[str, list[str]]) -> list:
    """The shapes of the student's item tower's trainable weights, smallest first.

    The tower is built by calling it on two copies of an item made of each vocabulary's first
    value, which every table can look up, even one sized without a row for unknown values.

    Args:
        lookup: the student's objects by name.
        vocabularies: ``item_no``, ``gender_description``, ``brand``, ``product_group`` -> values.

    Returns:
        A sorted list of shapes (each a list of ints).
    """
    tower = _item_tower(lookup, vocabularies)
    tower(_tensors({feature: vocabularies[feature][:1] * 2 for feature in ITEM_FEATURES}, ITEM_FEATURES))
    return sorted([int(dim) for dim in variable.shape] for variable in tower.trainable_variables)


def item_tower_behaviour(lookup, vocabularies: dict[str, list[str]], batch: dict[str, list[str]]) -> dict:
    """The student's item tower's vectors, from set weights, for items varied one feature at a time.

    Items are varied one feature at a time around the batch's first item: each
    feature takes, in turn, every value it has in the batch (and, except gender,
    two values no vocabulary holds). The test makes its verdict from these vectors in
    the grader (which columns each feature moves, which values share a vector): a
    verdict made here could be changed by the student's code, which runs in this process.

    The tower runs as ``model.fit`` runs it (see :mod:`tfrs_course.grading.graph_mode`): in a
    graph, on a batch whose size is unknown until it runs, with its ``call`` converted by
    AutoGraph. A tower that works only eagerly (``.numpy()`` of a tensor, say) fails here as
    it would there.

    Args:
        lookup: the student's objects by name.
        vocabularies: as for :func:`item_tower_weight_shapes`.
        batch: one list of values per item feature; may hold unknown ids, brands and groups.

    Returns:
        ``{"batch": the (items, width) vectors of the batch, "varied": {feature: the (values,
        width) vectors of the items that differ only in that feature}}``.
    """
    import tensorflow as tf

    from tfrs_course.grading.graph_mode import as_fit_runs_it

    tower = _item_tower(lookup, vocabularies)
    signature = [{feature: tf.TensorSpec([None], tf.string) for feature in ITEM_FEATURES}]
    embed = as_fit_runs_it(tower, signature)
    inputs = _tensors(batch, ITEM_FEATURES)
    embed(inputs)
    _set_weights(tower)
    base = {feature: batch[feature][0] for feature in ITEM_FEATURES}
    varied = {}
    for feature in ITEM_FEATURES:
        values = list(dict.fromkeys(batch[feature]))
        if feature != "gender_description":
            values += [f"unknown {feature} 1", f"unknown {feature} 2"]
        rows = {name: [value] * len(values) for name, value in base.items()}
        rows[feature] = values
        varied[feature] = np.asarray(embed(_tensors(rows, ITEM_FEATURES)), dtype=np.float64)
    return {"batch": np.asarray(embed(inputs), dtype=np.float64), "varied": varied}


def _driver_towers(vocabularies: dict[str, list[str]], dim: int = 32):
    """Towers of the driver's own, so that the model exercise is tested on its own, whatever the student's ItemTower.

    The user tower is an embedding of ``user_no``. The item tower sums one embedding per item
    feature, each looked up in that feature's vocabulary with one row for unknown values, so a
    feature fed under another feature's name changes the loss. It is not the lesson's item tower
    (that one joins its parts side by side, with a one-hot gender).
    """
    import tensorflow as tf

    def embedding(values: list[str]):
        return tf.keras.Sequential([
            tf.keras.layers.StringLookup(vocabulary=list(values), num_oov_indices=1),
            tf.keras.layers.Embedding(len(values) + 1, dim),
        ])  # fmt: skip

    class SummedItemTower(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.parts = {feature: embedding(vocabularies[feature]) for feature in ITEM_FEATURES}

        def call(self, features):
            return tf.add_n([self.parts[feature](features[feature]) for feature in ITEM_FEATURES])

    return embedding(vocabularies["user_no"]), SummedItemTower()


def _student_model(lookup, vocabularies, batch):
    import tensorflow_recommenders as tfrs

    user_tower, item_tower = _driver_towers(vocabularies)
    user_tower(_tensors(batch, ["user_no"])["user_no"])
    item_tower(_tensors(batch, ITEM_FEATURES))
    _set_weights(user_tower)
    _set_weights(item_tower)
    return lookup("HybridModel")(user_tower, item_tower, tfrs.tasks.Retrieval()), user_tower


def hybrid_loss(lookup, vocabularies: dict[str, list[str]], batch: dict[str, list[str]]) -> dict:
    """The student's model's loss on one batch, from fixed weights, in training and in evaluation.

    ``compute_loss`` runs in graph mode, on a batch whose size is unknown until it runs, as
    ``model.fit`` runs it in the lesson: code that works only eagerly (``len()`` of a tensor,
    ``.numpy()``) fails here as it would there.

    Args:
        lookup: the student's objects by name.
        vocabularies: ``user_no`` and the item features -> values.
        batch: a dict of lists of str with ``user_no`` and every item feature.

    Returns:
        ``{"training": float, "evaluation": float}``.
    """
    import tensorflow as tf

    from tfrs_course.grading.graph_mode import as_fit_runs_it

    model, _ = _student_model(lookup, vocabularies, batch)
    features = _tensors(batch, ["user_no", *ITEM_FEATURES])
    signature = [{name: tf.TensorSpec([None], tf.string) for name in features}]
    training = as_fit_runs_it(lambda features: model.compute_loss(features, training=True), signature)
    evaluation = as_fit_runs_it(lambda features: model.compute_loss(features, training=False), signature)
    return {"training": float(training(features)), "evaluation": float(evaluation(features))}


def hybrid_fit(lookup, vocabularies: dict[str, list[str]], batch: dict[str, list[str]], batch_size: int) -> dict:
    """Train the student's model for two epochs with Keras ``fit`` (in graph mode) and report.

    Args:
        lookup: the student's objects by name.
        vocabularies: ``user_no`` and the item features -> values.
        batch: the training rows, a dict of lists of str.
        batch_size: rows per batch (not shuffled, so the run is deterministic).

    Returns:
        ``{"losses": [one per epoch], "user_table": the user embedding table after training}``.
    """
    import tensorflow as tf

    model, user_tower = _student_model(lookup, vocabularies, batch)
    model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=0.05))
    rows = tf.data.Dataset.from_tensor_slices(_tensors(batch, ["user_no", *ITEM_FEATURES])).batch(batch_size)
    history = model.fit(rows, epochs=2, verbose=0)
    (user_table,) = user_tower.trainable_variables
    return {
        "losses": [float(loss) for loss in history.history["loss"]],
        "user_table": np.asarray(user_table.numpy(), dtype=np.float32),
    }
