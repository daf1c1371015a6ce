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
# # Lesson 3: ID embeddings with `tfrs.Model`
#
# In lesson 2 we wrote a retrieval model's loss and training loop by hand. TFRS
# provides both: `tfrs.tasks.Retrieval` computes the in-batch loss, and
# `tfrs.Model` turns a `compute_loss` method into `train_step` and `test_step`.
# This lesson uses them to train one learned vector per user and per item, serves
# recommendations from an index, and asks what the model has really learned.
#
# **You will learn to**
# - build an ID tower: a string lookup with an out-of-vocabulary bucket, then an embedding;
# - write a two-tower `tfrs.Model` by writing only its `compute_loss`;
# - measure top-k accuracy on train and on test, and explain why they differ so much;
# - recommend items to one user from a brute-force index, leaving out what they already have.
#
# **Exercises** (each has a self-check cell right after it):
# 1. `make_id_tower`: the vocabulary and the embedding table of one kind of id.
# 2. `IdModel`: the two-tower model's `compute_loss`.
# 3. `recommend`: the top k new items for one user.

# %% tags=["setup"]
# Setup: run this cell before the lesson's other code (in Colab, after the cell above).
# `import tfrs_course` must come before TensorFlow,
# because it selects the Keras version that TFRS needs.
import numpy as np
import pandas as pd

import tfrs_course
from tfrs_course.data import load_babyshop
from tfrs_course.grading import Checker

import tensorflow as tf  # isort: skip  (after tfrs_course, on purpose)
import tensorflow_recommenders as tfrs  # isort: skip

check = Checker("03_id_embeddings")
# Listing the devices here makes TensorFlow print its start-up messages in this
# cell, not in the first self-check cell (graders count output there as an error).
devices = [device.device_type for device in tf.config.list_physical_devices()]
print(f"tfrs_course {tfrs_course.__version__}, TensorFlow {tf.__version__}, TFRS {tfrs.__version__}, devices {devices}")

# %% tags=["parameters"]
# Parameters. Tests and `make demo` may override these when they run the lesson.
SEED = 42  # fixes the initial weights and the shuffling, so reruns give the same numbers
NUM_USERS = 2000  # the most active users, as in lessons 1 and 2
EMBEDDING_DIM = 32
EPOCHS = 3
BATCH_SIZE = 4096
LEARNING_RATE = 0.1
KS = (1, 5, 10, 50, 100)

# %% [markdown]
# ## 1. The data
#
# The same users and rows as before. The candidates are the items that appear in
# the kept users' training rows: those are the items the model can learn a vector for.

# %%
from tfrs_course.evaluation import most_active_users, restrict_to_users

tf.keras.utils.set_random_seed(SEED)
data = load_babyshop()
print(data)
train_top, test_top = restrict_to_users([data.train, data.test], most_active_users(data.train, NUM_USERS))
candidate_ids = np.unique(train_top["item_no"])
print(f"{len(train_top):,} train rows, {len(test_top):,} test rows, {len(candidate_ids):,} candidate items")

# %% [markdown]
# ## 2. Exercise: an ID tower
#
# A tower for ids has two layers:
#
# 1. `tf.keras.layers.StringLookup(vocabulary=..., num_oov_indices=1)` turns each
#    id into a row number. Known ids get rows 1 to n; any id not in the
#    vocabulary gets row 0, the **out-of-vocabulary (OOV) bucket**. Test rows need
#    it: many test items never occur in train.
# 2. `tf.keras.layers.Embedding(rows, dim)` is the table of vectors. It needs one
#    row per known id **plus one** for the OOV bucket.
#
# The vocabulary is the distinct values of the column, each once (a lookup refuses
# repeated entries). Sort it, so that the same data always gives the same rows.
# `model.fit` calls the tower inside a graph, on batches whose size is known only
# when they run; the self-check calls it that way too.


