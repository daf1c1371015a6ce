"""tfrs_course.models on tiny tables: shapes, unknown users, seeds, content vectors, early stopping."""

import numpy as np
import pandas as pd
import pytest

import tfrs_course  # noqa: F401  (before TensorFlow: legacy Keras)
from tfrs_course import models


def _interactions(seed: int = 0, rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "user_no": rng.integers(0, 30, rows).astype(str),
        "item_no": rng.integers(100, 160, rows).astype(str),
        "gender_description": rng.choice(["boys", "girls", "unisex"], rows),
        "brand": rng.choice(["molo", "reima", "jacadi", "rare"], rows),
        "product_group": rng.choice(["tops", "bottoms", "coats"], rows),
    }).drop_duplicates(["user_no", "item_no"])  # fmt: skip


def _catalogue(train: pd.DataFrame) -> pd.DataFrame:
    items = train.drop_duplicates("item_no")[["item_no", "gender_description", "brand", "product_group"]]
    extra = pd.DataFrame(
        {"item_no": ["999"], "gender_description": ["girls"], "brand": ["unknown"], "product_group": ["tops"]}
    )
    return pd.concat([items, extra], ignore_index=True)


def test_id_model_shapes_unknown_users_and_seed():
    train = _interactions()
    towers = models.id_model(train, embedding_dim=8, epochs=2, batch_size=64, seed=1)
    assert towers.epochs == 2
    assert list(towers.user_ids) == sorted(train["user_no"].unique())
    assert list(towers.item_ids) == sorted(train["item_no"].unique())
    assert towers.user_vectors.shape == (train["user_no"].nunique(), 8)
    assert towers.item_vectors.shape == (train["item_no"].nunique(), 8)
    queries = towers.queries([towers.user_ids[3], "nobody", towers.user_ids[0]])
    np.testing.assert_array_equal(queries[0], towers.user_vectors[3])
    np.testing.assert_array_equal(queries[1], towers.unknown_user_vector)
    again = models.id_model(train, embedding_dim=8, epochs=2, batch_size=64, seed=1)
    np.testing.assert_allclose(again.item_vectors, towers.item_vectors, rtol=1e-5, atol=1e-6)


def test_id_model_early_stopping_keeps_the_best_epoch():
    scores = iter([0.1, 0.3, 0.2, 0.25, 0.9])
    towers = models.id_model(
        _interactions(), embedding_dim=4, epochs=5, batch_size=64,
        monitor=lambda _: {"validation": next(scores)}, stop_on="validation", patience=1,
    )  # fmt: skip
    assert towers.curves == {"validation": [0.1, 0.3, 0.2]}
    assert towers.epochs == 2


def test_content_model_users_are_the_mean_of_their_items():
    train = _interactions()
    items = _catalogue(train)
    towers = models.content_model(train, items, top_brands=2, top_groups=2)
    # As lesson 4: 3 genders + other, 2 brands + other, 2 groups + other.
    assert towers.item_vectors.shape == (len(items), 10)
    np.testing.assert_array_equal(towers.item_vectors.sum(axis=1), 3.0)
    user = towers.user_ids[5]
    rows = pd.Index(towers.item_ids).get_indexer(train.loc[train["user_no"] == user, "item_no"])
    np.testing.assert_allclose(towers.queries([user])[0], towers.item_vectors[rows].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(towers.queries(["nobody"])[0], 0.0)


def test_hybrid_model_candidates_are_the_whole_catalogue():
    train = _interactions()
    items = _catalogue(train)
    towers = models.hybrid_model(
        train, items, user_dim=12, item_id_dim=4, brand_dim=3, group_dim=2, epochs=1, batch_size=64
    )
    # The item tower embeds any item from its metadata, "999" (never in train) included.
    assert list(towers.item_ids) == list(items["item_no"])
    assert towers.item_vectors.shape == (len(items), 12)
    # The gender part is a one-hot of the item's gender.
    genders = items.set_index("item_no").loc[towers.item_ids, "gender_description"]
    expected = np.stack([(genders == g).to_numpy() for g in models.GENDERS], axis=1).astype(np.float32)
    np.testing.assert_array_equal(towers.item_vectors[:, 4:7], expected)
    trained_only = towers.restricted_to(train["item_no"].unique())
    assert sorted(trained_only.item_ids) == sorted(train["item_no"].unique())
    np.testing.assert_array_equal(towers.items(["999"]), towers.item_vectors[-1:])
    with pytest.raises(ValueError, match="as long as"):
        models.hybrid_model(train, items, user_dim=10, epochs=1)


def test_id_model_gives_unknown_items_the_out_of_vocabulary_vector():
    train = _interactions()
    towers = models.id_model(train, embedding_dim=8, epochs=1, batch_size=64, seed=1)
    known = towers.item_ids[3]
    vectors = towers.items([known, "never-seen", known])
    np.testing.assert_array_equal(vectors[0], towers.item_vectors[3])
    np.testing.assert_array_equal(vectors[1], towers.unknown_item_vector)
    content = models.content_model(train, _catalogue(train), top_brands=2, top_groups=2)
    with pytest.raises(KeyError, match="never-seen"):
        content.items(["never-seen"])
