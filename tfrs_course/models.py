"""The course's retrieval models as reusable builders that return plain numpy vectors.

Lessons 3 to 5 build their models step by step, as exercises. Later work (lesson
6, the serving benchmark) needs the same models trained again on other splits,
without repeating that code. Each builder here trains one of them on a given
train table and returns a :class:`Towers`: the user (query) vectors and the
candidate (item) vectors as numpy arrays, ready for any top-k search.

- :func:`id_model`: lesson 3's two towers of 32-d ID embeddings.
- :func:`content_model`: lesson 4's one-hot item metadata, users as the mean of their items.
- :func:`hybrid_model`: lesson 5's item tower of ID, gender, brand and group
  (:func:`hybrid_item_tower`, which lesson 5's grader uses too).

The ID and hybrid models train as the original study did (Adagrad 0.1, batches
of 4,096 rows shuffled through a buffer of 1,000, three epochs). Ids are mapped
to row numbers in pandas before training rather than by a ``StringLookup`` layer
inside the model: the model is the same (row 0 for unknown ids, then the sorted
vocabulary), and training is faster. Import ``tfrs_course`` before TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

GENDERS = ("boys", "girls", "unisex")
ITEM_FEATURES = ("item_no", "gender_description", "brand", "product_group")


@dataclass(frozen=True)
class Towers:
    """A trained two-tower model, as vectors.

    Attributes:
        user_ids: the users with a vector of their own (str), sorted.
        user_vectors: shape (users, dim), row i for ``user_ids[i]``.
        unknown_user_vector: shape (dim,), what any other user gets.
        item_ids: the candidates (str), the items the model can recommend.
        item_vectors: shape (candidates, dim), row i for ``item_ids[i]``.
        curves: metric name -> one value per epoch trained (empty if not monitored).
        epochs: the epochs of training these vectors come from (0 if untrained).
        unknown_item_vector: shape (dim,), what an item that is not a candidate
            gets (the ID model's out-of-vocabulary row), or None when the
            candidates are the whole catalogue.
    """

    user_ids: np.ndarray
    user_vectors: np.ndarray
    unknown_user_vector: np.ndarray
    item_ids: np.ndarray
    item_vectors: np.ndarray
    curves: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0
    unknown_item_vector: np.ndarray | None = None

    def queries(self, user_ids: Sequence[str]) -> np.ndarray:
        """The vectors of the given users, ``unknown_user_vector`` for those without one.

        Args:
            user_ids: user ids (str), repeats allowed.

        Returns:
            A float32 array of shape (len(user_ids), dim).
        """
        wanted = np.asarray(user_ids, dtype=str)
        rows = np.searchsorted(self.user_ids, wanted)
        rows = np.minimum(rows, len(self.user_ids) - 1)
        known = self.user_ids[rows] == wanted
        vectors = np.where(known[:, None], self.user_vectors[rows], self.unknown_user_vector[None, :])
        return vectors.astype(np.float32)

    def items(self, item_ids: Sequence[str]) -> np.ndarray:
        """The vectors of the given items, ``unknown_item_vector`` for those that are not candidates.

        This is how TFRS embeds a test row's true item, even one the model never
        saw in training (the ID model's out-of-vocabulary row).

        Args:
            item_ids: item ids (str), repeats allowed.

        Returns:
            A float32 array of shape (len(item_ids), dim).

        Raises:
            KeyError: an item is not a candidate and the towers have no unknown-item vector.
        """
        rows = pd.Index(self.item_ids).get_indexer(np.asarray(item_ids, dtype=str))
        if self.unknown_item_vector is None and (rows < 0).any():
            missing = np.asarray(item_ids, dtype=str)[rows < 0][:3].tolist()
            raise KeyError(f"items without a vector (not candidates), for example {missing}")
        unknown = self.unknown_item_vector if self.unknown_item_vector is not None else self.item_vectors[0]
        return np.where((rows >= 0)[:, None], self.item_vectors[rows], unknown[None, :]).astype(np.float32)

    def restricted_to(self, item_ids: Sequence[str]) -> Towers:
        """The same towers with only the given items as candidates (kept in this order).

        Args:
            item_ids: candidate ids to keep (str); ids that are not candidates are ignored.

        Returns:
            A :class:`Towers` whose candidates are those items.
        """
        keep = np.isin(self.item_ids, np.asarray(item_ids, dtype=str))
        return replace(self, item_ids=self.item_ids[keep], item_vectors=self.item_vectors[keep])


def _codes(values: pd.Series | np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """Row numbers of values in a sorted vocabulary: 1..n for known values, 0 for unknown."""
    values = np.asarray(values, dtype=str)
    rows = np.minimum(np.searchsorted(vocabulary, values), len(vocabulary) - 1)
    return np.where(vocabulary[rows] == values, rows + 1, 0).astype(np.int32)


def hybrid_item_tower(
    vocabularies: dict[str, Sequence[str]],
    *,
    item_id_dim: int = 16,
    brand_dim: int = 8,
    group_dim: int = 5,
    codes: bool = False,
):
    """Lesson 5's item tower: [item ID embedding | gender one-hot | brand embedding | group embedding].

    Args:
        vocabularies: each name of ``ITEM_FEATURES`` -> its known values. Every embedding
            table has one more row, first, shared by all unknown values; the gender
            one-hot has one column per known gender.
        item_id_dim: width of the item ID embedding.
        brand_dim: width of the brand embedding.
        group_dim: width of the product-group embedding.
        codes: the tower takes integer codes (0 for unknown, i + 1 for the vocabulary's
            i-th value; see :func:`_codes`) instead of strings: faster in a training loop
            that encodes its table once. With strings, ``StringLookup`` layers do it.

    Returns:
        A Keras model: a dict of 1-d tensors keyed by ``ITEM_FEATURES`` -> a float32
        tensor of shape (batch, item_id_dim + len(genders) + brand_dim + group_dim).
    """
    import tensorflow as tf

    def embedding(values: Sequence[str], dim: int):
        table = tf.keras.layers.Embedding(len(values) + 1, dim)
        if codes:
            return table
        return tf.keras.Sequential([tf.keras.layers.StringLookup(vocabulary=list(values), num_oov_indices=1), table])

    genders = list(vocabularies["gender_description"])
    if codes:
        # Code 0 (an unknown gender) gives an all-zero one-hot row.
        gender_one_hot = tf.keras.layers.Lambda(lambda code: tf.one_hot(code - 1, len(genders)))
    else:
        gender_one_hot = tf.keras.layers.StringLookup(vocabulary=genders, num_oov_indices=0, output_mode="one_hot")
    parts = {
        "item_no": embedding(vocabularies["item_no"], item_id_dim),
        "gender_description": gender_one_hot,
        "brand": embedding(vocabularies["brand"], brand_dim),
        "product_group": embedding(vocabularies["product_group"], group_dim),
    }

    class ItemTower(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.parts = parts

        def call(self, features):
            return tf.concat([self.parts[name](features[name]) for name in ITEM_FEATURES], axis=1)

    return ItemTower()


def _fit(
    model,
    features: dict[str, np.ndarray],
    snapshot: Callable[[int], Towers],
    *,
    epochs: int,
    batch_size: int,
    shuffle_buffer: int,
    seed: int,
    monitor: Callable[[Towers], dict[str, float]] | None,
    stop_on: str | None,
    patience: int,
) -> Towers:
    """Train a compiled tfrs.Model, measuring after each epoch and stopping early if asked.

    Returns:
        The towers after the last epoch, or after the best epoch by ``stop_on``
        (higher is better) when early stopping is on.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(features).shuffle(shuffle_buffer, seed=seed).batch(batch_size)
    curves: dict[str, list[float]] = {}
    best: dict[str, object] = {"score": -np.inf, "towers": None, "waited": 0}

    class Measure(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if monitor is None and stop_on is None:
                return  # nothing to measure: take the vectors once, after the last epoch
            towers = snapshot(epoch + 1)
            measured = monitor(towers) if monitor is not None else {}
            for name, value in measured.items():
                curves.setdefault(name, []).append(float(value))
            if stop_on is None:
                best["towers"] = towers
                return
            if measured[stop_on] > best["score"]:
                best.update(score=measured[stop_on], towers=towers, waited=0)
            else:
                best["waited"] += 1
                # Keep the best epoch's vectors: later epochs only overfit more.
                if best["waited"] >= patience:
                    self.model.stop_training = True

    model.fit(dataset, epochs=epochs, callbacks=[Measure()], verbose=0)
    if best["towers"] is None:
        best["towers"] = snapshot(epochs)
    return replace(best["towers"], curves=curves)


def id_model(
    train: pd.DataFrame,
    *,
    embedding_dim: int = 32,
    epochs: int = 3,
    batch_size: int = 4096,
    learning_rate: float = 0.1,
    shuffle_buffer: int = 1000,
    seed: int = 42,
    l2: float = 0.0,
    monitor: Callable[[Towers], dict[str, float]] | None = None,
    stop_on: str | None = None,
    patience: int = 1,
) -> Towers:
    """Train lesson 3's model: one learned vector per user and per item.

    Args:
        train: interactions with ``user_no`` and ``item_no`` columns.
        embedding_dim: the length of every vector.
        epochs: passes over ``train`` (the most, with early stopping).
        batch_size: rows per step; the other items of a batch are the negatives.
        learning_rate: Adagrad's learning rate.
        shuffle_buffer: the shuffle buffer, as in the original study.
        seed: fixes the initial vectors and the shuffling.
        l2: weight of an L2 penalty on both embedding tables (0 for none).
        monitor: called after each epoch with the towers so far; returns
            metric name -> value, recorded in ``Towers.curves``.
        stop_on: a name ``monitor`` returns; stop when it has not improved for
            ``patience`` epochs and return the best epoch's towers.
        patience: epochs without improvement before stopping.

    Returns:
        :class:`Towers` whose candidates are the distinct items of ``train``.
        Unknown users get the embedding's out-of-vocabulary row.
    """
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    tf.keras.utils.set_random_seed(seed)
    users = np.unique(train["user_no"].to_numpy(dtype=str))
    items = np.unique(train["item_no"].to_numpy(dtype=str))
    regularizer = tf.keras.regularizers.l2(l2) if l2 > 0 else None
    user_table = tf.keras.layers.Embedding(len(users) + 1, embedding_dim, embeddings_regularizer=regularizer)
    item_table = tf.keras.layers.Embedding(len(items) + 1, embedding_dim, embeddings_regularizer=regularizer)

    class Model(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.user_table, self.item_table = user_table, item_table
            self.task = tfrs.tasks.Retrieval()

        def compute_loss(self, features, training=False):
            return self.task(
                self.user_table(features["user"]), self.item_table(features["item"]), compute_metrics=not training
            )

    model = Model()
    model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate))

    def snapshot(epoch: int) -> Towers:
        user_matrix, item_matrix = user_table.get_weights()[0], item_table.get_weights()[0]
        return Towers(
            users, user_matrix[1:], user_matrix[0], items, item_matrix[1:], epochs=epoch,
            unknown_item_vector=item_matrix[0],
        )  # fmt: skip

    features = {"user": _codes(train["user_no"], users), "item": _codes(train["item_no"], items)}
    return _fit(
        model, features, snapshot, epochs=epochs, batch_size=batch_size, shuffle_buffer=shuffle_buffer,
        seed=seed, monitor=monitor, stop_on=stop_on, patience=patience,
    )  # fmt: skip


def most_frequent(frame: pd.DataFrame, column: str, n: int | None = None) -> list[str]:
    """The n most frequent values of a column, ties broken by value (all of them if n is None)."""
    counts = frame[column].value_counts().rename("count").reset_index()
    ordered = counts.sort_values(["count", column], ascending=[False, True], kind="stable")
    return ordered[column].head(n).tolist()


def content_model(train: pd.DataFrame, items: pd.DataFrame, *, top_brands: int = 100, top_groups: int = 50) -> Towers:
    """Lesson 4's content-based vectors: nothing is trained.

    An item is one-hot over its gender, its brand (the ``top_brands`` most
    frequent in ``train``, else "other") and its product group (likewise); a user
    is the mean of the vectors of their items in ``train``.

    Args:
        train: interactions with ``user_no`` and ``item_no``.
        items: the catalogue, one row per item, with ``item_no`` and the three features.
        top_brands: brands with their own column.
        top_groups: product groups with their own column.

    Returns:
        :class:`Towers` over every catalogue item; unknown users get zeros.
    """
    vocabularies = {
        "gender_description": sorted(items["gender_description"].unique()),
        "brand": most_frequent(train, "brand", top_brands),
        "product_group": most_frequent(train, "product_group", top_groups),
    }
    blocks = []
    for feature, vocabulary in vocabularies.items():
        values = pd.Categorical(items[feature].where(items[feature].isin(vocabulary), "other"), [*vocabulary, "other"])
        blocks.append(np.eye(len(vocabulary) + 1, dtype=np.float32)[values.codes])
    item_vectors = np.hstack(blocks)
    item_ids = items["item_no"].to_numpy(dtype=str)
    rows = pd.Index(item_ids).get_indexer(train["item_no"].to_numpy(dtype=str))
    user_codes, users = pd.factorize(train["user_no"].to_numpy(dtype=str), sort=True)
    sums = np.zeros((len(users), item_vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, user_codes, item_vectors[rows])
    user_vectors = (sums / np.bincount(user_codes)[:, None]).astype(np.float32)
    return Towers(
        np.asarray(users, dtype=str), user_vectors, np.zeros(item_vectors.shape[1], np.float32), item_ids, item_vectors
    )


def hybrid_model(
    train: pd.DataFrame,
    items: pd.DataFrame,
    *,
    user_dim: int = 32,
    item_id_dim: int = 16,
    brand_dim: int = 8,
    group_dim: int = 5,
    epochs: int = 3,
    batch_size: int = 4096,
    learning_rate: float = 0.1,
    shuffle_buffer: int = 1000,
    seed: int = 42,
    monitor: Callable[[Towers], dict[str, float]] | None = None,
) -> Towers:
    """Train lesson 5's hybrid: a user ID embedding against [item ID | gender | brand | group].

    Args:
        train: interactions with ``user_no`` and the item columns ``ITEM_FEATURES``.
        items: the catalogue; every one of its items is a candidate.
        user_dim: the user embedding; must equal item_id_dim + 3 + brand_dim + group_dim.
        item_id_dim: the item ID embedding.
        brand_dim: the brand embedding.
        group_dim: the product-group embedding.
        epochs: passes over ``train``.
        batch_size: rows per step.
        learning_rate: Adagrad's learning rate.
        shuffle_buffer: the shuffle buffer.
        seed: fixes the initial weights and the shuffling.
        monitor: as for :func:`id_model`.

    Returns:
        :class:`Towers` whose candidates are all catalogue items (use
        :meth:`Towers.restricted_to` for the items seen in ``train`` only).
    """
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    if user_dim != item_id_dim + len(GENDERS) + brand_dim + group_dim:
        raise ValueError("the user vector must be as long as the item vector for a dot product")
    tf.keras.utils.set_random_seed(seed)
    users = np.unique(train["user_no"].to_numpy(dtype=str))
    vocabularies = {column: np.unique(train[column].to_numpy(dtype=str)) for column in ITEM_FEATURES}
    genders = np.asarray(GENDERS)
    user_table = tf.keras.layers.Embedding(len(users) + 1, user_dim)
    item_tower = hybrid_item_tower(
        {**vocabularies, "gender_description": genders}, item_id_dim=item_id_dim, brand_dim=brand_dim,
        group_dim=group_dim, codes=True,
    )  # fmt: skip

    class Model(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.user_table, self.item_tower = user_table, item_tower
            self.task = tfrs.tasks.Retrieval()

        def compute_loss(self, features, training=False):
            return self.task(self.user_table(features["user_no"]), item_tower(features), compute_metrics=not training)

    def item_codes(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        codes = {column: _codes(frame[column], vocabularies[column]) for column in ITEM_FEATURES}
        codes["gender_description"] = _codes(frame["gender_description"], genders)
        return codes

    # The item tower embeds any item from its metadata (an item missing from
    # train gets the out-of-vocabulary ID row), so every catalogue item is a candidate.
    candidates = items.reset_index(drop=True)
    candidate_codes = item_codes(candidates)
    model = Model()
    model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate))

    def snapshot(epoch: int) -> Towers:
        user_matrix = user_table.get_weights()[0]
        item_vectors = item_tower({name: tf.constant(codes) for name, codes in candidate_codes.items()}).numpy()
        return Towers(
            users, user_matrix[1:], user_matrix[0], candidates["item_no"].to_numpy(dtype=str), item_vectors,
            epochs=epoch,
        )  # fmt: skip

    features = {"user_no": _codes(train["user_no"], users), **item_codes(train)}
    return _fit(
        model, features, snapshot, epochs=epochs, batch_size=batch_size, shuffle_buffer=shuffle_buffer,
        seed=seed, monitor=monitor, stop_on=None, patience=1,
    )  # fmt: skip
