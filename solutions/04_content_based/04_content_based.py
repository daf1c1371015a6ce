# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (tfrs-course)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 4: Content-based towers
#
# The models of lessons 2 and 3 learn one vector per user and per item from who
# interacted with what. This lesson learns nothing at all. We describe each item
# by what it *is* (gender, brand, product group), describe each user by the
# items they chose, and let the dot product of the two find items like the ones
# a user already likes. The same TFRS machinery serves it: two towers and an index.
#
# **You will learn to**
# - turn item metadata into one-hot vectors, bucketing rare brands and product
#   groups into "other", without changing the DataFrame you were given;
# - describe a user as the mean of the vectors of the items in their history;
# - wrap precomputed vectors in a *frozen* Keras tower, with a zero vector for ids
#   it has never seen;
# - retrieve the best items for many users at once through a `BruteForce` index,
#   and score the result with the course's top-k accuracy;
# - say what content-based recommendations are good at, and what they miss.
#
# **Exercises** (each has a self-check cell right after it):
# 1. `content_vectors`: one-hot item vectors with rare values bucketed.
# 2. `user_vectors`: each user's mean item vector.
# 3. `frozen_tower`: a Keras model that looks vectors up and never trains them.
# 4. `top_k_through_index`: the best k items per user, from a `BruteForce` index.

# %% tags=["setup"]
# Setup: run this cell before the lesson's other code (in Colab, after the cell above).
# `import tfrs_course` must come before TensorFlow
# is imported anywhere, because it selects the Keras version that TFRS needs.
import tfrs_course  # isort: skip

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_course.data import load_babyshop
from tfrs_course.grading import Checker

check = Checker("04_content_based")
print(f"tfrs_course {tfrs_course.__version__}, TensorFlow {tf.__version__}, TFRS {tfrs.__version__}.")

# %% tags=["parameters"]
# Parameters. Tests and `make demo` may override these when they run the lesson.
SEED = 42  # fixes the random choices below (which user we look at closely)
NUM_USERS = 2000  # the most active users we keep, as in every lesson
TOP_BRANDS = 100  # brands with their own column; the rest become "other"
TOP_GROUPS = 50  # product groups with their own column; the rest become "other"
KS = (1, 5, 10, 50, 100)  # the cut-offs we report accuracy at

# %%
tf.keras.utils.set_random_seed(SEED)

# %% [markdown]
# ## 1. The data and the users
#
# As in every lesson, we keep the `NUM_USERS` users with the most training rows
# and their test rows. Items are different: a content-based recommender can
# suggest *any* item of the catalogue, even one nobody has touched yet, because
# it only needs the item's metadata. So the candidates are all items of
# `data.items`, not just those seen in training.

# %%
from tfrs_course.evaluation import most_active_users, restrict_to_users

data = load_babyshop()
print(data)
top_users = most_active_users(data.train, NUM_USERS)
train_top, test_top = restrict_to_users([data.train, data.test], top_users)
items = data.items
print(
    f"{len(train_top):,} train rows and {len(test_top):,} test rows of {len(top_users):,} users; "
    f"{len(items):,} items in the catalogue."
)

# %% [markdown]
# ## 2. Which values get a column
#
# Brands and product groups are long-tailed: many brands appear only a handful
# of times (the cell below counts them). A column for each would make long,
# sparse vectors, and a brand seen once tells us little. We keep the `TOP_BRANDS` brands and the
# `TOP_GROUPS` product groups most frequent among our users' training rows, and
# bucket the rest into one "other" value. Every gender our users chose keeps
# its own value.
#
# A *vocabulary* here is the ordered list of values that get a column. Ties in
# frequency are broken by the value itself, so the lists are the same every run.


# %%
def most_frequent(frame: pd.DataFrame, column: str, n: int | None = None) -> list[str]:
    """The n most frequent values of a column, ties broken by value (all values if n is None)."""
    counts = frame[column].value_counts().rename("count").reset_index()
    ordered = counts.sort_values(["count", column], ascending=[False, True], kind="stable")
    return ordered[column].head(n).tolist() if n is not None else ordered[column].tolist()


vocabularies = {
    "gender_description": sorted(train_top["gender_description"].unique()),
    "brand": most_frequent(train_top, "brand", TOP_BRANDS),
    "product_group": most_frequent(train_top, "product_group", TOP_GROUPS),
}
brand_rows = train_top["brand"].value_counts()
print(
    f"{(brand_rows <= 5).sum():,} of our users' {len(brand_rows):,} brands occur in 5 or fewer of their training rows"
)
for column, kept_values in vocabularies.items():
    covered = items[column].isin(kept_values).mean()
    print(f"{column}: {len(kept_values)} values with a column; they cover {covered:.0%} of the catalogue")

