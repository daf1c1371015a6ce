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
# # Lesson 6: Evaluation and serving done right
#
# Lessons 1 to 5 compared every model by the lists a user would see, on a
# random split, with three epochs of training. Four things were left
# unmeasured there, and this lesson measures them:
#
# - **Seen items.** A user's own training items stay among the candidates, where
#   they take up places in the list that a new item could have had.
# - **Time.** The pairs were split at random, so a model can train on a user's
#   later interests and be tested on earlier ones. A shop has to predict the future.
# - **Overfitting.** The ID model of lesson 3 finds training items far more
#   often than test items, but a gap is not yet overfitting: overfitting is when
#   more training makes held-out accuracy *fall*. Does it, if we train longer?
#   Do a penalty on large vectors, or stopping early, help?
# - **Serving.** How fast can we find the top 100 items for every user, exactly
#   and approximately, and what does the approximation cost?
#
# **You will learn to**
# - leave out each user's seen items *before* cutting a ranked list to k;
# - split interactions by time, and see what it does to two models' numbers;
# - watch train and test accuracy per epoch, and stop training on a validation set;
# - compute an exact top-k in blocks, measure an approximate index's recall, and
#   read a recall-latency trade-off.
#
# **Exercises** (each has a self-check cell right after it):
# 1. `exclude_seen`: the first k retrieved items a user has not seen.
# 2. `split_by_month`: train on earlier months, test on later ones.
# 3. `blocked_top_k`: exact top-k, a block of candidates at a time.
# 4. `recall_at_k`: how much of the exact top-k an approximate index finds.
#
# The models are the ones of lessons 3 to 5, trained by the course's package
# (`tfrs_course.models`) with the same settings, so that this lesson can spend
# its time on measuring them.

# %% tags=["setup"]
# Setup: run this cell before the lesson's other code (in Colab, after the cell above).
# `import tfrs_course` must come before TensorFlow
# is imported anywhere, because it selects the Keras version that TFRS needs.
import tfrs_course  # isort: skip

import numpy as np
import pandas as pd

from tfrs_course.data import load_babyshop
from tfrs_course.grading import Checker

check = Checker("06_evaluation_serving")
print(f"tfrs_course {tfrs_course.__version__} is ready.")

# %% tags=["parameters"]
# Parameters. Tests and `make demo` may override these when they run the lesson.
SEED = 42  # fixes initial weights, shuffling and every random choice below
NUM_USERS = 2000  # the most active users, as in every lesson
KS = (1, 5, 10, 50, 100)  # the cut-offs we report accuracy at
EPOCHS = 3  # the original study's training length, for the ID and hybrid models
LAST_TRAIN_MONTH = 10  # the time split trains on months 1-10 and tests on month 11
MAX_EPOCHS = 10  # the most the early-stopped model may train
OVERFIT_BATCH_SIZE = 1024  # a quarter of the original's: four times the steps per epoch, so overfitting shows sooner
PATIENCE = 2  # epochs without a better validation score before training stops
L2 = 0.01  # weight of the L2 penalty on the regularised ID model's embeddings
VALIDATION_SHARE = 0.1  # training rows held out to decide when to stop
SERVING_REPEATS = 2  # timed runs per index (after a warm-up); the median is shown

# %% [markdown]
# ## 1. The data and the models
#
# The same users and rows as every lesson. `tfrs_course.models` trains each
# model on a table of training rows and returns its `Towers`: the user vectors
# and the candidate item vectors, as numpy arrays. To recommend, score a user's
# vector against every candidate and keep the best.

# %%
import time

from tfrs_course.evaluation import most_active_users, restrict_to_users

data = load_babyshop()
print(data)
top_users = most_active_users(data.train, NUM_USERS)
train_top, test_top = restrict_to_users([data.train, data.test], top_users)
print(f"{len(train_top):,} train rows and {len(test_top):,} test rows of {len(top_users):,} users")

# %% [markdown]
# The most popular items fit the same mould: give every item its training count
# as a one-number "vector", and every user the vector `[1]`. The dot product is
# then the count, and every user gets the same list. Items are put in order of
# count, then id, so that ties in count go to the smaller id, as in lesson 1.

# %%
from tfrs_course import models


def popularity_towers(train: pd.DataFrame) -> models.Towers:
    """Most-popular-items 'towers': item vector = training count, every user = [1]."""
    counts = train.groupby("item_no").size().rename("count").reset_index()
    counts = counts.sort_values(["count", "item_no"], ascending=[False, True], kind="stable")
    one = np.ones((1, 1), dtype=np.float32)
    return models.Towers(
        np.array(["any user"]), one, one[0], counts["item_no"].to_numpy(dtype=str),
        counts[["count"]].to_numpy(dtype=np.float32),
    )  # fmt: skip


