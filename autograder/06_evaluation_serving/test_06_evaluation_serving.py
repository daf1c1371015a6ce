"""Autograder tests for lesson 6: evaluation and serving.

Each test calls the student's function and the reference solution (from
``solutions/``) on the same inputs and compares the plain-data results.
"""

import numpy as np
import pandas as pd

from tfrs_course.grading import expect_same, graded
from tfrs_course.grading.assertions import Hint, compare_call, describe_call, render_hint, student_call, student_run
from tfrs_course.grading.drivers import load

drivers = load("06_evaluation_serving")

# Each exercise is worth 2 points per level of difficulty (docs/instructor.md, "Points").
DIFFICULTY = {"exclude_seen": 1, "split_by_month": 1, "blocked_top_k": 3, "recall_at_k": 1}


# --- exclude_seen ------------------------------------------------------------------

EXCLUDE_HINT = Hint(
    "Leave out the seen items first, then keep the first k of what remains. "
    "If a row came back with fewer than k real ids (padded with ''), the list was cut to k "
    "before the seen items were removed.",
    code="Filter each whole row against its seen set, then take the first k and pad with ''.",
)
PER_USER_HINT = Hint(
    "Each row has its own seen items: seen_ids[i] applies to row i only. "
    "An item seen by one user may still be recommended to another.",
    code="Loop over the rows together with their own seen lists (zip), not over one set of everyone's items.",
)


TEXT_WIDTH_HINT = Hint(
    "If the ids came back cut short ('1' for '102'), the array you wrote them into holds shorter "
    "strings than the ids: np.full((rows, k), '') and np.empty(..., dtype=str) hold one character each, "
    "and NumPy cuts longer text to fit.",
    code="Give the result array the ids' dtype (dtype=retrieved_ids.dtype), or build lists of str and convert "
    "them with np.array at the end.",
)


@graded("exclude_seen", points=0.5)
def test_exclude_seen_small_example(student, reference):
    # Ids of several characters, as the catalogue's are: an array of one-character
    # strings cuts them, and ids of one letter would not show it.
    retrieved = np.array([["101", "102", "103", "104", "105"], ["103", "101", "105", "102", "104"]])
    compare_call(
        student, reference, "exclude_seen", retrieved, [["101", "103"], ["105"]], 3,
        hint=EXCLUDE_HINT + PER_USER_HINT + TEXT_WIDTH_HINT,
    )  # fmt: skip


@graded("exclude_seen", points=0.5)
def test_exclude_seen_seen_items_at_the_top(student, reference):
    retrieved = np.array([["s1", "s2", "x", "y", "z", "w"], ["x", "s1", "y", "s2", "z", "w"]])
    seen = [["s1", "s2"], ["s1", "s2"]]
    compare_call(student, reference, "exclude_seen", retrieved, seen, 4, hint=EXCLUDE_HINT)


@graded("exclude_seen", points=0.5)
def test_exclude_seen_short_rows_and_empty_history(student, reference):
    retrieved = np.array([["a", "b", "c"], ["a", "b", "c"], ["a", "b", "c"]])
    seen = [["a", "b", "c"], [], ["b", "zz"]]
    compare_call(
        student, reference, "exclude_seen", retrieved, seen, 3,
        hint="A row with fewer than k unseen ids is padded at the end with ''; an empty history removes nothing.",
    )  # fmt: skip


@graded("exclude_seen", points=0.5, hidden=True)
def test_exclude_seen_random_lists(student, reference):
    rng = np.random.default_rng(11)
    catalogue = rng.integers(0, 2**40, size=300).astype(str)
    retrieved = np.array([rng.choice(catalogue, 40, replace=False) for _ in range(50)])
    seen = [rng.choice(catalogue, int(rng.integers(0, 25)), replace=False).tolist() for _ in range(50)]
    compare_call(student, reference, "exclude_seen", retrieved, seen, 10, hint=EXCLUDE_HINT + PER_USER_HINT)


# --- split_by_month -----------------------------------------------------------------

SPLIT_HINT = Hint(
    "Train holds months up to and including last_train_month, test the later months only: the boundary "
    "month belongs to train alone, or the test set leaks rows the model was trained on.",
    code="Compare first_interaction_month with <= for train and > for test.",
)
COLD_HINT = Hint(
    "Drop the test rows of users who have no train rows at all (cold-start users).",
    code="Keep the test rows whose user_no is among train's users (Series.isin).",
)


INDEX_HINT = Hint(
    "Both tables get a fresh index 0, 1, 2, ...: a filtered DataFrame keeps the index labels of the "
    "rows it kept, with gaps where rows were left out.",
    code="End each table with .reset_index(drop=True).",
)


def _pairs(users, items, months):
    return pd.DataFrame({"user_no": list(users), "item_no": list(items), "first_interaction_month": list(months)})


@graded("split_by_month", points=0.5)
def test_split_by_month_small_table(student, reference):
    interactions = _pairs(["u1", "u1", "u2", "u2", "u1"], ["a", "b", "c", "d", "e"], [2, 5, 3, 6, 7])
    compare_call(student, reference, "split_by_month", interactions, 5, hint=SPLIT_HINT)


