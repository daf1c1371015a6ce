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
# - measure *factorized top-k accuracy*, the number TFRS reports while training,
#   and see how it differs from scoring the lists a user would see;
# - correct in-batch negatives for popularity (the *logQ correction*) and leave
#   out *accidental hits*.
#
# **Exercises** (each has a self-check cell right after it):
# 1. `in_batch_softmax_loss`: the loss of a batch of user and item embeddings.
# 2. `TwoTowerModel`: a Keras model that trains and evaluates itself.
# 3. `factorized_top_k_accuracy`: how often the true item ranks among the top k.
# 4. `logq_in_batch_loss`: the loss corrected for how often popular items are negatives.

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


# The weights are drawn from the random seed when a tower is first called. The
# check() cells draw from it too, so we reseed and call both towers here: the
# weights then do not depend on how many checks you have run.
tf.keras.utils.set_random_seed(SEED)
user_tower = id_tower(np.unique(train_top["user_no"]))
item_tower = id_tower(candidate_ids)
some_users = tf.constant(train_top["user_no"][:3].to_numpy())
print(user_tower(some_users).shape)  # 3 users, one vector each
item_tower(tf.constant(candidate_ids[:1]))

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
# Use TensorFlow operations, so that gradients can flow through them. `model.fit`
# runs the loss as a graph, on batches whose size is known only when they run: take
# the batch size with `tf.shape(x)[0]`, not `len(x)`, and work on whole tensors, not
# in a Python loop over the rows. The self-check runs it that way.
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
    cross_entropy = tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction=tf.keras.losses.Reduction.SUM)
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
history = model.fit(train_batches, epochs=EPOCHS, validation_data=test_batches, verbose=2)
from tfrs_course.plotting import epoch_table

epoch_table(history.history).round(1)

# %%
from tfrs_course.plotting import plot_training_curves

figure = plot_training_curves(
    {"train loss": history.history["loss"], "test loss": history.history["val_loss"]},
    title="Summed in-batch loss per batch",
)

# %% [markdown]
# A model that knows nothing has a loss near `B log B` per batch (section 3 printed
# it for the untrained towers). A loss summed over a batch grows with the batch
# size (the test rows fill fewer, smaller batches), so compare the shapes of the
# curves, not their heights. The cell below says what this run shows. And a loss
# is not what we care about: the next exercise measures what we do.

# %%
from tfrs_course.claims import claim

train_loss, test_loss = history.history["loss"], history.history["val_loss"]
claim("the training loss falls every epoch", all(np.diff(train_loss) < 0), evidence=f"{np.round(train_loss, 1)}")
claim(
    "the training loss falls by a larger share than the test loss",
    1 - train_loss[-1] / train_loss[0] > 1 - test_loss[-1] / test_loss[0],
    evidence=f"train {1 - train_loss[-1] / train_loss[0]:.1%}, test {1 - test_loss[-1] / test_loss[0]:.1%}",
)

# %% [markdown]
# ## 5. Exercise: factorized top-k accuracy
#
# While a model trains, TFRS can report how well it ranks: `tfrs.metrics.FactorizedTopK`.
# Given no candidate ids, it counts a test row as a **hit at k** when **fewer than
# k candidates score strictly higher** than the row's true item. It finds the k
# best scores, but never looks at which items they belong to: it only compares
# the true item's score with them. This is the number TFRS
# reports while training, and this course teaches it once, here: ties count in
# the row's favour, and the true item does not compete with itself.
#
# TFRS streams the candidates through a top-k search for every row. All we need
# is the number of candidates that score higher, and scoring is one matrix
# product, so do it directly in numpy:
# - the true item's score is the row-wise dot product of query and true item;
# - score a chunk of rows against all candidates at once (`chunk @ candidates.T`),
#   so that memory stays bounded: every training row against every candidate at
#   once would take rows x candidates x 4 bytes;
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
# Embed every candidate once, then every test row's user and true item. Your
# function gives the training-time number.


# %%
def embed(tower, ids):
    return tower(tf.constant(np.asarray(ids))).numpy()