# %% [markdown]
# ## 3. Exercise: one-hot item vectors
#
# Each item becomes a row of zeros and ones. Every feature gets a block of
# columns: one per value in its vocabulary, then one "other" column for every
# value outside it. Gender has an "other" column too, for a gender none of our
# users chose. An item has exactly one 1 in each of the three blocks.
#
# **Do not change the DataFrame you are given.** The original notebook this
# course grew from wrote `df.loc[:, "brand"] = ...` on a filtered slice of a
# table. pandas warned (`SettingWithCopyWarning`) because such a write may or
# may not reach the original table, depending on whether the slice is a view or
# a copy. Build new Series instead: `series.where(condition, "other")` keeps a
# value where the condition holds and replaces it elsewhere, and returns a new
# Series without touching the old one.


# %% tags=["answer:content_vectors"]
def content_vectors(items: pd.DataFrame, vocabularies: dict[str, list[str]]) -> pd.DataFrame:
    """Return one row of one-hot features per item.

    Args:
        items: one row per item, with an `item_no` column and every feature column
            named in `vocabularies`. Leave it unchanged: build new objects instead.
        vocabularies: feature column -> the values that get their own column, in
            order. Any other value of that feature is bucketed into "other".

    Returns:
        A DataFrame indexed by `item_no` (index name "item_no"), rows in the order
        of `items`, with float32 columns named "<feature>=<value>": for each
        feature in the dict's order, one column per vocabulary value in order,
        then "<feature>=other". Each row has exactly one 1.0 in each feature's
        block and 0.0 elsewhere, so that a dot product counts shared features.
    """
    ### BEGIN SOLUTION
    columns = {}
    for feature, vocabulary in vocabularies.items():
        # .where returns a new Series: the caller's table is never written to.
        bucketed = items[feature].where(items[feature].isin(vocabulary), "other")
        for value in [*vocabulary, "other"]:
            columns[f"{feature}={value}"] = (bucketed == value).to_numpy(dtype=np.float32)
    return pd.DataFrame(columns, index=pd.Index(items["item_no"].to_numpy(), name="item_no"))
    ### END SOLUTION


# %% tags=["visible-tests:content_vectors"]

# %% tags=["hidden-tests:content_vectors"]

# %%
item_vectors = content_vectors(items, vocabularies)
print(f"{item_vectors.shape[0]:,} items x {item_vectors.shape[1]} features")
item_vectors.iloc[:3, :6]

# %% [markdown]
# ## 4. Exercise: a user is the mean of their items
#
# A user's vector is the average of the vectors of the items in their training
# history. Its entries are shares: a user whose value under `gender_description=girls`
# is 0.75 chose girls' items three times in four. The dot product of a user
# vector with an item vector then adds up how often the user chose the item's
# gender, the item's brand and the item's product group: items that share more
# with the history score higher. For a rare brand, it is how often the user chose
# *any* rare brand: they all share the brand "other" column.
#
# Average over the user's items (the rows), not over the features (the columns).


# %% tags=["answer:user_vectors"]
def user_vectors(interactions: pd.DataFrame, item_vectors: pd.DataFrame) -> pd.DataFrame:
    """Return each user's vector: the mean of the vectors of the items in their history.

    Args:
        interactions: one row per user-item pair, with `user_no` and `item_no`
            columns. Every item_no has a row in `item_vectors`.
        item_vectors: as returned by `content_vectors`, indexed by item_no.

    Returns:
        A DataFrame indexed by `user_no` (index name "user_no"), users in
        ascending order, with the columns of `item_vectors` (float32). Each row is
        the mean over that user's rows in `interactions` of their items' vectors.
    """
    ### BEGIN SOLUTION
    history = item_vectors.loc[interactions["item_no"].to_numpy()]
    history.index = pd.Index(interactions["user_no"].to_numpy(), name="user_no")
    return history.groupby(level="user_no").mean().astype(np.float32)
    ### END SOLUTION


# %% tags=["visible-tests:user_vectors"]

# %% tags=["hidden-tests:user_vectors"]

# %%
users_matrix = user_vectors(train_top, item_vectors)
one_user = users_matrix.index[0]
print(f"{users_matrix.shape[0]:,} users. The strongest features of user {one_user}:")
users_matrix.loc[one_user].sort_values(ascending=False).head(6).round(3)