# %% [markdown]
# ## 2. Seen items
#
# Every model so far ranked all candidates, including the items a user already
# has in their training rows. A test pair is never one of those (each pair is
# either in train or in test), so every seen item that makes the list takes a
# place a test item could have had. The models learned to score seen items
# highly, so they take many.
#
# A recommender in a shop leaves them out anyway. The rule that matters for
# measuring: **leave out the seen items first, then cut the list to k.** Cutting
# first and then removing would leave some users with fewer than k items.
#
# ### Exercise: leave out what each user has seen
#
# You get each user's ranked list, longer than k (so that k unseen items remain
# after removing the seen ones), and each user's seen items.


# %% tags=["answer:exclude_seen"]
def exclude_seen(retrieved_ids: np.ndarray, seen_ids: list[list[str]], k: int) -> np.ndarray:
    """Return each row's first k retrieved ids that are not among that row's seen ids.

    Args:
        retrieved_ids: shape (users, list length), each user's ranked item ids (str), best first.
        seen_ids: one list per row of `retrieved_ids`: the item ids that user has seen.
        k: how many ids to keep per row.

    Returns:
        A numpy array of str of shape (users, k): in each row, the first k ids of
        the ranked list that the row's user has not seen, best first. A row with
        fewer than k unseen ids is padded at the end with "".
    """
    ### BEGIN SOLUTION
    rows = []
    for retrieved, seen in zip(retrieved_ids, seen_ids, strict=True):
        seen = set(seen)
        unseen = [item for item in retrieved.tolist() if item not in seen][:k]
        rows.append(unseen + [""] * (k - len(unseen)))
    return np.array(rows, dtype=str).reshape(len(retrieved_ids), k)
    ### END SOLUTION


# %% tags=["visible-tests:exclude_seen"]

# %% tags=["hidden-tests:exclude_seen"]

# %% [markdown]
# Now every model is scored twice on the same test rows: with all candidates,
# as before, and with each user's training items left out. The ranked lists
# come from `tfrs_course.serving.exact_top_k`, an exact top-k search that we
# look inside in section 5. The lists are deep enough that k unseen items
# always remain.
#
# The "all candidates" rows follow the protocol of lessons 2 to 5. The ID and
# hybrid models here are trained by the kit rather than by your lesson code, so
# their numbers come close to those lessons' without being the same.

# %%
from tfrs_course.evaluation import top_k_accuracy
from tfrs_course.serving import exact_top_k


def accuracies(towers: models.Towers, train: pd.DataFrame, test: pd.DataFrame, exclude=(True,), ks=KS):
    """Top-k accuracy of the lists users would see, on the rows of `test`, for each value of `exclude`.

    `exclude` True leaves each user's `train` items out of their list, False keeps
    all candidates; one search, deep enough for the longest history, serves both.
    """
    users = test["user_no"].unique()
    seen = [items if isinstance(items, list) else [] for items in
            train.groupby("user_no")["item_no"].agg(list).reindex(users)]  # fmt: skip
    depth = max(ks) + (max(map(len, seen), default=0) if any(exclude) else 0)
    # Users who share a vector (everyone, for popularity) share a search.
    distinct, same_as = np.unique(towers.queries(users), axis=0, return_inverse=True)
    _, rows = exact_top_k(distinct, towers.item_vectors, depth)
    ranked = towers.item_ids[rows[same_as.ravel()]]
    row_users = pd.Index(users).get_indexer(test["user_no"])

    def scored(leave_out: bool) -> dict[int, float]:
        lists = exclude_seen(ranked, seen, max(ks)) if leave_out else ranked[:, : max(ks)]
        return top_k_accuracy(test["item_no"].to_numpy(), lists[row_users], ks)

    return {leave_out: scored(leave_out) for leave_out in exclude}


def accuracy(towers: models.Towers, train: pd.DataFrame, test: pd.DataFrame, exclude: bool = True, ks=KS):
    """Top-k accuracy of the lists users would see, on the rows of `test` (see `accuracies`)."""
    return accuracies(towers, train, test, (exclude,), ks)[exclude]


# %% [markdown]
# The four models of lessons 1 to 5, trained as there (the ID and hybrid models
# for `EPOCHS` epochs).

# %%
# A fixed sample of training rows is enough to measure training accuracy, and cheaper.
train_sample = train_top.sample(min(len(train_top), 3_000), random_state=SEED)

