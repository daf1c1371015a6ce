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
# # Lesson 2: A retrieval model written by hand in Keras
#
# TensorFlow Recommenders hides a retrieval model's moving parts behind
# `tfrs.Model` and `tfrs.tasks.Retrieval`. Before we use them (lesson 3), we write
# those parts ourselves in plain Keras, so that nothing in them is magic.
#
# **You will learn to**
# - describe a *two-tower* model: one tower embeds users, the other embeds items,
#   and a dot product scores a user-item pair;
# - write the *in-batch softmax* loss that TFRS's `Retrieval` task uses;
# - write a `tf.keras.Model` with its own `train_step` and `test_step`, using
#   `tf.GradientTape`;
# - measure *factorized top-k accuracy* over every candidate item, fast.
#
# **Exercises** (each has a self-check cell right after it):
# 1. `in_batch_softmax_loss`: the loss of a batch of user and item embeddings.
# 2. `TwoTowerModel`: a Keras model that trains and evaluates itself.
# 3. `factorized_top_k_accuracy`: how often the true item ranks among the top k.

# %% tags=["setup"]
# Setup: run this cell first. `import tfrs_course` must come before TensorFlow,
# because it selects the Keras version that TFRS needs.
import numpy as np
import pandas as pd

import tfrs_course
from tfrs_course.data import load_babyshop
from tfrs_course.grading import Checker

import tensorflow as tf  # isort: skip  (after tfrs_course, on purpose)
import tensorflow_recommenders as tfrs  # isort: skip

check = Checker("02_keras_retrieval")
# Listing the devices here makes TensorFlow print its start-up messages in this
# cell, not in the first self-check cell (graders count output there as an error).
devices = [device.device_type for device in tf.config.list_physical_devices()]
print(f"tfrs_course {tfrs_course.__version__}, TensorFlow {tf.__version__}, TFRS {tfrs.__version__}, devices {devices}")

# %% tags=["parameters"]
# Parameters. Tests and `make demo` may override these when they run the lesson.
SEED = 42  # fixes the initial weights and the shuffling, so reruns give the same numbers
NUM_USERS = 2000  # the most active users, as in lesson 1
EMBEDDING_DIM = 32  # the length of every user and item vector
EPOCHS = 3
BATCH_SIZE = 4096
LEARNING_RATE = 0.1
KS = (1, 5, 10, 50, 100)

# %% [markdown]
# ## 1. The data
#
# We keep the same users and rows as lesson 1. Only two columns matter here:
# who (`user_no`) and what (`item_no`).

# %%
from tfrs_course.evaluation import most_active_users, restrict_to_users

tf.keras.utils.set_random_seed(SEED)
data = load_babyshop()
print(data)
train_top, test_top = restrict_to_users([data.train, data.test], most_active_users(data.train, NUM_USERS))
candidate_ids = np.unique(train_top["item_no"])
print(f"{len(train_top):,} train rows, {len(test_top):,} test rows, {len(candidate_ids):,} candidate items")

# %% [markdown]
# ## 2. Two towers
#
# A **tower** turns an id into a vector of `EMBEDDING_DIM` numbers. Here each tower
# is a `StringLookup` layer, which maps an id to a row number, followed by an
# `Embedding` layer, a trainable table with one row per id. Row 0 is kept for ids
# the lookup has never seen (the *out-of-vocabulary* bucket); lesson 3 looks at
# it closely.
#
# The **score** of a user and an item is the dot product of their vectors. A high
# score means "recommend". Training moves the vectors so that pairs seen in the
# data score higher than other pairs.

# %%
def id_tower(vocabulary):
    """StringLookup then Embedding; the extra row is for unknown ids."""
    return tf.keras.Sequential(
        [
            tf.keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1),
            tf.keras.layers.Embedding(len(vocabulary) + 1, EMBEDDING_DIM),
        ]
    )


user_tower = id_tower(np.unique(train_top["user_no"]))
item_tower = id_tower(candidate_ids)
some_users = tf.constant(train_top["user_no"][:3].to_numpy())
print(user_tower(some_users).shape)  # 3 users, one vector each