# %% tags=["answer:make_id_tower"]
def make_id_tower(values, embedding_dim):
    """Return a Keras model that maps a batch of string ids to embedding vectors.

    Args:
        values: the ids seen in training (a list, array or Series of str), repeats allowed.
        embedding_dim: the length of each vector.

    Returns:
        A `tf.keras.Sequential` of a `StringLookup` over the sorted distinct values
        with one out-of-vocabulary index, and an `Embedding` with one row per
        distinct value plus one for the out-of-vocabulary bucket. Called on a
        batch of B ids it returns a (B, embedding_dim) float tensor; all unknown
        ids share the bucket's vector.
    """
    ### BEGIN SOLUTION
    vocabulary = np.unique(np.asarray(values, dtype=str))
    return tf.keras.Sequential(
        [
            tf.keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1),
            tf.keras.layers.Embedding(len(vocabulary) + 1, embedding_dim),
        ]
    )
    ### END SOLUTION


# %% tags=["visible-tests:make_id_tower"]

# %% tags=["hidden-tests:make_id_tower"]

# %%
# The weights are drawn from the random seed when a tower is first called. The
# check() cells draw from it too, so we reseed and call both towers here: the
# weights then do not depend on how many checks you have run.
tf.keras.utils.set_random_seed(SEED)
user_tower = make_id_tower(train_top["user_no"], EMBEDDING_DIM)
item_tower = make_id_tower(train_top["item_no"], EMBEDDING_DIM)
user_tower(tf.constant(train_top["user_no"][:1].to_numpy()))
item_tower(tf.constant(train_top["item_no"][:1].to_numpy()))
unknown_share = 1 - test_top["item_no"].isin(candidate_ids).mean()
print(f"{user_tower.layers[0].vocabulary_size():,} user rows, {item_tower.layers[0].vocabulary_size():,} item rows")
print(f"{unknown_share:.0%} of test rows have an item that never occurs in train: it gets the OOV vector")

# %% [markdown]
# Those test rows are hopeless: the lists are drawn from the candidates, the
# items seen in training, so an item first seen in test can never be in them.
# Keep that share in mind when you read the test accuracy: it caps it.

# %% [markdown]
# ## 3. Exercise: the model
#
# A `tfrs.Model` needs only `compute_loss(features, training)`. Embed the batch's
# users with the user tower and its items with the item tower, then hand both to
# the task: `self.task(user_embeddings, item_embeddings, compute_metrics=not training)`.
# The order matters: the first argument is the query (the user), the second the
# candidate (the item). `compute_metrics=not training` skips metrics while training,
# where they would only cost time. `model.fit` runs `compute_loss` as a graph, on
# batches whose size is known only when they run: use TensorFlow operations
# (`tf.shape(x)[0]`, not `len(x)`). The self-check runs it that way.
#
# Our task has no metric at all: TFRS's `FactorizedTopK` would stream every
# candidate for every evaluated row, the training rows included, and it is the
# training-time number of lesson 2, not the one the course compares. We score the lists a user would see instead, with
# `tfrs_course.evaluation.list_accuracy` (lesson 2, section 7): each user's top k
# from an exact index over the candidates, matched by id.


# %% tags=["answer:IdModel"]
class IdModel(tfrs.Model):
    """A two-tower retrieval model over user and item ids.

    Args:
        user_model: maps a batch of user ids to (B, dim) embeddings.
        item_model: maps a batch of item ids to (B, dim) embeddings.
        task: a `tfrs.tasks.Retrieval`.
    """

    def __init__(self, user_model, item_model, task):
        super().__init__()
        self.user_model = user_model
        self.item_model = item_model
        self.task = task

    def compute_loss(self, features, training=False):
        """Return the task's loss for a batch {"user_no": ..., "item_no": ...}: users are the queries."""
        ### BEGIN SOLUTION
        user_embeddings = self.user_model(features["user_no"])
        item_embeddings = self.item_model(features["item_no"])
        return self.task(user_embeddings, item_embeddings, compute_metrics=not training)
        ### END SOLUTION


# %% tags=["visible-tests:IdModel"]

