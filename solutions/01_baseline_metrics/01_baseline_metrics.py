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
# # Lesson 1: Baseline metrics
#
# Before we build any model, we need two things: a way to measure a recommender,
# and a number that any model must beat. This lesson builds both.
#
# **You will learn to**
# - read the Babyshop interaction tables and see what one row means;
# - keep the most active users, as the rest of the course does;
# - recommend the same most popular items to everyone, the simplest baseline;
# - write *top-k categorical accuracy* yourself, without a loop over rows;
# - explain why the numbers are small, and what later lessons compare against.
#
# **Exercises** (each has a self-check cell right after it):
# 1. `select_top_users`: the most active users.
# 2. `most_popular_items`: the items with the most interactions.
# 3. `top_k_accuracy`: how often the right item is in the first k recommendations.
#
# When your notebook is graded, the setup and parameters cells run, then your answer
# cells and any cells you added before them (their imports, definitions and assignments;
# not loops, displayed values, magics or shell lines), so keep what an answer needs there.

# %% tags=["setup"]
# Setup: run this cell before the lesson's other code (in Colab, after the cell above).
# `import tfrs_course` must come before TensorFlow
# is imported anywhere, because it selects the Keras version that TFRS needs.
import numpy as np
import pandas as pd

import tfrs_course
from tfrs_course.data import load_babyshop
from tfrs_course.grading import Checker

check = Checker("01_baseline_metrics")
print(f"tfrs_course {tfrs_course.__version__} is ready.")

# %% tags=["parameters"]
# Parameters. Tests and `make demo` may override these when they run the lesson.
NUM_USERS = 2000  # how many of the most active users we keep, as the original study did
KS = (1, 5, 10, 50, 100)  # the cut-offs we report accuracy at

# %% [markdown]
# ## 1. The data
#
# Babyshop is a Swedish retailer of children's clothes and gear. Each row of the
# `train` and `test` tables is one **user-item pair**: the user viewed the item,
# added it to the cart or to a wish list, or bought it, at least once. The row
# also carries the item's gender description, brand and product group, and the
# month of the pair's first event. The pairs were split at random into `train`
# and `test`; the cell below prints the shares.
#
# `load_babyshop()` uses the real files when a verified copy has been downloaded,
# and otherwise a *synthetic twin*: generated data with the same columns and
# similar statistics. The line it prints tells you which one you have.

# %% [markdown]
# Ids are long integers stored as text (`str`); we never do arithmetic with them.

# %%
data = load_babyshop()
print(data)
train, test = data.train, data.test
print(
    f"{len(train) / (len(train) + len(test)):.0%} of the pairs are in train, {len(test) / (len(train) + len(test)):.0%} in test"
)
train.head()

# %%
items_per_user = train.groupby("user_no").size()
print(f"{train['user_no'].nunique():,} users, {train['item_no'].nunique():,} items in train")
items_per_user.describe().round(2)

# %% [markdown]
# ## 2. Exercise: the most active users
#
# Training on every user is slow on a laptop, so the course keeps the `NUM_USERS`
# users with the most rows in `train`. Several users often have the same count;
# to make the choice repeatable, break ties by the user id, in ascending text
# order (`"-3" < "10" < "9"`, as Python compares strings), not as numbers and
# not in the order the users happen to appear.


# %% tags=["answer:select_top_users"]
def select_top_users(train: pd.DataFrame, n: int) -> list[str]:
    """Return the ids of the n users with the most rows in `train`.

    Args:
        train: interactions, one row per user-item pair, with a `user_no` column.
        n: how many users to keep. If there are fewer users, return them all.

    Returns:
        A list of user ids (str), the most active first; users with equal counts
        are ordered by user id, ascending as text ("10" before "9").
    """
    ### BEGIN SOLUTION
    counts = train.groupby("user_no").size().rename("count").reset_index()
    ordered = counts.sort_values(["count", "user_no"], ascending=[False, True], kind="stable")
    return ordered["user_no"].head(n).tolist()
    ### END SOLUTION


# %% tags=["visible-tests:select_top_users"]

# %% tags=["hidden-tests:select_top_users"]

# %% [markdown]
# Now keep only those users, in both splits. Test rows of other users are dropped
# too, since we will not recommend anything to them.

# %%
top_users = select_top_users(train, NUM_USERS)
train_top = train[train["user_no"].isin(top_users)]
test_top = test[test["user_no"].isin(top_users)]
print(
    f"Kept {len(top_users):,} users: {len(train_top):,} train rows, {len(test_top):,} test rows "
    f"({len(test_top) / (len(train_top) + len(test_top)):.0%} of their pairs are in test)."
)

# %% [markdown]
# ## 3. Exercise: the most popular items
#
# The simplest recommender ignores who is asking: it shows everyone the items
# that most people interacted with. Count each item's rows in the training data
# of the kept users and take the top k. Break ties by item id, ascending.


# %% tags=["answer:most_popular_items"]
def most_popular_items(train: pd.DataFrame, k: int) -> list[str]:
    """Return the ids of the k items with the most rows in `train`.

    Args:
        train: interactions with an `item_no` column.
        k: how many items to return (all of them if there are fewer).

    Returns:
        A list of item ids (str), the most popular first; items with equal
        counts are ordered by item id, ascending as text ("10" before "9").
    """
    ### BEGIN SOLUTION
    counts = train.groupby("item_no").size().rename("count").reset_index()
    ordered = counts.sort_values(["count", "item_no"], ascending=[False, True], kind="stable")
    return ordered["item_no"].head(k).tolist()
    ### END SOLUTION


# %% tags=["visible-tests:most_popular_items"]

# %% tags=["hidden-tests:most_popular_items"]