candidate_vectors = embed(item_tower, candidate_ids)
test_queries = embed(user_tower, test_top["user_no"])
test_positives = embed(item_tower, test_top["item_no"])
training_metric = factorized_top_k_accuracy(test_queries, test_positives, candidate_vectors, KS)
pd.Series(training_metric, name="FactorizedTopK (training-time metric), test").rename_axis("k").to_frame().T.round(5)

# %% [markdown]
# Does TFRS agree? We ask it about 300 test rows, and time both on them.

# %%
import time

sample = slice(0, 300)
metric = tfrs.metrics.FactorizedTopK(
    candidates=tf.data.Dataset.from_tensor_slices(candidate_vectors).batch(1024), ks=KS
)
started = time.perf_counter()
metric.update_state(tf.constant(test_queries[sample]), tf.constant(test_positives[sample]))
tfrs_seconds = time.perf_counter() - started
started = time.perf_counter()
ours = factorized_top_k_accuracy(test_queries[sample], test_positives[sample], candidate_vectors, KS)
our_seconds = time.perf_counter() - started
print(f"300 rows: FactorizedTopK took {1000 * tfrs_seconds:.0f} ms, your function {1000 * our_seconds:.0f} ms.")
comparison = pd.DataFrame(
    {"ours": ours, "FactorizedTopK": {k: float(value) for k, value in zip(KS, metric.result(), strict=True)}}
)
comparison.T.round(4)

# %%
gaps = (comparison["ours"] - comparison["FactorizedTopK"]).abs() * len(test_queries[sample])
claim(
    "your function and FactorizedTopK agree to within a row or two of the 300",
    gaps.max() <= 2,
    evidence=f"largest difference {gaps.max():.0f} rows",
)

# %% [markdown]
# They can differ by a row now and then: a dot product computed in a different
# order rounds differently, and a near-tie may fall either way.
#
# ## 7. The lists a user would see
#
# A user is shown a list: the k best-scoring candidates, from an **index** over a
# pool of candidates. Lesson 1 scored such lists by matching ids, and from here
# on the course compares every approach that way. `FactorizedTopK`'s number
# differs from it in two ways. A small example shows both: one query, three
# candidates `a`, `b`, `c`, where `a` and `b` score the same.

# %%
toy_query = np.array([[1.0, 0.0]], dtype=np.float32)
toy_candidates = np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.0]], dtype=np.float32)  # a, b, c
toy_ids = np.array(["a", "b", "c"])
outsider = np.array([[2.0, 0.0]], dtype=np.float32)  # "z", an item that is not a candidate
from tfrs_course.evaluation import top_k_accuracy

toy_list = toy_ids[np.argsort(-(toy_query @ toy_candidates.T)[0], kind="stable")][None, :]
toy = pd.DataFrame(
    {
        "FactorizedTopK, top-1": [
            factorized_top_k_accuracy(toy_query, toy_candidates[[1]], toy_candidates, [1])[1],
            factorized_top_k_accuracy(toy_query, outsider, toy_candidates, [1])[1],
        ],
        "the list, top-1": [
            top_k_accuracy(np.array(["b"]), toy_list, [1])[1],
            top_k_accuracy(np.array(["z"]), toy_list, [1])[1],
        ],  # fmt: skip
    },
    index=["true item b (ties with a)", "true item z (not a candidate)"],
)
print(f"The index's list for the query: {toy_list[0].tolist()}")
toy

# %% [markdown]
# - **Ties.** Nothing scores strictly above `b`, so `FactorizedTopK` counts the
#   row as a hit at k = 1. The list has room for one item, and the index puts
#   the first of the tied candidates there: `a`.
# - **Items outside the candidates.** `z` is scored with its own vector (here,
#   the vector a model would give an item it never saw in training), and nothing
#   scores above it. `FactorizedTopK` counts a hit; no list drawn from the
#   candidates can ever contain `z`.
#
# Now the same two numbers for our model, on every test row. The lists come from
# `tfrs_course.evaluation.retrieve`, an exact index over the candidates (lesson 6
# looks inside it); each row is scored with lesson 1's `top_k_accuracy`.

# %%
from tfrs_course.evaluation import retrieve