# %% [markdown]
# ## 3. Exercise: the in-batch softmax loss
#
# Which items should a user's vector score *low*? We have no list of items a user
# disliked. The trick TFRS uses: within a batch of `B` (user, item) rows, each
# user's own item is the positive, and the other `B - 1` items of the batch serve
# as negatives.
#
# 1. Score every user of the batch against every item of the batch: a `B x B`
#    matrix `scores = queries @ candidates.T`. Row `i` holds user `i`'s scores.
# 2. The right answer for row `i` is column `i`, so the labels are the identity
#    matrix (`tf.eye`).
# 3. Treat each row as the logits of a `B`-way classification and take the
#    categorical cross-entropy: `-log softmax(scores[i])[i]`.
# 4. Add up the `B` row losses. TFRS sums rather than averages, and we want the
#    same number it gives.
#
# Use TensorFlow operations, so that gradients can flow through them.
# `tf.keras.losses.CategoricalCrossentropy` can do steps 3 and 4 if you give it the
# right `from_logits` and `reduction`; a hand-written softmax overflows for large
# scores.

# %% tags=["answer:in_batch_softmax_loss"]
def in_batch_softmax_loss(query_embeddings, candidate_embeddings):
    """Return the summed in-batch softmax loss, as `tfrs.tasks.Retrieval` computes it.

    Args:
        query_embeddings: float tensor (B, dim); row i is the user of row i.
        candidate_embeddings: float tensor (B, dim); row i is the item user i chose.

    Returns:
        A scalar float tensor: the sum over rows i of the cross-entropy between
        the identity label (item i is right for user i) and the softmax of user
        i's scores against all B items of the batch.
    """
    ### BEGIN SOLUTION
    scores = tf.linalg.matmul(query_embeddings, candidate_embeddings, transpose_b=True)
    labels = tf.eye(tf.shape(scores)[0], tf.shape(scores)[1])
    cross_entropy = tf.keras.losses.CategoricalCrossentropy(
        from_logits=True, reduction=tf.keras.losses.Reduction.SUM
    )
    return cross_entropy(labels, scores)
    ### END SOLUTION


# %% tags=["visible-tests:in_batch_softmax_loss"]

# %% tags=["hidden-tests:in_batch_softmax_loss"]

# %% [markdown]
# Compare with TFRS on the first batch of real rows, embedded by our untrained towers.
# At the start all scores are near zero, so each row's loss is close to `log(B)`.

# %%
batch = train_top[:BATCH_SIZE]
queries = user_tower(tf.constant(batch["user_no"].to_numpy()))
positives = item_tower(tf.constant(batch["item_no"].to_numpy()))
ours = float(in_batch_softmax_loss(queries, positives))
theirs = float(tfrs.tasks.Retrieval()(queries, positives))
print(f"ours {ours:,.3f}  TFRS {theirs:,.3f}  B * log(B) {len(batch) * np.log(len(batch)):,.3f}")

# %% [markdown]
# ## 4. Exercise: a model that trains itself
#
# `model.fit` calls the model's `train_step` once per batch, and `model.evaluate`
# calls `test_step`. Writing them ourselves makes the whole training loop visible:
#
# - **`train_step(features)`**: under a `tf.GradientTape`, embed the batch's users
#   and items (`self(features)` does it) and compute the loss with `self.loss_fn`;
#   ask the tape for the gradients of the loss with respect to
#   `self.trainable_variables` (both towers); let `self.optimizer` apply them;
#   add the loss to `self.loss_tracker`; return `{"loss": self.loss_tracker.result()}`.
# - **`test_step(features)`**: the same loss, with no tape and no update: evaluation
#   must never change the weights.
#
# The loss function is passed in rather than called by name, so the model works
# with any loss of the same shape (ours, or TFRS's).