# %%
popular = most_popular_items(train_top, max(KS))
data.items.set_index("item_no").loc[popular[:5], ["brand", "product_group", "gender_description"]]

# %% [markdown]
# ## 4. Exercise: top-k categorical accuracy
#
# For every test row we have one **true** item (what the user actually chose)
# and a **ranked list** of retrieved items (what the recommender suggested, best
# first). The row counts as a hit at k if the true item is among the first k
# retrieved items. Top-k accuracy is the share of rows that are hits.
#
# Three details matter:
# - a retrieved list may contain the true item more than once; the row is still
#   **one** hit, not two;
# - if k is larger than the list, use the whole list;
# - with no rows at all, report 0.0 rather than dividing by zero.
#
# Write it for several ks at once and without a Python loop over rows: compare
# the whole `(rows, list length)` table of ids with the true ids in one
# broadcast (`retrieved == true[:, None]`), then ask, for each k, whether any of
# the first k columns matched. TFRS's `FactorizedTopK` metric does the same when
# it is given the candidates' ids; without ids it compares scores instead, and
# lesson 2 shows where the two disagree.


# %% tags=["answer:top_k_accuracy"]
def top_k_accuracy(true_ids: np.ndarray, retrieved_ids: np.ndarray, ks: list[int]) -> dict[int, float]:
    """Return the share of rows whose true id is among their first k retrieved ids.

    Args:
        true_ids: shape (rows,), the true item id of each row.
        retrieved_ids: shape (rows, list length), each row's ranked item ids.
        ks: the cut-offs to evaluate, e.g. [1, 5, 10].

    Returns:
        A dict {k: accuracy} with a float in [0, 1] for every k in `ks`.
        A row with several matches in its first k counts once; a k longer than
        the list uses the whole list; no rows gives 0.0.
    """
    ### BEGIN SOLUTION
    true_ids = np.asarray(true_ids)
    retrieved_ids = np.asarray(retrieved_ids)
    if len(true_ids) == 0 or retrieved_ids.size == 0:
        return {k: 0.0 for k in ks}
    matches = retrieved_ids == true_ids[:, None]
    # hit_by[:, j] is True when the true id is somewhere in the first j + 1 columns,
    # so a row with several matches still counts once.
    hit_by = np.logical_or.accumulate(matches, axis=1)
    return {k: float(hit_by[:, min(k, matches.shape[1]) - 1].mean()) for k in ks}
    ### END SOLUTION


# %% tags=["visible-tests:top_k_accuracy"]

# %% tags=["hidden-tests:top_k_accuracy"]

# %% [markdown]
# ## 5. The popularity baseline
#
# Every test user gets the same list: the 100 most popular items. We score it on
# the test rows of the kept users.

# %%
true_ids = test_top["item_no"].to_numpy()
retrieved = np.tile(np.array(popular), (len(true_ids), 1))
baseline = top_k_accuracy(true_ids, retrieved, list(KS))
pd.Series(baseline, name="test accuracy").rename_axis("k").to_frame().T.round(5)

# %%
from tfrs_course.plotting import plot_accuracy_by_k

figure = plot_accuracy_by_k({"most popular 100": baseline}, title="Popularity baseline: test accuracy by k")

# %% [markdown]
# ## 6. Why so low, and what comes next
#
# The cell below says how often the single list finds a test row's item. The
# catalogue has tens of thousands of items, each user touches only a handful,
# and tastes differ (a family with a baby girl who loves one brand has little in
# common with a family shopping for a boy's winter boots): one list cannot serve
# them all.

# %%
from tfrs_course.claims import claim, say

catalogue_share = max(KS) / len(data.items)
say(
    f"The same {max(KS)} items for everyone find **{baseline[max(KS)]:.1%}** of the test rows' items "
    f"at k = {max(KS)}, and {baseline[min(KS)]:.2%} at k = {min(KS)}; the list is "
    f"{catalogue_share:.2%} of the {len(data.items):,} items in the catalogue."
)
claim(
    f"the popular list finds fewer than one test item in ten at k = {max(KS)}",
    baseline[max(KS)] < 0.1,
    evidence=f"{baseline[max(KS)]:.4f}",
)
claim(
    f"the list does better than a random list of the same length would ({catalogue_share:.4f} at k = {max(KS)})",
    baseline[max(KS)] > catalogue_share,
    evidence=f"{baseline[max(KS)]:.4f}",
)

# %% [markdown]
# ### Your run beside the original study
#
# The course grew out of a study on the real Babyshop files. The kit ships its
# table (`tfrs_course.records.real_results()`, with its source). Put your numbers
# beside the real ones, k by k. If your data are the synthetic twin, its numbers
# were calibrated to be of the same size as the real ones, not equal to them.

# %%
from tfrs_course.records import real_results

real, about = real_results()
print(about["source"])
side_by_side = pd.DataFrame(
    {
        "real files (original study)": real.loc["Most popular 100 items", [f"top-{k}" for k in KS]].to_numpy(),
        f"your run ({data.source} data)": [baseline[k] for k in KS],
    },
    index=[f"top-{k}" for k in KS],
).T
side_by_side.round(5)

# %% [markdown]
# These numbers are the bar to clear. Lessons 2 to 5 measure their models the
# same way: they retrieve each user's list from the model and score the lists
# with this `top_k_accuracy`, on the same users and test rows, so you can see
# what each idea buys: learned ID embeddings (lessons 2 and 3), item content
# (lesson 4), and both together (lesson 5).

# %%
from tfrs_course.records import save_results

save_results(
    "01_baseline_metrics",
    {
        "Most popular 100 items": {
            "test": baseline,
            "candidates": "one list for everyone: the 100 most popular train items",
        }
    },
    data_note=str(data),
)