user_ids = np.unique(train_top["user_no"])
user_vectors = embed(user_tower, user_ids)
lists = retrieve(user_ids, user_vectors, candidate_ids, candidate_vectors, test_top["user_no"], max(KS))
test_accuracy = top_k_accuracy(test_top["item_no"].to_numpy(), lists, KS)
pd.DataFrame(
    {"FactorizedTopK (training-time metric)": training_metric, "the lists a user would see": test_accuracy}
).T.rename(columns=lambda k: f"top-{k}").round(5)

# %%
# Where do the extra hits come from, at k = 100? Rank each row's true item as FactorizedTopK does.
k = max(KS)
true_scores = np.sum(test_queries * test_positives, axis=1, keepdims=True)
higher = np.concatenate([
    (test_queries[start : start + 2048] @ candidate_vectors.T > true_scores[start : start + 2048]).sum(axis=1)
    for start in range(0, len(test_queries), 2048)
])  # fmt: skip
factorized_hit = higher < k
list_hit = (lists == test_top["item_no"].to_numpy()[:, None]).any(axis=1)
outside = ~test_top["item_no"].isin(candidate_ids).to_numpy()
extra = factorized_hit & ~list_hit
causes = pd.Series({
    "rows": len(test_top),
    "true item not a candidate": int(outside.sum()),
    "hits for FactorizedTopK only, item not a candidate": int((extra & outside).sum()),
    "hits for FactorizedTopK only, item a candidate (ties)": int((extra & ~outside).sum()),
    "hits in the list only": int((list_hit & ~factorized_hit).sum()),
}, name=f"test rows, k = {k}")  # fmt: skip
causes.to_frame()

# %%
from tfrs_course.claims import say

say(
    f"{outside.mean():.0%} of the test rows have a true item that is not among the {len(candidate_ids):,} candidates. "
    f"At k = {k}, FactorizedTopK counts {training_metric[k]:.4f} and the lists find {test_accuracy[k]:.4f}: "
    f"{(extra & outside).sum():,} rows are counted only because an item the model cannot recommend scored well, "
    f"and {(extra & ~outside).sum():,} only because of ties."
)
claim(
    f"at k = {k}, every row the list finds, FactorizedTopK also counts (up to rounding)",
    (list_hit & ~factorized_hit).sum() <= 0.001 * len(test_top),
    evidence=f"rows found by the list only: {(list_hit & ~factorized_hit).sum()}",
)

# %% [markdown]
# How much the two differ depends on the model. Here, an item outside the
# candidates gets the out-of-vocabulary vector, which training never moves, so
# it rarely scores well. Lesson 4 measures ties for content-based vectors, and
# lesson 5 items outside the candidates for a model that embeds them from their
# metadata: each shows how large the difference is there.
#
# From here on, the course compares approaches by the lists a user would see,
# and says which candidates each list is drawn from. Where a lesson shows
# `FactorizedTopK`'s number (it is cheap to follow while training), it says so.

# %%
from tfrs_course.plotting import plot_accuracy_by_k
from tfrs_course.records import load_results

bars = {"two towers, by hand": test_accuracy}
recorded = load_results().get("01_baseline_metrics", {}).get("approaches", {})
for name, splits in recorded.items():
    bars[name] = {int(k): value for k, value in splits["test"].items()}
figure = plot_accuracy_by_k(bars, title="The lists a user would see: test accuracy by k")

# %% [markdown]
# ## 8. Exercise: correcting in-batch negatives for popularity
#
# In a batch, each row's negatives are the other rows' items. An item therefore
# turns up as a negative as often as it turns up in the data: a popular item is
# pushed down in many more rows than a rare one, only because it is frequent.
# The **logQ correction** undoes that sampling bias. With q_j the probability that
# candidate j is drawn into a batch (its share of the training rows), subtract
# log q_j from every score in column j before the softmax: a rare item's scores go
# up a lot, a popular item's a little.
#
# One more detail. When a batch holds the same item twice, row i's true item also
# sits in another column. That column is not a negative for row i (the user did
# choose that item), so it is left out of row i's softmax: an **accidental hit**.
# Row i's own column, the diagonal, stays.
#
# TFRS does both when you ask: `tfrs.tasks.Retrieval(remove_accidental_hits=True)`,
# called with `candidate_sampling_probability=` and `candidate_ids=`. Write it by
# hand first, as you wrote the plain loss; the tests compare yours with TFRS's.
# Below we call it once on a batch, but a loss is for training: like the plain
# loss, the self-check runs it as `model.fit` would, as a graph on batches of any
# size, so the same rules hold (`tf.shape`, whole tensors, no `.numpy()`).