# %% tags=["hidden-tests:IdModel"]

# %% [markdown]
# ## 4. Training
#
# The settings of the original study: Adagrad with learning rate 0.1, batches of
# 4,096 shuffled rows, three epochs. After each epoch a small callback measures
# top-100 accuracy on a sample of training rows and on test, so we can watch them
# move apart, and prints one line, so you can see training progress.

# %%
from tfrs_course.evaluation import list_accuracy


def embed(tower, ids):
    return tower(tf.constant(np.asarray(ids))).numpy()


def top_k(frame, ks):
    """Top-k accuracy of the lists the current model would show the users of `frame` (candidates: train items)."""
    users = np.unique(frame["user_no"])
    return list_accuracy(users, embed(user_tower, users), candidate_ids, embed(item_tower, candidate_ids), frame, ks)


# A fixed sample of training rows is enough to follow the trend, and much cheaper.
train_sample = train_top.sample(min(len(train_top), 5_000), random_state=SEED)


class TopHundred(tf.keras.callbacks.Callback):
    """Records top-100 accuracy on the train sample and on test at the end of every epoch."""

    def on_epoch_end(self, epoch, logs=None):
        logs["train top-100"] = top_k(train_sample, [100])[100]
        logs["test top-100"] = top_k(test_top, [100])[100]
        print(
            f"epoch {epoch + 1}/{EPOCHS}: loss {logs['loss']:,.0f}, "
            f"train top-100 {logs['train top-100']:.4f}, test top-100 {logs['test top-100']:.4f}",
            flush=True,
        )


def as_dataset(frame):
    return tf.data.Dataset.from_tensor_slices({name: frame[name].to_numpy() for name in ("user_no", "item_no")})


model = IdModel(user_tower, item_tower, tfrs.tasks.Retrieval())
model.compile(optimizer=tf.keras.optimizers.Adagrad(LEARNING_RATE))
train_batches = as_dataset(train_top).shuffle(1_000, seed=SEED).batch(BATCH_SIZE)
history = model.fit(train_batches, epochs=EPOCHS, callbacks=[TopHundred()], verbose=0)
from tfrs_course.plotting import epoch_table

epoch_table(history.history)[["train top-100", "test top-100"]].round(4)

# %%
from tfrs_course.plotting import plot_training_curves

figure = plot_training_curves(
    {name: history.history[name] for name in ("train top-100", "test top-100")},
    title="Top-100 accuracy after each epoch",
)

# %% [markdown]
# ## 5. Train against test
#
# The final numbers on all rows, at every k. Lesson 2's hand-written model was the
# same model trained the same way; the cell after the table compares them.

# %%
test_accuracy = top_k(test_top, KS)
train_accuracy = top_k(train_top, KS)
table = pd.DataFrame({"train": train_accuracy, "test": test_accuracy}).T.round(4)
table.columns = [f"top-{k}" for k in KS]
table

# %%
from tfrs_course.claims import claim, say
from tfrs_course.records import load_results

lesson_2 = load_results().get("02_keras_retrieval", {})
if lesson_2.get("data") == str(data):
    by_hand = lesson_2["approaches"]["Two-tower written by hand"]["test"]["100"]
    claim(
        "lesson 2's hand-written model scores within a fifth of this one at k = 100",
        abs(by_hand - test_accuracy[100]) <= 0.2 * test_accuracy[100],
        evidence=f"lesson 2 {by_hand:.4f}, lesson 3 {test_accuracy[100]:.4f}",
    )
else:
    print("Run lesson 2 on the same data to compare its hand-written model with this one.")

# %%
from tfrs_course.plotting import plot_accuracy_by_k

figure = plot_accuracy_by_k({"train": train_accuracy, "test": test_accuracy}, title="ID embeddings: accuracy by k")