started = time.perf_counter()
random_split = {
    "Most popular": popularity_towers(train_top),
    "ID embeddings": models.id_model(train_top, epochs=EPOCHS, seed=SEED),
    "Content-based": models.content_model(train_top, data.items),
    "Hybrid": models.hybrid_model(train_top, data.items, epochs=EPOCHS, seed=SEED),
}
print(f"Trained the four models in {time.perf_counter() - started:.1f} s")

# %%
seen_effect = {}
for name, towers in random_split.items():
    both = accuracies(towers, train_top, test_top, exclude=(False, True))
    seen_effect[name] = {"all candidates": both[False], "seen items excluded": both[True]}
rows = {(name, how): by_k for name, results in seen_effect.items() for how, by_k in results.items()}
seen_table = pd.DataFrame(rows).T.rename(columns=lambda k: f"top-{k}")
seen_table.round(4)

# %%
gains = pd.DataFrame({
    name: {f"top-{k}": results["seen items excluded"][k] - results["all candidates"][k] for k in KS}
    for name, results in seen_effect.items()
}).T  # fmt: skip
print("Gain in accuracy from leaving out seen items (absolute):")
gains.round(4)

# %%
from tfrs_course.plotting import plot_accuracy_by_k

figure = plot_accuracy_by_k(
    {f"{name}, {how}": results[how] for name, results in seen_effect.items() for how in results},
    title="Test accuracy with and without the users' seen items",
)

# %%
from tfrs_course.claims import claim, say

say(
    "Gain at k = 10 and k = 100 from leaving out seen items: "
    + "; ".join(
        f"{name} {gains.loc[name, 'top-10']:+.4f} and {gains.loc[name, 'top-100']:+.4f}" for name in gains.index
    )
    + "."
)
claim("leaving out seen items never lowers accuracy (at any k, for any model)", (gains.to_numpy() >= 0).all(),
      evidence=f"smallest gain {gains.to_numpy().min():+.4f}")  # fmt: skip
learned = max(gains.loc["ID embeddings", "top-100"], gains.loc["Hybrid", "top-100"])
claim("a trained model (ID or hybrid) gains more at k = 100 than the most popular list",
      learned > gains.loc["Most popular", "top-100"])  # fmt: skip

# %% [markdown]
# Why the trained models gain: they learned to place each user's own training
# items near the user's vector, so those items took places in the list. The
# content-based scores favour items *like* the seen ones, of which there are
# many. The most popular list changes only where a user's items are among the
# shop's best sellers. From here on, every number leaves seen items out.

# %% [markdown]
# ## 3. Time, not chance
#
# The Babyshop pairs cover eleven months of 2021, and each carries the month of
# its first event (`first_interaction_month`). A random split lets a model learn
# from October to predict March. A split by time trains on months 1 to
# `LAST_TRAIN_MONTH` and tests on the months after, as a shop would have to.
#
# ### Exercise: split by month
#
# Put a pair in train if its month is at most `last_train_month`, in test if it
# is later. The boundary month belongs to train only. A test user with no train
# rows at all has nothing a model could learn from (a *cold-start* user): drop
# their rows from test.