@graded("split_by_month", points=0.5)
def test_split_by_month_drops_cold_start_users(student, reference):
    interactions = _pairs(["u1", "new", "u1", "new", "u2"], ["a", "b", "c", "d", "e"], [1, 9, 9, 10, 4])
    compare_call(student, reference, "split_by_month", interactions, 8, hint=COLD_HINT + SPLIT_HINT)


@graded("split_by_month", points=0.5)
def test_split_by_month_fresh_index(student, reference):
    interactions = _pairs(["u1", "u2", "u2", "u1", "u1"], ["a", "b", "c", "d", "e"], [6, 2, 7, 3, 5])
    call = describe_call("split_by_month", interactions, 4)
    expected = reference.call("split_by_month", interactions, 4)
    got = student_call(student, "split_by_month", interactions, 4, hint=SPLIT_HINT + COLD_HINT)
    # The rows first, so that a wrong row is not reported as a wrong index.
    expect_same(got, expected, call=call, hint=SPLIT_HINT + COLD_HINT)
    expect_same(got, expected, call=call, hint=INDEX_HINT, check_index=True)


@graded("split_by_month", points=0.5, hidden=True)
def test_split_by_month_random_tables(student, reference):
    rng = np.random.default_rng(5)
    for last_month in (3, 10):
        interactions = _pairs(
            rng.integers(0, 40, 300).astype(str), rng.integers(0, 10**9, 300).astype(str), rng.integers(1, 12, 300)
        )
        interactions["brand"] = rng.choice(["molo", "reima", "jacadi"], 300)
        compare_call(student, reference, "split_by_month", interactions, last_month, hint=SPLIT_HINT + COLD_HINT)


# --- blocked_top_k ------------------------------------------------------------------

ORDER_HINT = Hint(
    "Each row must list candidates from the highest dot product to the lowest. "
    "If your rows start with the worst candidates, the sort is ascending.",
    code="np.argsort sorts ascending: sort the negated scores.",
)
TIES_HINT = Hint(
    "Equal scores: the lower candidate row number comes first. Reversing an ascending sort puts "
    "the higher row number first, and NumPy's default sort (quicksort) is not stable: it may put "
    "equal scores in any order.",
    code="Sort the negated scores with a stable sort (kind='stable'), running candidates before the block's.",
)
BLOCK_HINT = Hint(
    "The result must not depend on `block`: keep a running top k across blocks, join it with each "
    "new block's scores, and keep the best k of the two together.",
    code="Concatenate the running scores and row numbers with the block's along axis 1, sort, keep k columns.",
)
MEMORY_HINT = Hint(
    "Blocking exists to bound memory: one call may hold the scores of a few blocks at a time, never "
    "the scores of every candidate at once. Score one block, fold it into the running top k, and let "
    "it go before the next.",
    code="Inside the loop over blocks, multiply the queries by that block's candidates only "
    "(candidates[start:start + block]); do not build the full queries x candidates score table.",
)


@graded("blocked_top_k", points=1)
def test_blocked_top_k_small_example(student, reference):
    queries = np.array([[1.0, 0.0], [0.0, 1.0]])
    candidates = np.array([[0.5, 0.1], [0.9, 0.2], [0.1, 0.8], [0.3, 0.3], [0.2, 0.95]])
    compare_call(student, reference, "blocked_top_k", queries, candidates, 3, 2, hint=ORDER_HINT + BLOCK_HINT)


@graded("blocked_top_k", points=1)
def test_blocked_top_k_ties_go_to_the_lower_row(student, reference):
    queries = np.array([[1.0, 1.0], [1.0, -1.0]])
    # Six vectors four times over: every score ties with at least three others. On some
    # CPUs NumPy's default sort orders up to 16 values by insertion, which keeps ties in
    # order by chance, so each sort here holds block + k = 20 values: an unstable sort
    # (argsort's default, or argpartition) gets these ties wrong on every CPU.
    candidates = np.tile([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], (4, 1))
    compare_call(student, reference, "blocked_top_k", queries, candidates, 8, 12, hint=TIES_HINT)


# A catalogue too large to score at once within the budget: its full score table
# alone (40 x 60,000 float64 = 19 MB) is more than BLOCKS_IN_BUDGET blocks of scores
# and a copy of the inputs (8 MB each).
MEMORY_CASE = {"n_queries": 40, "n_candidates": 60_000, "dim": 16, "k": 10, "block": 1_000, "seed": 9}
BLOCKS_IN_BUDGET = 24