# %% [markdown]
# ## 5. Exercise: a frozen tower
#
# TFRS retrieves with two *towers*: Keras models that turn a batch of ids into a
# batch of vectors. Our vectors are already computed, so the tower only has to
# look them up:
#
# 1. `tf.keras.layers.StringLookup(vocabulary=ids, num_oov_indices=1)` turns each
#    id into a row number: 0 for an id it does not know, 1 to n for the known ids
#    in order.
# 2. `tf.keras.layers.Embedding` returns that row of a matrix. We fill the matrix
#    ourselves (`embeddings_initializer=tf.keras.initializers.Constant(matrix)`)
#    with a **row of zeros first**, for unknown ids, then our vectors in order.
#    An unknown user then scores 0 with every item, rather than borrowing
#    someone else's taste.
# 3. The vectors must never change, so the embedding is **frozen**
#    (`trainable=False`): the tower has no trainable weights, and an optimizer
#    given this model would leave it alone.


# %% tags=["answer:frozen_tower"]
def frozen_tower(vectors: pd.DataFrame) -> tf.keras.Model:
    """Return a Keras model that maps a batch of ids to their precomputed vectors.

    Args:
        vectors: one row per id (the index holds the ids, as str), one column per
            dimension.

    Returns:
        A model (e.g. a `tf.keras.Sequential` of `StringLookup` and `Embedding`)
        that takes a 1-d string tensor of ids and returns a float32 tensor of
        shape (ids, columns): the row of `vectors` for a known id, zeros for an
        unknown one. It has no trainable weights.
    """
    ### BEGIN SOLUTION
    matrix = np.vstack([np.zeros((1, vectors.shape[1]), dtype=np.float32), vectors.to_numpy(dtype=np.float32)])
    lookup = tf.keras.layers.StringLookup(vocabulary=vectors.index.to_numpy(dtype=str), num_oov_indices=1)
    table = tf.keras.layers.Embedding(
        matrix.shape[0], matrix.shape[1], embeddings_initializer=tf.keras.initializers.Constant(matrix), trainable=False
    )
    return tf.keras.Sequential([lookup, table])
    ### END SOLUTION


# %% tags=["visible-tests:frozen_tower"]

# %% tags=["hidden-tests:frozen_tower"]

# %%
user_tower = frozen_tower(users_matrix)
item_tower = frozen_tower(item_vectors)
some_item = item_vectors.index[0]
looked_up = item_tower(tf.constant([some_item, "not-an-item"])).numpy()
print(f"Item {some_item} has {looked_up[0].sum():.0f} ones; an unknown id has {looked_up[1].sum():.0f}.")
print(f"Trainable weights in the item tower: {len(item_tower.trainable_weights)}")

# %% [markdown]
# ## 6. Exercise: retrieval through an index
#
# `tfrs.layers.factorized_top_k.BruteForce(query_model, k=k)` is an index: fill
# it once with every candidate's id and vector, then call it with a batch of
# query ids. It runs the query tower, scores every candidate with a dot product,
# and returns the top k scores and ids, best first. Fill it with
# `index.index_from_dataset(...)`, which takes a `tf.data.Dataset` of
# `(ids, vectors)` batches; `tf.data.Dataset.zip` pairs a dataset of id batches
# with the same batches mapped through the item tower.
#
# Two details:
# - the call returns at most 10 items unless you ask for more: pass `k`;
# - the ids come back as `bytes`; decode them to `str` (`np.char.decode(..., "utf-8")`)
#   so that they compare equal to the ids in our tables.
#
# Many items share the same gender, brand and group, so they tie. The index
# breaks ties by position (the earlier candidate wins), which is why the
# docstring asks you to index the items in the order they are given.


# %% tags=["answer:top_k_through_index"]
def top_k_through_index(
    user_tower: tf.keras.Model, item_tower: tf.keras.Model, item_ids: np.ndarray, user_ids: np.ndarray, k: int
) -> np.ndarray:
    """Return the k best item ids for each user, found by a BruteForce index.

    Args:
        user_tower: maps a 1-d string tensor of user ids to their vectors.
        item_tower: maps a 1-d string tensor of item ids to their vectors.
        item_ids: the candidates' ids (str), indexed in this order.
        user_ids: the users to recommend to (str).
        k: how many items per user (at most the number of candidates).

    Returns:
        A numpy array of str, shape (len(user_ids), k): each user's k best item
        ids by dot product, best first, ties going to the item indexed first.
    """
    ### BEGIN SOLUTION
    index = tfrs.layers.factorized_top_k.BruteForce(user_tower, k=k)
    ids = tf.data.Dataset.from_tensor_slices(np.asarray(item_ids, dtype=str)).batch(4096)
    index.index_from_dataset(tf.data.Dataset.zip((ids, ids.map(item_tower))))
    _, top_ids = index(tf.constant(np.asarray(user_ids, dtype=str)), k=k)
    return np.char.decode(top_ids.numpy().astype(bytes), "utf-8")
    ### END SOLUTION