# %% tags=["answer:split_by_month"]
def split_by_month(interactions: pd.DataFrame, last_train_month: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split interactions into earlier (train) and later (test) months.

    Args:
        interactions: one row per user-item pair, with `user_no` and
            `first_interaction_month` (an int, 1-12) columns, and any others.
        last_train_month: the last month that goes into train.

    Returns:
        `(train, test)`, two DataFrames with all the columns of `interactions`
        and a fresh index 0, 1, 2, ..., rows in their original order. `train`
        holds the rows with first_interaction_month <= last_train_month; `test`
        holds the later rows of users who have at least one train row.
    """
    ### BEGIN SOLUTION
    early = interactions["first_interaction_month"] <= last_train_month
    train = interactions[early].reset_index(drop=True)
    later = interactions[~early]
    test = later[later["user_no"].isin(train["user_no"])].reset_index(drop=True)
    return train, test
    ### END SOLUTION


# %% tags=["visible-tests:split_by_month"]

# %% tags=["hidden-tests:split_by_month"]

# %% [markdown]
# We pool the kept users' train and test rows and split them by time. The
# cell prints how the two test sets compare in size.

# %%
pooled = pd.concat([train_top, test_top], ignore_index=True)
time_train, time_test = split_by_month(pooled, LAST_TRAIN_MONTH)
new_items = {
    "random split": 1 - test_top["item_no"].isin(train_top["item_no"]).mean(),
    "time split": 1 - time_test["item_no"].isin(time_train["item_no"]).mean(),
}
print(
    f"time split: {len(time_train):,} train rows, {len(time_test):,} test rows "
    f"({len(time_test) / len(pooled):.0%} of all; the random test set holds {len(test_top) / len(pooled):.0%})"
)
for split, share in new_items.items():
    print(f"{split}: {share:.0%} of test rows have an item that never occurs in train")

# %% [markdown]
# The two splits differ in more than time: the time split has fewer training
# rows and more test rows. To compare like with like, we also split the same
# pooled rows **at random with exactly as many training rows** as the time
# split has, and build the same models on both. Only the two approaches that
# need no training take part here: the most popular items and content-based.
# Training the ID and hybrid models twice more would double this lesson's time;
# add `models.id_model(split_train, epochs=EPOCHS, seed=SEED)` to `trained` to
# measure the ID model too.

# %%
rng = np.random.default_rng(SEED)
same_size = np.zeros(len(pooled), dtype=bool)
same_size[rng.choice(len(pooled), size=len(time_train), replace=False)] = True
sized_train = pooled[same_size].reset_index(drop=True)
sized_test = pooled[~same_size & pooled["user_no"].isin(sized_train["user_no"])].reset_index(drop=True)

started = time.perf_counter()
splits = {"random, same size": (sized_train, sized_test), "time": (time_train, time_test)}
split_results = {}
for split, (split_train, split_test) in splits.items():
    trained = {
        "Most popular": popularity_towers(split_train),
        "Content-based": models.content_model(split_train, data.items),
    }
    split_results[split] = {name: accuracy(towers, split_train, split_test) for name, towers in trained.items()}
print(
    f"Built and measured two models on both splits in {time.perf_counter() - started:.1f} s "
    f"({len(time_train):,} training rows each)"
)
by_time = split_results["time"]
split_table = pd.DataFrame({split: {name: results[name][100] for name in results}
                            for split, results in split_results.items()})  # fmt: skip
split_table["relative change"] = split_table["time"] / split_table["random, same size"] - 1
print("Test top-100 accuracy, seen items excluded, equal training size:")
split_table.round(4)

# %%
say(
    f"The time split holds out {len(time_test):,} rows ({len(time_test) / len(pooled):.0%} of the pooled rows; "
    f"the random test set of the earlier lessons holds {len(test_top) / len(pooled):.0%}). At equal training size, "
    "top-100 accuracy changes by "
    + ", ".join(f"{change:+.0%} for {name}" for name, change in split_table["relative change"].items())
    + " on the time split."
)
losers = split_table.index[split_table["relative change"] < 0].tolist()
claim("at equal training size, the time split lowers content-based top-100 accuracy", "Content-based" in losers,
      evidence=", ".join(losers) or "none")  # fmt: skip

# %%
say(
    "What can make a time split harder: later months bring items that no training row has, which the ID "
    f"model cannot recommend at all ({new_items['time split']:.0%} of the time split's test rows here, against "
    f"{new_items['random split']:.0%} of the random split's: rare items go unseen either way); seasonal tastes "
    "shift, so last month's best sellers are not this month's; and a user's latest interests are not in their "
    "training rows. A random split mixes the months, so it hides the last two."
)

# %% [markdown]
# The twin models the seasons and the year's trend but keeps a user's tastes
# fixed, so these numbers say nothing about how large the drops would be on the
# real files: measure them there (`tfrs-course data fetch`) before you rely on them.

# %% [markdown]
# ## 4. Overfitting
#
# Lesson 3's ID model found training items far more often than test items. A
# gap is not yet overfitting: **overfitting** is when more training makes
# accuracy on data the model never trained on *fall*. To see it, train longer
# and watch such data after every epoch.
#
# Which data? Not the test set: if the test set decides when to stop, it no
# longer measures unseen data. We hold out `VALIDATION_SHARE` of the training
# rows as a **validation** set and train on the rest. Two standard remedies:
#
# - **early stopping**: stop once validation accuracy has not improved for
#   `PATIENCE` epochs, and keep the vectors of the best epoch;
# - an **L2 penalty**: add `L2 x (sum of squared embedding entries)` to the loss,
#   so that large vectors, which memorising needs, cost something.
#
# To keep the lesson short, the batches hold `OVERFIT_BATCH_SIZE` rows, a
# quarter of the original study's: four times as many steps per epoch, so that
# what takes many epochs with batches of 4,096 happens in fewer.

# %%
from tfrs_course.plotting import epoch_table, plot_training_curves

validation = train_top.sample(frac=VALIDATION_SHARE, random_state=SEED)
fitting = train_top.drop(validation.index)
fitting_sample = fitting.sample(min(len(fitting), 3_000), random_state=SEED)


def fitting_curves(towers: models.Towers) -> dict[str, float]:
    return {
        "train top-100": accuracy(towers, fitting, fitting_sample, exclude=False, ks=[100])[100],
        "validation top-100": accuracy(towers, fitting, validation, ks=[100])[100],
    }


started = time.perf_counter()
stopped = models.id_model(
    fitting, epochs=MAX_EPOCHS, batch_size=OVERFIT_BATCH_SIZE, seed=SEED,
    monitor=fitting_curves, stop_on="validation top-100", patience=PATIENCE,
)  # fmt: skip
trained_epochs = len(stopped.curves["validation top-100"])
print(f"Trained {trained_epochs} of at most {MAX_EPOCHS} epochs in {time.perf_counter() - started:.1f} s; "
      f"kept the vectors of epoch {stopped.epochs}.")  # fmt: skip
figure = plot_training_curves(stopped.curves, title="ID embeddings, no penalty: top-100 per epoch")
epoch_table(stopped.curves).round(4)

# %%
validation_curve = np.array(stopped.curves["validation top-100"])
best_epoch = int(np.argmax(validation_curve)) + 1
say(
    f"Validation top-100 rose to **{validation_curve.max():.4f}** at epoch {best_epoch} and was "
    f"{validation_curve[-1]:.4f} at epoch {trained_epochs}, while training top-100 went on from "
    f"{stopped.curves['train top-100'][best_epoch - 1]:.4f} to {stopped.curves['train top-100'][-1]:.4f}."
)
claim("validation accuracy peaks and then falls: the model overfits",
      best_epoch < trained_epochs and validation_curve[-1] < validation_curve.max())  # fmt: skip
claim("early stopping stopped before the last allowed epoch", trained_epochs < MAX_EPOCHS,
      evidence=f"{trained_epochs} of {MAX_EPOCHS}")  # fmt: skip
claim("early stopping kept the best epoch's vectors, not the last epoch's", stopped.epochs == best_epoch,
      evidence=f"kept epoch {stopped.epochs}, best {best_epoch}")  # fmt: skip

# %% [markdown]
# Now the penalty, compared fairly: the same rows, the same batches and the
# same number of epochs as the run above, with and without `L2`.

# %%
started = time.perf_counter()
penalised = models.id_model(
    fitting, epochs=trained_epochs, batch_size=OVERFIT_BATCH_SIZE, seed=SEED, l2=L2, monitor=fitting_curves
)
print(f"Trained {trained_epochs} epochs with L2 = {L2} in {time.perf_counter() - started:.1f} s")
both = {f"{name}, no penalty": values for name, values in stopped.curves.items()}
both |= {f"{name}, L2 {L2}": values for name, values in penalised.curves.items()}
figure = plot_training_curves(both, title="ID embeddings with and without the penalty: top-100 per epoch")
epoch_table(both).round(4)

# %%
plain_gap = stopped.curves["train top-100"][-1] - stopped.curves["validation top-100"][-1]
penalised_gap = penalised.curves["train top-100"][-1] - penalised.curves["validation top-100"][-1]
say(
    f"After {trained_epochs} epochs, the gap between training and validation top-100 is {plain_gap:.4f} without "
    f"the penalty and {penalised_gap:.4f} with it; validation top-100 is "
    f"{stopped.curves['validation top-100'][-1]:.4f} without and {penalised.curves['validation top-100'][-1]:.4f} with it."
)
claim("at equal epochs and equal data, the penalty narrows the gap between train and validation",
      penalised_gap < plain_gap, evidence=f"{penalised_gap:.4f} vs {plain_gap:.4f}")  # fmt: skip
claim("at equal epochs and equal data, validation top-100 is higher with the penalty than without",
      penalised.curves["validation top-100"][-1] > stopped.curves["validation top-100"][-1],
      evidence=f"{penalised.curves['validation top-100'][-1]:.4f} vs {stopped.curves['validation top-100'][-1]:.4f}")  # fmt: skip

# %% [markdown]
# Which `L2`, which batch size and how many epochs are best depends on the
# data: try a few values and choose by the validation curve, never the test
# curve. The test set speaks once, at the end:

# %%
early_stopped_test = accuracy(stopped, fitting, test_top)
penalised_test = accuracy(penalised, fitting, test_top)
pd.DataFrame({
    f"no penalty, early stopping (epoch {stopped.epochs})": early_stopped_test,
    f"L2 {L2}, {trained_epochs} epochs": penalised_test,
}).T.rename(columns=lambda k: f"top-{k}").round(4)  # fmt: skip

# %% [markdown]
# ## 5. Serving: exact and approximate top-k
#
# To serve a user, score their vector against every candidate and keep the top
# k. TFRS's `BruteForce` index scores every user against every candidate, then
# picks each user's top k with one `tf.math.top_k`.

# %%
pairs = NUM_USERS * len(data.items)
say(
    f"For our {NUM_USERS:,} users and the {len(data.items):,} items of the catalogue, that is "
    f"{pairs / 1e6:,.0f} million dot products, and then the hard part: picking the top 100 of "
    f"{len(data.items):,} scores, {NUM_USERS:,} times. All the scores at once, as 4-byte floats, take "
    f"{4 * pairs / 1e9:.2f} GB."
)

# %% [markdown]
# Scoring the candidates a **block** at a time and keeping a running top k
# needs memory for one block only. After each block, join the running top k
# with the block's scores and keep the best k of those.
#
# ### Exercise: exact top-k, block by block
#
# Return the row numbers of the k best candidates for each query, best first.
# When two candidates score the same, the one with the **lower row number comes
# first** (this is what `tf.math.top_k` and a *stable* sort do). A stable sort of
# `[running candidates, this block's candidates]` keeps that order for free, as
# long as the running candidates come first and are themselves in order: every
# one of them has a lower row number than any candidate of the block.
# `np.argsort(-scores, axis=1, kind="stable")` sorts each row, best first.


# %% tags=["answer:blocked_top_k"]
def blocked_top_k(queries: np.ndarray, candidates: np.ndarray, k: int, block: int) -> np.ndarray:
    """Return the row numbers of each query's k best candidates by dot product.

    Args:
        queries: shape (queries, dim), float.
        candidates: shape (candidates, dim), float.
        k: how many candidates per query; if there are fewer candidates, return them all.
        block: how many candidates to score at a time (at least 1).

    Returns:
        An int array of shape (queries, min(k, candidates)): each row holds
        candidate row numbers, the highest dot product first; equal scores are
        ordered by row number, ascending. The result does not depend on `block`.
    """
    ### BEGIN SOLUTION
    queries, candidates = np.asarray(queries), np.asarray(candidates)
    best_scores = np.empty((len(queries), 0))
    best_rows = np.empty((len(queries), 0), dtype=np.int64)
    for start in range(0, len(candidates), block):
        scores = queries @ candidates[start : start + block].T
        rows = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        # Running candidates first: all have lower row numbers than this block's,
        # so a stable sort breaks ties by row number.
        joined_scores = np.concatenate([best_scores, scores], axis=1)
        joined_rows = np.concatenate([best_rows, rows], axis=1)
        order = np.argsort(-joined_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(joined_scores, order, axis=1)
        best_rows = np.take_along_axis(joined_rows, order, axis=1)
    return best_rows
    ### END SOLUTION


# %% tags=["visible-tests:blocked_top_k"]

# %% tags=["hidden-tests:blocked_top_k"]

# %% [markdown]
# Your function against the course's: the same lists for the first 200 test
# users of the hybrid model. `tfrs_course.serving.exact_top_k` is a variant of
# the same idea built for speed. It first finds, cheaply, a short list of
# candidates that must contain the top k (read its docstring for how), so that
# it sorts almost nothing.

# %%
hybrid = random_split["Hybrid"]
some_users = hybrid.queries(test_top["user_no"].unique()[:200])
started = time.perf_counter()
mine = blocked_top_k(some_users, hybrid.item_vectors, 100, block=4096)
mine_seconds = time.perf_counter() - started
started = time.perf_counter()
_, course = exact_top_k(some_users, hybrid.item_vectors, 100)
course_seconds = time.perf_counter() - started
print(
    f"Same top 100 as exact_top_k for {np.mean(np.all(mine == course, axis=1)):.0%} of the {len(some_users)} users. "
    f"Yours took {1000 * mine_seconds:.0f} ms, exact_top_k {1000 * course_seconds:.0f} ms (one run each)."
)

# %% [markdown]
# An **approximate** index gives up finding all of the top k to save time.
# ScaNN splits the candidates into clusters ("leaves") and scores only the
# leaves nearest to each query. TFRS's layer `tfrs.layers.factorized_top_k.ScaNN`
# scores them with compressed vectors, then re-scores the best candidates
# exactly if its `num_reordering_candidates` is set (both layer settings below
# set it); the `scann` package's own builder can instead score the searched
# leaves exactly, with no re-scoring. An approximate index's quality is its
# **recall@k**: the share of the exact top k that it also returns.
#
# ### Exercise: recall@k
#
# The order within a row does not matter, only which ids the two lists share.


# %% tags=["answer:recall_at_k"]
def recall_at_k(approximate_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Return the mean share of each row's exact top-k ids that the approximate row also holds.

    Args:
        approximate_ids: shape (rows, k), ids (ints or str) found by an approximate index.
        exact_ids: shape (rows, k), the exact top-k ids of the same queries. Ids
            within a row are distinct.

    Returns:
        The average over rows of (number of ids in both rows) / k, a float in
        [0, 1]; 0.0 when there are no rows. The order within a row does not matter.
    """
    ### BEGIN SOLUTION
    approximate_ids, exact_ids = np.asarray(approximate_ids), np.asarray(exact_ids)
    if exact_ids.size == 0:
        return 0.0
    shared = [len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approximate_ids, exact_ids, strict=True)]
    return float(np.sum(shared) / exact_ids.size)
    ### END SOLUTION