# %%
say(
    f"The model finds a training pair's item in its user's top 100 for **{train_accuracy[100]:.0%}** of "
    f"training rows, and a test pair's item for **{test_accuracy[100]:.1%}** of test rows."
)
claim("train accuracy at k = 100 is at least five times test accuracy", train_accuracy[100] >= 5 * test_accuracy[100],
      evidence=f"{train_accuracy[100]:.4f} vs {test_accuracy[100]:.4f}")  # fmt: skip
curve = history.history["test top-100"]
say(
    "Per epoch, test top-100 went "
    + " → ".join(f"{value:.4f}" for value in curve)
    + (": it was still rising at the last epoch, so this gap is not yet *overfitting* (more training making "
       "test accuracy worse); lesson 6 trains longer and looks for that." if curve[-1] > curve[-2]
       else ": it fell at the end, which is overfitting: more training made test accuracy worse.")
)  # fmt: skip

# %% [markdown]
# Three things cause the gap between train and test:
#
# 1. **Memorising.** Each user and each item has a vector of its own, and many
#    items occur in only a few training rows. The cheapest way to lower the
#    training loss is to pull each user's vector towards *exactly* the items they
#    had, which says little about items they will pick next.
# 2. **Crowding.** The ranking of a test item competes with the user's own
#    training items, which the model has learned to score high. They take up
#    places in the list and push down every new item, the test item included.
# 3. **A cap.** Items seen only in test are not candidates at all, so they are
#    never retrieved, however good the model.
#
# The cap we counted in section 2. Crowding we can measure: retrieve a longer
# list for each test user, see how many of its first places the user's train
# items take, then drop them and keep the first k of the rest.

# %%
from tfrs_course.evaluation import retrieve, top_k_accuracy

seen = train_top.groupby("user_no")["item_no"].agg(set)
test_users = np.unique(test_top["user_no"])
# Deep enough that max(KS) items remain after a user's train items are dropped.
depth = max(KS) + int(seen.map(len).max())
ranked = retrieve(
    test_users, embed(user_tower, test_users), candidate_ids, embed(item_tower, candidate_ids), test_users, depth
)
is_own = np.array([np.isin(row, list(seen.get(user, set()))) for user, row in zip(test_users, ranked, strict=True)])
kept = np.array([row[~own][: max(KS)] for row, own in zip(ranked, is_own, strict=True)])
lists = kept[np.searchsorted(test_users, test_top["user_no"].to_numpy(dtype=str))]
excluding = top_k_accuracy(test_top["item_no"].to_numpy(dtype=str), lists, KS)
pd.DataFrame({"all candidates": test_accuracy, "without the user's train items": excluding}).T.round(4)

# %%
own_share = {k: is_own[:, :k].mean() for k in (10, 100)}
rows_per_item = train_top["item_no"].value_counts()
lift = excluding[100] - test_accuracy[100]
remaining_gap = train_accuracy[100] - excluding[100]
say(
    f"Half the candidate items occur in at most {rows_per_item.median():.0f} training row(s), and "
    f"{(rows_per_item <= 3).mean():.0%} in three or fewer. A test user's own train items take "
    f"{own_share[10]:.0%} of the places in their top 10 and {own_share[100]:.0%} in their top 100. Leaving them "
    f"out changes test top-100 accuracy by {lift:+.4f}; the gap to train accuracy that remains is "
    f"{remaining_gap:.4f}, and {unknown_share:.0%} of test rows are out of reach (the cap)."
)
claim("a user's own train items take a larger share of the top 10 than of the top 100",
      own_share[10] > own_share[100], evidence=f"{own_share[10]:.1%} vs {own_share[100]:.1%}")  # fmt: skip
claim("leaving out seen items never lowers accuracy", all(excluding[k] >= test_accuracy[k] for k in KS),
      evidence=", ".join(f"k={k}: {test_accuracy[k]:.4f} → {excluding[k]:.4f}" for k in KS))  # fmt: skip
claim("leaving out seen items closes less of the train-test gap than remains", remaining_gap > lift,
      evidence=f"remaining {remaining_gap:.4f}, closed {lift:.4f}")  # fmt: skip