# %% tags=["answer:TwoTowerModel"]
class TwoTowerModel(tf.keras.Model):
    """A user tower and an item tower trained with an in-batch loss.

    Args:
        user_model: maps a batch of user ids to (B, dim) embeddings.
        item_model: maps a batch of item ids to (B, dim) embeddings.
        loss_fn: loss_fn(query_embeddings, candidate_embeddings) -> scalar tensor.
    """

    def __init__(self, user_model, item_model, loss_fn):
        super().__init__()
        self.user_model = user_model
        self.item_model = item_model
        self.loss_fn = loss_fn
        # Averages the batch losses over an epoch; Keras resets it at each epoch.
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, features):
        return self.user_model(features["user_no"]), self.item_model(features["item_no"])

    def train_step(self, features):
        """One gradient step on a batch {"user_no": ..., "item_no": ...}; returns {"loss": mean so far}."""
        ### BEGIN SOLUTION
        with tf.GradientTape() as tape:
            user_embeddings, item_embeddings = self(features, training=True)
            loss = self.loss_fn(user_embeddings, item_embeddings)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}
        ### END SOLUTION

    def test_step(self, features):
        """The loss of a batch without changing any weight; returns {"loss": mean so far}."""
        ### BEGIN SOLUTION
        user_embeddings, item_embeddings = self(features, training=False)
        self.loss_tracker.update_state(self.loss_fn(user_embeddings, item_embeddings))
        return {"loss": self.loss_tracker.result()}
        ### END SOLUTION


# %% tags=["visible-tests:TwoTowerModel"]

# %% tags=["hidden-tests:TwoTowerModel"]

# %% [markdown]
# ### Training
#
# The settings of the original study: Adagrad with learning rate 0.1, batches of
# 4,096 rows shuffled in a buffer of 1,000, three passes over the data. The
# shuffle has its own seed, so a rerun sees the batches in the same order.

# %%
def as_dataset(frame):
    return tf.data.Dataset.from_tensor_slices({name: frame[name].to_numpy() for name in ("user_no", "item_no")})


train_batches = as_dataset(train_top).shuffle(1_000, seed=SEED).batch(BATCH_SIZE)
test_batches = as_dataset(test_top).batch(BATCH_SIZE)

model = TwoTowerModel(user_tower, item_tower, in_batch_softmax_loss)
model.compile(optimizer=tf.keras.optimizers.Adagrad(LEARNING_RATE))
history = model.fit(train_batches, epochs=EPOCHS, validation_data=test_batches, verbose=0)
pd.DataFrame(history.history).rename_axis("epoch").round(1)

# %%
from tfrs_course.plotting import plot_training_curves

figure = plot_training_curves(
    {"train loss": history.history["loss"], "test loss": history.history["val_loss"]},
    title="Summed in-batch loss per batch",
)

# %% [markdown]
# Both losses start near `B log B`, the loss of a model that knows nothing, and the
# training loss falls faster. A loss summed over a batch grows with the batch size
# (the test rows fill one smaller batch), so compare the shapes of the curves, not
# their heights. And a loss is not what we care about: the next exercise measures
# what we do.

# %% [markdown]
# ## 5. Exercise: factorized top-k accuracy
#
# To serve a user we score *every* candidate item and show the k best. So a test
# row is a **hit at k** when its true item ranks among the top k of all
# candidates; in other words, when **fewer than k candidates score strictly
# higher** than the true item. That is what `tfrs.metrics.FactorizedTopK`
# computes. Ties count in the row's favour, and the true item does not compete
# with itself.
#
# TFRS streams the candidates through a top-k search, which is slow on a CPU.
# Scoring is one matrix product, so do it directly in numpy:
# - the true item's score is the row-wise dot product of query and true item;
# - score a chunk of rows against all candidates at once (`chunk @ candidates.T`),
#   so memory stays bounded (36,000 rows x 20,000 items of float32 is ~3 GB);
# - count, per row, the candidates that score strictly higher.
#
# The true item need not be among the candidates: an item first seen in test has
# only the out-of-vocabulary vector, and it is scored with that vector.