# %% tags=["visible-tests:recall_at_k"]

# %% tags=["hidden-tests:recall_at_k"]

# %% [markdown]
# Now the real test, at the scale of the whole catalogue: 2,000 users x 61,704 items x
# 32 dimensions. Trained item vectors cluster (by brand, by product group), and
# an approximate index relies on that. The hybrid model above embeds every
# catalogue item, but the items it never saw in training share the
# out-of-vocabulary ID row, so those with the same gender, brand and product
# group get identical vectors (the next cell counts them). Identical vectors
# tie, and recall against one exact list would count a swap between tied items
# as a miss. So we measure on **synthetic vectors** of the same size
# (`serving.clustered_vectors`): seeded random points scattered around 200
# random centres, the users around other centres than the items. They cluster,
# as trained vectors do, but they are not this model's vectors, and the recall
# and times below are theirs. `compare_indexes` times each index (median
# of several runs after a warm-up) and measures its recall@100 against the exact
# top 100. It compares two settings of TFRS's ScaNN layer and the settings this
# lesson recommends, `serving.SCANN_SETTINGS[serving.RECOMMENDED]`: 12 of 500
# leaves scored exactly, built like this (`serving.build_scann` does it):
#
# ```python
# import scann
# searcher = (scann.scann_ops_pybind.builder(items, 100, "dot_product")
#             .tree(num_leaves=500, num_leaves_to_search=12)
#             .score_brute_force()
#             .build())
# ids, scores = searcher.search_batched_parallel(users)
# ```
#
# The numbers vary from run to run and machine to machine; the benchmark
# `make bench-serving` prints the same table.