# %% tags=["answer:logq_in_batch_loss"]
def logq_in_batch_loss(query_embeddings, candidate_embeddings, candidate_probabilities, candidate_ids):
    """Return the summed in-batch softmax loss with the logQ correction and without accidental hits.

    Args:
        query_embeddings: float tensor (B, dim); row i is the user of row i.
        candidate_embeddings: float tensor (B, dim); row i is the item user i chose.
        candidate_probabilities: float tensor (B,); entry j is the probability that
            candidate j is drawn into a batch (its share of the training rows).
        candidate_ids: string tensor (B,); entry j is candidate j's item id. Ids may repeat.

    Returns:
        A scalar float tensor: `in_batch_softmax_loss`'s sum of row cross-entropies,
        computed from scores in which column j is lowered by log(probability j), and
        in which, for each row i, every other column holding row i's item is left out
        of the softmax (its score set to a very large negative number).
    """
    ### BEGIN SOLUTION
    scores = tf.linalg.matmul(query_embeddings, candidate_embeddings, transpose_b=True)
    scores -= tf.math.log(candidate_probabilities)[tf.newaxis, :]
    labels = tf.eye(tf.shape(scores)[0], tf.shape(scores)[1])
    same_item = tf.equal(candidate_ids[:, tf.newaxis], candidate_ids[tf.newaxis, :])
    accidental = tf.logical_and(same_item, labels == 0)
    scores = tf.where(accidental, tf.fill(tf.shape(scores), scores.dtype.min / 100), scores)
    cross_entropy = tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction=tf.keras.losses.Reduction.SUM)
    return cross_entropy(labels, scores)
    ### END SOLUTION


# %% tags=["visible-tests:logq_in_batch_loss"]

# %% tags=["hidden-tests:logq_in_batch_loss"]

# %% [markdown]
# What the correction does to one training batch of the model we trained: how
# much of each row's softmax lands on the batch's most popular items (those at or
# above the batch's 90th percentile of training frequency; ties can make that
# more than 10% of the columns), before and after.

# %%
item_share = train_top["item_no"].value_counts(normalize=True)
batch = train_top.sample(min(BATCH_SIZE, len(train_top)), random_state=SEED)
batch_users = user_tower(tf.constant(batch["user_no"].to_numpy()))
batch_items = item_tower(tf.constant(batch["item_no"].to_numpy()))
share = item_share.loc[batch["item_no"]].to_numpy(dtype=np.float32)
scores = (batch_users @ tf.transpose(batch_items)).numpy()
popular = share >= np.quantile(share, 0.9)


def mass_on_popular(logits):
    weights = tf.nn.softmax(logits, axis=1).numpy()
    return float(weights[:, popular].sum(axis=1).mean())


plain_loss = float(in_batch_softmax_loss(batch_users, batch_items))
corrected_loss = float(
    logq_in_batch_loss(batch_users, batch_items, tf.constant(share), tf.constant(batch["item_no"].to_numpy()))
)
print(f"Loss on this batch: {plain_loss:,.1f} plain, {corrected_loss:,.1f} with logQ and without accidental hits.")
print(
    f"Softmax weight on the batch's most popular items ({popular.mean():.0%} of its columns): "
    f"{mass_on_popular(scores):.1%} plain, {mass_on_popular(scores - np.log(share)[None, :]):.1%} after the correction."
)

# %% [markdown]
# ## 9. What we wrote, and what TFRS will write for us
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
    {
        "Two-tower written by hand": {
            "test": test_accuracy,
            "candidates": f"the {len(candidate_ids):,} items of the kept users' train rows",
        }
    },
    data_note=str(data),
)