# %% tags=["visible-tests:top_k_through_index"]

# %% tags=["hidden-tests:top_k_through_index"]

# %% [markdown]
# ## 7. How well does it do?
#
# We ask the index once per test user (not once per test row: a user with three
# test rows gets the same list three times), then give each test row its user's
# list and score it with the course's `top_k_accuracy`, as in lesson 1: the
# course's protocol, the lists a user would see. The candidates are the whole
# catalogue.

# %%
import time

from tfrs_course.evaluation import top_k_accuracy

test_users = test_top["user_no"].unique()
started = time.perf_counter()
recommended = top_k_through_index(user_tower, item_tower, items["item_no"].to_numpy(), test_users, max(KS))
print(f"Top {max(KS)} of {len(items):,} items for {len(test_users):,} users in {time.perf_counter() - started:.1f} s")
row_lists = recommended[pd.Index(test_users).get_indexer(test_top["user_no"])]
content_accuracy = top_k_accuracy(test_top["item_no"].to_numpy(), row_lists, KS)
pd.Series(content_accuracy, name="test accuracy").rename_axis("k").to_frame().T.round(5)

# %%
from tfrs_course.plotting import plot_accuracy_by_k
from tfrs_course.records import load_results

earlier = {}
for lesson, record in load_results().items():
    if lesson >= "04" or record["data"] != str(data):
        continue  # only the lessons before this one, on the same data
    for name, splits in record["approaches"].items():
        if "test" in splits:
            earlier[name] = {int(k): value for k, value in splits["test"].items()}
if not earlier:
    print("No results of earlier lessons on this data yet: run lessons 1-3 to compare with them.")
figure = plot_accuracy_by_k(
    {**earlier, "Content-based": content_accuracy}, title="The lists a user would see: test accuracy by k"
)

# %% [markdown]
# ### Ties, measured
#
# A content-based score only counts shared features, so many items score exactly
# the same. The index puts the first of them in the list, and the others miss
# out. Lesson 2's `FactorizedTopK` number would count every tied row in its
# favour. How many items tie with a test row's true item, and what would that
# number be here?

# %%
from tfrs_course.evaluation import factorized_top_k_accuracy

catalogue_matrix = item_vectors.to_numpy()
test_queries = user_tower(tf.constant(test_top["user_no"].to_numpy(dtype=str))).numpy()
test_positives = item_vectors.loc[test_top["item_no"].to_numpy()].to_numpy()
true_scores = np.sum(test_queries * test_positives, axis=1)
tied = np.concatenate([
    np.isclose(test_queries[start : start + 512] @ catalogue_matrix.T, true_scores[start : start + 512, None]).sum(axis=1) - 1
    for start in range(0, len(test_queries), 512)
])  # fmt: skip
by_score = factorized_top_k_accuracy(test_queries, test_positives, catalogue_matrix, KS)
pd.DataFrame({"the lists (ties go to the first item)": content_accuracy,
              "FactorizedTopK (ties count as hits)": by_score}).T.rename(columns=lambda k: f"top-{k}").round(4)  # fmt: skip

# %%
from tfrs_course.claims import claim, say

say(
    f"A test row's true item ties with a median of **{np.median(tied):,.0f}** other catalogue items. "
    f"Counting ties as hits would report top-1 {by_score[1]:.4f} instead of {content_accuracy[1]:.4f}: a number "
    "no user would ever see, which is why the course compares the lists."
)
claim("counting ties as hits inflates content-based top-1 accuracy", by_score[1] > content_accuracy[1],
      evidence=f"{by_score[1]:.4f} vs {content_accuracy[1]:.4f}")  # fmt: skip

# %% [markdown]
# ## 8. One user up close
#
# Numbers hide what the recommendations look like. We pick one test user at
# random, list the product groups of their history, and compare them with the
# groups of their top 10 recommendations, leaving out items they already have
# (`query_with_exclusions` does this inside the index).