# %%
distinct_vectors = len(np.unique(hybrid.item_vectors, axis=0))
print(f"The hybrid's {len(hybrid.item_vectors):,} item vectors hold {distinct_vectors:,} distinct ones.")

# %%
from tfrs_course import serving

serving_queries = serving.clustered_vectors(NUM_USERS, 32, seed=SEED)
serving_items = serving.clustered_vectors(len(data.items), 32, seed=SEED + 1)
# Your recall_at_k computes the recall column.
serving_table = pd.DataFrame(
    serving.compare_indexes(serving_queries, serving_items, 100, repeats=SERVING_REPEATS, recall=recall_at_k)
)
serving_table["ms"] = 1000 * serving_table["seconds"]
serving_table.set_index("method")[["ms", "recall", "build_seconds"]].round(3)

# %%
import matplotlib.pyplot as plt

figure, axes = plt.subplots(figsize=(7, 3.8))
for _, row in serving_table.iterrows():
    axes.scatter(row["ms"], row["recall"], s=40)
    axes.annotate(row["method"], (row["ms"], row["recall"]), fontsize=8, xytext=(4, -10), textcoords="offset points")
axes.set_xscale("log")
axes.set_xlabel("milliseconds for the top 100 of 2,000 users (log scale)")
axes.set_ylabel("recall@100 against exact")
axes.set_title("Serving: recall against latency")
figure.tight_layout()