# %% [markdown]
# Features that items share (brand, product group) help a model carry what it
# learned to items with few rows; lessons 4 and 5 try them. Lesson 6 tries a
# penalty on the vectors and stopping early.

# %% [markdown]
# ## 6. Exercise: recommending for one user
#
# To serve recommendations, we put every candidate's vector in an **index** and
# ask it for the k best items for a user. `tfrs.layers.factorized_top_k.BruteForce`
# scores every candidate (fine for tens of thousands; larger catalogues use an
# approximate index such as ScaNN). Built with the user tower, it takes raw user
# ids: `index(tf.constant([user_id]), k=k)` returns `(scores, item_ids)`, each of
# shape (1, k), best first.
#
# Showing a user what they already have is a wasted slot. The index's
# `query_with_exclusions(queries, exclusions, k=k)` leaves out given ids:
# `exclusions` has one row per query (shape (1, number of ids) here). Take care of
# a user with nothing to exclude: `tf.constant([[]])` is a float tensor, not a
# string one. The ids come back as bytes; return them as `str`.


# %% tags=["answer:recommend"]
def recommend(index, user_id, exclude_item_ids, k):
    """Return the ids of the k best items for one user, leaving out some items.

    Args:
        index: a `tfrs.layers.factorized_top_k.BruteForce` built on the user tower
            and indexed with item vectors and item ids.
        user_id: the user's id (str).
        exclude_item_ids: item ids (str) never to recommend, e.g. the user's history;
            may be empty.
        k: how many items to return.

    Returns:
        A list of k item ids (str), the best first, none of them in `exclude_item_ids`.
    """
    ### BEGIN SOLUTION
    exclusions = tf.constant([list(exclude_item_ids)], dtype=tf.string)
    _, item_ids = index.query_with_exclusions(tf.constant([user_id]), exclusions, k=k)
    return [item_id.decode() for item_id in item_ids[0].numpy()]
    ### END SOLUTION


# %% tags=["visible-tests:recommend"]

# %% tags=["hidden-tests:recommend"]

# %%
import time

index = tfrs.layers.factorized_top_k.BruteForce(user_tower)
index.index(tf.constant(embed(item_tower, candidate_ids)), tf.constant(candidate_ids))

user = test_top["user_no"].iloc[0]
history_items = train_top.loc[train_top["user_no"] == user, "item_no"].tolist()
started = time.perf_counter()
recommended = recommend(index, user, history_items, 10)
print(f"10 recommendations for user {user} in {1000 * (time.perf_counter() - started):.0f} ms")

# %% [markdown]
# What did this user have, and what does the model suggest? Read the brands,
# product groups and genders side by side.

# %%
columns = ["brand", "product_group", "gender_description"]
items_info = data.items.set_index("item_no")
bought = items_info.loc[history_items, columns].assign(seen="train")
later = items_info.loc[test_top.loc[test_top["user_no"] == user, "item_no"], columns].assign(seen="test")
pd.concat([bought, later]).sort_values(["seen", "brand"])

# %%
suggested = items_info.loc[recommended, columns]
suggested.assign(in_test=suggested.index.isin(later.index))

# %%
claim("the suggestions hold none of the user's train items", not set(recommended) & set(history_items),
      evidence=f"{len(recommended)} suggested, {len(history_items)} in train")  # fmt: skip

# %% [markdown]
# Whether the suggestions look like the user's history depends on what the ID
# vectors picked up from users with overlapping items: the model never sees a
# brand or a product group, only ids.

# %% [markdown]
# ## 7. Recording the results
#
# Train accuracy at 100 and test accuracy at every k, of the lists drawn from
# the candidates (the items of the kept users' train rows), are what the course
# compares across lessons.

# %%
from tfrs_course.records import save_results

save_results(
    "03_id_embeddings",
    {
        "ID embeddings": {
            "test": test_accuracy,
            "train": {100: train_accuracy[100]},
            "candidates": f"the {len(candidate_ids):,} items of the kept users' train rows",
        }
    },
    data_note=str(data),
)