# %%
rng = np.random.default_rng(SEED)
user = str(rng.choice(test_users))
history = train_top[train_top["user_no"] == user]
index = tfrs.layers.factorized_top_k.BruteForce(user_tower, k=10)
item_id_batches = tf.data.Dataset.from_tensor_slices(items["item_no"].to_numpy(dtype=str)).batch(4096)
index.index_from_dataset(tf.data.Dataset.zip((item_id_batches, item_id_batches.map(item_tower))))
_, top_ten = index.query_with_exclusions(tf.constant([user]), tf.constant([history["item_no"].to_numpy(dtype=str)]))
top_ten_ids = np.char.decode(top_ten.numpy()[0].astype(bytes), "utf-8")
recommended_items = items.set_index("item_no").loc[top_ten_ids, ["gender_description", "brand", "product_group"]]
print(f"User {user}: {len(history)} items in their history.")
history[["item_no", "gender_description", "brand", "product_group"]]

# %% [markdown]
# The model does not see brand names. It sees a brand's column if the brand is
# one of the `TOP_BRANDS` kept ones, and the brand "other" column otherwise; the
# same goes for product groups. Next to each recommendation is its brand as the
# model sees it.


# %%
def as_the_model_sees_it(frame: pd.DataFrame) -> pd.DataFrame:
    """The features of some items, with every value outside its vocabulary replaced by "other"."""
    return pd.DataFrame(
        {column: frame[column].where(frame[column].isin(kept), "other") for column, kept in vocabularies.items()}
    )


seen_history = as_the_model_sees_it(history)
seen_top = as_the_model_sees_it(recommended_items)
recommended_items.assign(**{"brand, as the model sees it": seen_top["brand"]})

# %%
import matplotlib.pyplot as plt


def plot_category_shares(history: pd.DataFrame, recommended: pd.DataFrame, column: str, title: str):
    """Side-by-side bars: the share of each value of `column` in a history and in a recommendation list."""
    shares = pd.DataFrame({
        "history": history[column].value_counts(normalize=True),
        "recommended": recommended[column].value_counts(normalize=True),
    }).fillna(0.0).sort_values("history", ascending=False)  # fmt: skip
    axes = shares.plot.barh(figsize=(7, 0.35 * len(shares) + 1.2))
    axes.invert_yaxis()
    axes.set_xlabel("share of items")
    axes.set_title(title)
    plt.tight_layout()
    return axes.figure


figure = plot_category_shares(history, recommended_items, "product_group", f"User {user}: product groups")

# %%
favourite = {column: most_frequent(seen_history, column, 1)[0] for column in ("product_group", "brand")}
in_history = {column: int((seen_history[column] == value).sum()) for column, value in favourite.items()}
in_top = {column: int((seen_top[column] == value).sum()) for column, value in favourite.items()}
text = (
    f"The history's most common product group is **{favourite['product_group']}** "
    f"({in_history['product_group']} of its {len(history)} items), and **{in_top['product_group']} of the top "
    f"{len(seen_top)}** are in it. Its most common brand, as the model sees it, is **{favourite['brand']}** "
    f"({in_history['brand']} of {len(history)}), and **{in_top['brand']} of the top {len(seen_top)}** have it."
)
if favourite["brand"] == "other":
    rare_in_history = history.loc[seen_history["brand"] == "other", "brand"].nunique()
    rare_in_top = recommended_items.loc[seen_top["brand"] == "other", "brand"].nunique()
    text += (
        f' But "other" is not one brand: it stands for every brand outside the {TOP_BRANDS} kept ones, '
        f"{rare_in_history} different brands in this history and {rare_in_top} in the top {len(seen_top)}. "
        "To the model they are all the same brand, so a history full of rare brands makes every rare brand "
        "look like a favourite."
    )
say(text)
for column, words in (("product_group", "product group"), ("brand", "brand (as the model sees it)")):
    claim(
        f"the top 10's most common {words} is the history's most common",
        most_frequent(seen_top, column, 1)[0] == favourite[column],
        evidence=f"{favourite[column]}: {in_top[column]} of the top 10",
    )

# %% [markdown]
# Items with the same gender, brand and product group get the same score, so the
# list fills up with items that match the history's most common values, as the
# model sees them: a run of near-duplicates. That is the strength and the
# weakness of content-based retrieval. It needs no interaction data for an item
# (a brand-new item is recommended as soon as it has metadata), and it is easy
# to explain. But it only ever offers more of the same, and it cannot learn that
# people who buy one brand of boots often buy a certain brand of rain coats.
#
# Lesson 5 keeps the metadata and adds back what we learned in lesson 3: an ID
# embedding per item, trained on interactions.

# %%
from tfrs_course.records import save_results

save_results(
    "04_content_based",
    {"Content-based": {"test": content_accuracy, "candidates": f"all {len(items):,} catalogue items"}},
    data_note=str(data),
)