# %%
timed = serving_table.set_index("method")
ratio = timed.loc["TFRS BruteForce", "seconds"] / timed.loc["exact_top_k (numpy)", "seconds"]
scann = timed[timed.index.str.startswith("ScaNN")]
layer = scann[scann.index.str.endswith("(TFRS)")]
recommended_settings = serving.SCANN_SETTINGS[serving.RECOMMENDED]
recommended = timed.loc[recommended_settings.label()]


def as_fast(ratio: float) -> str:
    """'3.1 times as fast as' for a ratio of times above 1, '1.2 times as slow as' below it."""
    return f"{ratio:.1f} times as fast as" if ratio >= 1 else f"{1 / ratio:.1f} times as slow as"


say(
    f"On this run, `exact_top_k` was {as_fast(ratio)} `BruteForce` "
    f"({1000 * timed.loc['exact_top_k (numpy)', 'seconds']:.0f} ms against "
    f"{1000 * timed.loc['TFRS BruteForce', 'seconds']:.0f} ms). The ScaNN settings reached recall@100 "
    + ", ".join(f"{row.recall:.3f} in {1000 * row.seconds:.0f} ms ({method})" for method, row in scann.iterrows())
    + f"; the recommended ones were {as_fast(timed.loc['TFRS BruteForce', 'seconds'] / recommended.seconds)} "
    f"`BruteForce`. They search {recommended_settings.num_leaves_to_search} of {recommended_settings.num_leaves} "
    f"leaves: {recommended_settings.num_leaves_to_search / recommended_settings.num_leaves:.1%} of the candidates "
    "if the leaves are of even size. Timings vary with the machine and what else runs on it, and ScaNN's "
    "clustering is not seeded, so its recall can change a little from run to run too."
)
claim("both exact methods have recall 1", (timed.loc[["TFRS BruteForce", "exact_top_k (numpy)"], "recall"] == 1).all())
claim("of the two settings of TFRS's ScaNN layer, the one that searches more leaves and re-scores more "
      "candidates finds at least as much of the exact top 100", bool(np.all(np.diff(layer["recall"].to_numpy()) >= 0)),
      evidence=", ".join(f"{value:.3f}" for value in layer["recall"]))  # fmt: skip