@graded("blocked_top_k", points=1)
def test_blocked_top_k_memory_stays_within_a_few_blocks(student, reference):
    case = MEMORY_CASE
    call = (
        f"blocked_top_k({case['n_queries']} queries, {case['n_candidates']:,} candidates of "
        f"{case['dim']} numbers, k={case['k']}, block={case['block']:,})"
    )
    expected = reference.run(drivers.blocked_top_k_peak_memory, *case.values())
    got = student_run(
        student, drivers.blocked_top_k_peak_memory, *case.values(), call=call, name="blocked_top_k", hint=MEMORY_HINT
    )
    expect_same(got["ids"], expected["ids"], call=call, hint=BLOCK_HINT)
    one_block = case["n_queries"] * (case["block"] + case["k"]) * 8
    # A copy of the inputs (np.array(candidates, dtype=float) makes one) is as large as
    # what the caller holds already; the score table the blocks bound is 16 times larger here.
    inputs = (case["n_queries"] + case["n_candidates"]) * case["dim"] * 8
    budget = BLOCKS_IN_BUDGET * one_block + inputs
    if got["peak_bytes"] > budget:
        full_table = case["n_queries"] * case["n_candidates"] * 8
        raise AssertionError(
            f"{call}\n  expected: at most {budget / 1e6:.1f} MB at once (the scores of {BLOCKS_IN_BUDGET} blocks, "
            f"and a copy of the inputs)\n"
            f"  got:      {got['peak_bytes'] / 1e6:.1f} MB at once (the full score table alone is "
            f"{full_table / 1e6:.1f} MB)\n  first difference: the answer is right, the memory is not bounded by "
            f"the block\n{render_hint(MEMORY_HINT)}"
        )


# Visible: a running top k started as k columns of -inf (row -1) is right whenever k is at most
# the number of candidates, as in the tests above, and keeps those columns only here.
@graded("blocked_top_k", points=1)
def test_blocked_top_k_k_larger_than_candidates(student, reference):
    queries = np.array([[0.3, -1.0, 2.0]])
    candidates = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    compare_call(
        student, reference, "blocked_top_k", queries, candidates, 10, 2,
        hint=Hint(
            "With fewer candidates than k, return them all, in order: the result has min(k, candidates) "
            "columns. Placeholders (a row number of -1, a score of -inf) must not be returned.",
            code="Start the running top k empty (zero columns) rather than as k placeholder columns, or cut "
            "the result to min(k, len(candidates)) columns.",
        ),
    )  # fmt: skip


@graded("blocked_top_k", points=1, hidden=True)
def test_blocked_top_k_one_block_and_many(student, reference):
    rng = np.random.default_rng(3)
    queries = rng.standard_normal((20, 8))
    candidates = rng.standard_normal((300, 8))
    for block in (1, 7, 64, 300, 1000):
        compare_call(student, reference, "blocked_top_k", queries, candidates, 25, block, hint=BLOCK_HINT)


@graded("blocked_top_k", points=1, hidden=True)
def test_blocked_top_k_many_ties(student, reference):
    rng = np.random.default_rng(4)
    # Small integer vectors: most scores tie with many others.
    queries = rng.integers(-1, 2, (30, 3)).astype(float)
    candidates = rng.integers(-1, 2, (200, 3)).astype(float)
    compare_call(student, reference, "blocked_top_k", queries, candidates, 15, 16, hint=TIES_HINT)


# --- recall_at_k --------------------------------------------------------------------

RECALL_HINT = Hint(
    "Recall counts the ids two rows share, in any order: an id found at another position still counts. "
    "Comparing position by position undercounts.",
    code="Per row, count the ids of the exact row that the approximate row also holds (sets, or np.isin).",
)


@graded("recall_at_k", points=0.5)
def test_recall_at_k_small_example_and_no_rows(student, reference):
    approximate = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    exact = np.array([[1, 2, 3, 9], [9, 10, 11, 12]])
    compare_call(student, reference, "recall_at_k", approximate, exact, hint="Average the per-row shares.")
    compare_call(
        student, reference, "recall_at_k", np.empty((0, 4), dtype=int), np.empty((0, 4), dtype=int),
        hint="With no rows, return 0.0: the mean of no shares is not a number (NaN).",
    )  # fmt: skip


@graded("recall_at_k", points=1)
def test_recall_at_k_ignores_order(student, reference):
    approximate = np.array([["b", "a", "c"], ["z", "y", "x"]])
    exact = np.array([["a", "b", "c"], ["x", "y", "w"]])
    compare_call(student, reference, "recall_at_k", approximate, exact, hint=RECALL_HINT)


@graded("recall_at_k", points=0.5, hidden=True)
def test_recall_at_k_random_and_empty(student, reference):
    rng = np.random.default_rng(8)
    exact = np.array([rng.choice(1000, 100, replace=False) for _ in range(40)])
    approximate = np.array([np.where(rng.random(100) < 0.9, row, row + 1000) for row in exact])
    approximate = np.array([rng.permutation(row) for row in approximate])
    compare_call(student, reference, "recall_at_k", approximate, exact, hint=RECALL_HINT)
    compare_call(
        student, reference, "recall_at_k", np.empty((0, 5), dtype=int), np.empty((0, 5), dtype=int),
        hint="With no rows, return 0.0.",
    )  # fmt: skip