# %% tags=["answer:factorized_top_k_accuracy"]
def factorized_top_k_accuracy(query_embeddings, true_candidate_embeddings, candidate_embeddings, ks):
    """Return, for each k, the share of rows whose true candidate ranks in the top k.

    Args:
        query_embeddings: numpy array (rows, dim), one query (user) per row.
        true_candidate_embeddings: numpy array (rows, dim), each row's true item.
        candidate_embeddings: numpy array (candidates, dim), every item to rank.
        ks: the cut-offs, e.g. [1, 5, 10].

    Returns:
        A dict {k: accuracy} with a float for each k: the share of rows for
        which fewer than k candidates score strictly higher than the true item
        (score = dot product with the row's query). No rows gives 0.0.
    """
    ### BEGIN SOLUTION
    queries = np.asarray(query_embeddings, dtype=np.float32)
    positives = np.asarray(true_candidate_embeddings, dtype=np.float32)
    candidates = np.asarray(candidate_embeddings, dtype=np.float32)
    if len(queries) == 0:
        return {k: 0.0 for k in ks}
    higher = []
    for start in range(0, len(queries), 2048):
        chunk = queries[start : start + 2048]
        true_scores = np.sum(chunk * positives[start : start + 2048], axis=1, keepdims=True)
        higher.append((chunk @ candidates.T > true_scores).sum(axis=1))
    higher = np.concatenate(higher)
    return {k: float(np.mean(higher < k)) for k in ks}
    ### END SOLUTION


# %% tags=["visible-tests:factorized_top_k_accuracy"]

# %% tags=["hidden-tests:factorized_top_k_accuracy"]

# %% [markdown]
# ## 6. How good is the model?
#
# Embed every candidate once, then every test row's user and true item.

# %%
def embed(tower, ids):
    return tower(tf.constant(np.asarray(ids))).numpy()


candidate_vectors = embed(item_tower, candidate_ids)
test_queries = embed(user_tower, test_top["user_no"])
test_positives = embed(item_tower, test_top["item_no"])
test_accuracy = factorized_top_k_accuracy(test_queries, test_positives, candidate_vectors, KS)
pd.Series(test_accuracy, name="test accuracy").rename_axis("k").to_frame().T.round(5)

# %% [markdown]
# Does TFRS agree? Its streaming metric is slow, so we ask it about 300 test rows only.

# %%
sample = slice(0, 300)
metric = tfrs.metrics.FactorizedTopK(candidates=tf.data.Dataset.from_tensor_slices(candidate_vectors).batch(1024), ks=KS)
metric.update_state(tf.constant(test_queries[sample]), tf.constant(test_positives[sample]))
comparison = pd.DataFrame(
    {
        "ours": factorized_top_k_accuracy(test_queries[sample], test_positives[sample], candidate_vectors, KS),
        "FactorizedTopK": {k: float(value) for k, value in zip(KS, metric.result(), strict=True)},
    }
)
comparison.T.round(4)

# %% [markdown]
# The two can differ by a row now and then: a dot product computed in a different
# order rounds differently, and a near-tie may fall either way.

# %%
from tfrs_course.plotting import plot_accuracy_by_k
from tfrs_course.records import load_results

bars = {"two towers, by hand": test_accuracy}
recorded = load_results().get("01_baseline_metrics", {}).get("approaches", {})
for name, splits in recorded.items():
    bars[name] = {int(k): value for k, value in splits["test"].items()}
figure = plot_accuracy_by_k(bars, title="Test accuracy by k")

# %% [markdown]
# ## 7. What we wrote, and what TFRS will write for us
#
# Three short pieces make a retrieval model: two towers, an in-batch softmax loss,
# and a training step. `tfrs.Model` supplies `train_step` and `test_step`, and
# `tfrs.tasks.Retrieval` supplies the loss (and the metric, if we ask). In lesson 3
# we use them, train on the same settings, and ask why the model does so much
# better on training rows than on test rows.

# %%
from tfrs_course.records import save_results

save_results(
    "02_keras_retrieval",
    {"Two-tower written by hand": {"test": test_accuracy}},
    data_note=str(data),
)