claim("the recommended ScaNN settings find at least 95% of the exact top 100", recommended.recall >= 0.95,
      evidence=f"{recommended.recall:.3f}")  # fmt: skip

# %% [markdown]
# Read the chart from right to left. `BruteForce` and `exact_top_k` are exact.
# `BruteForce` gives every score of every user to `tf.math.top_k`;
# `exact_top_k` sorts only a short list. Each ScaNN setting trades recall for
# time: the cell above says what each setting found, and how long it took on
# this run. TFRS's layer compresses the scores, then re-scores the best
# candidates exactly. The recommended settings skip both: with 32 numbers per
# vector, scoring the candidates of the searched leaves exactly is cheap.
# Whether the recall of an approximate index is enough is a decision for the
# shop: look at what the missed items are before you choose. ScaNN also costs a
# build (clustering the candidates), paid once per new set of item vectors.

# %% [markdown]
# ## 6. Recording the results
#
# Every number recorded here leaves seen items out. The names say what differs
# from lessons 1 to 5, and each row says which candidates its lists come from.

# %%
from tfrs_course.records import save_results

POOLS = {
    "Most popular": "the most popular train items (the user's own left out)",
    "ID embeddings": "the items of the train rows",
    "Content-based": f"all {len(data.items):,} catalogue items",
    "Hybrid": f"all {len(data.items):,} catalogue items",
}
recorded = {
    f"{name}, seen items excluded": {"test": results["seen items excluded"], "candidates": POOLS[name]}
    for name, results in seen_effect.items()
}
recorded["ID embeddings, seen items excluded"]["train"] = {
    100: accuracy(random_split["ID embeddings"], train_top, train_sample, exclude=False, ks=[100])[100]
}
recorded |= {f"{name}, time split": {"test": by_time[name], "candidates": POOLS[name]} for name in by_time}
recorded[f"ID embeddings, early stopping (batches of {OVERFIT_BATCH_SIZE})"] = {
    "test": early_stopped_test, "candidates": POOLS["ID embeddings"]
}  # fmt: skip
recorded[f"ID embeddings, L2 {L2}, {trained_epochs} epochs (batches of {OVERFIT_BATCH_SIZE})"] = {
    "test": penalised_test, "candidates": POOLS["ID embeddings"]
}  # fmt: skip
save_results("06_evaluation_serving", recorded, data_note=str(data))
pd.DataFrame({name: splits["test"] for name, splits in recorded.items()}).T.rename(columns=lambda k: f"top-{k}").round(
    4
)

# %% [markdown]
# ## What this lesson found
#
# Each point below was checked on your run by a claim cell above.
#
# - Leaving seen items out never lowers accuracy, and it is how a shop serves
#   lists anyway. Measure with it.
# - At equal training size, a split by time is harder than a random one for
#   the content-based model; how much harder, and for which other models, this
#   run measured for the twin only.
# - Trained longer, the ID model overfits: validation accuracy peaks, then
#   falls. Early stopping on a validation set, not the test set, keeps the best
#   epoch; at equal epochs and data, a penalty on the vectors narrows the gap
#   between train and validation and keeps validation accuracy higher.
# - Exact top-k does not need a sort of every score, and an approximate index
#   trades a little recall for time. These serving figures come from synthetic
#   clustered vectors, not from the model's own.
