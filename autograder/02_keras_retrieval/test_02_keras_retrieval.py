"""Autograder tests for lesson 2: a retrieval model written by hand in Keras.

The loss and the metric are checked against TFRS itself (``tfrs.tasks.Retrieval``
and ``tfrs.metrics.FactorizedTopK``) on the same embeddings; the model is checked
against the reference solution from the same initial weights and batches.
TensorFlow is imported inside the helpers, so listing the tests stays quick.
"""

import math
import pickle

import numpy as np

from tfrs_course.grading import describe_call, expect_same, graded
from tfrs_course.grading.assertions import Hint, graph_mode_hint, student_call, student_run
from tfrs_course.grading.drivers import load

drivers = load("02_keras_retrieval")

# Each exercise is worth 2 points per level of difficulty (docs/instructor.md, "Points").
DIFFICULTY = {"in_batch_softmax_loss": 2, "logq_in_batch_loss": 2, "TwoTowerModel": 3, "factorized_top_k_accuracy": 2}


def _embeddings(seed, rows, dim, scale=1.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, dim)) * scale).astype(np.float32)


# Shown when the student's code raised: the drivers run it in graph mode, as model.fit does.
GRAPH_HINT = graph_mode_hint("code")

# --- in_batch_softmax_loss ---------------------------------------------------------

LOSS_HINT = Hint(
    "Every query is scored against every candidate of the batch; row i's true candidate is candidate i "
    "and the others are its negatives. The loss is the softmax cross-entropy of each row's scores, "
    "computed from the raw scores (logits), summed over the rows.",
    code="A B x B score matrix from one matrix product (transpose the candidates); the identity matrix as "
    "labels; a Keras categorical cross-entropy told that its inputs are logits, with a summing reduction.",
)


def _tfrs_loss(queries, candidates):
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    return float(tfrs.tasks.Retrieval()(tf.constant(queries), tf.constant(candidates)))


OVERFLOW_HINT = Hint(
    "If you computed the softmax yourself: with scores in the hundreds, exp() of a score overflows to inf "
    "(and inf / inf is NaN), and a softmax probability rounds to 0, whose log is -inf. Never exp() the "
    "scores or take the log of a softmax yourself: let a cross-entropy work from the scores as logits.",
    code="A Keras cross-entropy with from_logits=True, tf.nn.softmax_cross_entropy_with_logits, or "
    "tf.nn.log_softmax, all of which compute the log-softmax without overflowing.",
)


def _loss_hint(got, expected, batch_size):
    """Name the likely mistake from the value that came back."""
    if isinstance(got, float) and not math.isfinite(got):
        return Hint("Your loss is not a finite number.") + OVERFLOW_HINT + LOSS_HINT
    if isinstance(got, float) and math.isclose(got * batch_size, expected, rel_tol=1e-4):
        return Hint(
            f"Your loss is the expected one divided by the batch size ({batch_size}): it is averaged "
            "over the rows. TFRS sums the row losses.",
            code="Choose the loss's reduction that sums, or sum the per-row losses yourself.",
        )
    if not isinstance(got, float):
        return Hint("Return one number for the whole batch (a scalar tensor): the sum of the row losses.")
    return LOSS_HINT + Hint(
        "If the value is far off, the scores may have been taken for probabilities: they are logits.",
        code="Check the loss's from_logits argument.",
    )


def _check_loss(student, queries, candidates):
    expected = _tfrs_loss(queries, candidates)
    got = student_run(
        student, drivers.call_loss, "in_batch_softmax_loss", queries, candidates,
        call=describe_call("in_batch_softmax_loss", queries, candidates), name="in_batch_softmax_loss",
        hint=GRAPH_HINT + LOSS_HINT,
    )  # fmt: skip
    expect_same(
        got, expected, rtol=1e-4, atol=1e-3,
        call=describe_call("in_batch_softmax_loss", queries, candidates),
        hint=_loss_hint(got, expected, len(queries)),
    )  # fmt: skip


@graded("in_batch_softmax_loss", points=1)
def test_loss_equals_tfrs_retrieval_on_a_small_batch(student, reference):
    _check_loss(student, _embeddings(0, 4, 3), _embeddings(1, 4, 3))


@graded("in_batch_softmax_loss", points=1)
def test_loss_is_a_sum_over_the_batch(student, reference):
    # Identical rows: every score is equal, so each row's loss is exactly log(B).
    queries = np.ones((8, 2), dtype=np.float32)
    _check_loss(student, queries, queries.copy())


@graded("in_batch_softmax_loss", points=1, hidden=True)
def test_loss_equals_tfrs_retrieval_on_a_larger_batch(student, reference):
    _check_loss(student, _embeddings(2, 64, 8), _embeddings(3, 64, 8))


# Visible: a softmax computed by hand (log of tf.nn.softmax, or exp() of the scores) is right
# on the small batches above and overflows only here.
@graded("in_batch_softmax_loss", points=1)
def test_loss_is_stable_for_large_scores(student, reference):
    # Scores in the hundreds: exp() overflows unless the softmax is computed from logits.
    _check_loss(student, _embeddings(4, 16, 4, scale=12.0), _embeddings(5, 16, 4, scale=12.0))


# --- logq_in_batch_loss --------------------------------------------------------------

LOGQ_HINT = Hint(
    "In-batch negatives are sampled by popularity: an item is a negative as often as it is in the data. "
    "The correction subtracts the log of each candidate's sampling probability from its whole column of "
    "scores, so a popular item is not pushed down just for being frequent. A rare item's score goes up; "
    "a popular item's goes down less.",
    code="Subtract tf.math.log(probabilities) from the scores, broadcast over the rows (one value per column).",
)
NAN_HINT = Hint(
    "Your loss is NaN. If you left columns out with -inf: in a column whose label is 0 the cross-entropy "
    "computes 0 x inf, which is NaN (and so are the gradients); leave a column out with a very large but "
    "finite negative score instead.",
    code="For example scores.dtype.min / 100, or -1e9, in place of -np.inf.",
)
HITS_HINT = Hint(
    "Accidental hits: when a batch holds the same item twice, row i's true item also sits in another "
    "column. That column is not a negative for row i: leave it out of row i's softmax, but keep row i's "
    "own (diagonal) column.",
    code="Compare the candidate ids with each other to find equal pairs, drop the diagonal, and give "
    "those scores a very large negative value before the cross-entropy.",
)


def _tfrs_logq_loss(queries, candidates, probabilities, ids):
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    task = tfrs.tasks.Retrieval(remove_accidental_hits=True)
    return float(
        task(
            tf.constant(queries), tf.constant(candidates),
            candidate_sampling_probability=tf.constant(probabilities), candidate_ids=tf.constant(ids),
        )
    )  # fmt: skip


def _check_logq(student, queries, candidates, probabilities, ids, hint):
    call = (
        f"logq_in_batch_loss({len(queries)} queries, {len(candidates)} candidates, "
        f"probabilities={np.round(probabilities, 3).tolist()}, candidate_ids={list(ids)})"
    )
    expected = _tfrs_logq_loss(queries, candidates, probabilities, np.array(ids))
    got = student_run(
        student, drivers.call_logq_loss, queries, candidates, probabilities, list(ids), call=call,
        name="logq_in_batch_loss", hint=GRAPH_HINT + hint,
    )  # fmt: skip
    if isinstance(got, float) and math.isnan(got):
        hint = NAN_HINT + OVERFLOW_HINT + hint
    elif isinstance(got, float) and math.isinf(got):
        hint = Hint("Your loss is not a finite number.") + OVERFLOW_HINT + hint
    expect_same(got, expected, rtol=1e-4, atol=1e-3, call=call, hint=hint)


def _batch_with_repeats(seed, ids, dim, scale=1.0):
    """Embeddings for a batch whose ids may repeat: equal ids get equal item vectors, as in training."""
    rng = np.random.default_rng(seed)
    distinct = sorted(set(ids))
    vectors = {item: rng.normal(size=dim) * scale for item in distinct}
    share = {item: p for item, p in zip(distinct, rng.uniform(0.01, 0.3, len(distinct)), strict=True)}
    queries = (rng.normal(size=(len(ids), dim)) * scale).astype(np.float32)
    candidates = np.array([vectors[item] for item in ids], dtype=np.float32)
    probabilities = np.array([share[item] for item in ids], dtype=np.float32)
    return queries, candidates, probabilities


@graded("logq_in_batch_loss", points=1)
def test_logq_loss_equals_tfrs_on_distinct_items(student, reference):
    ids = ["a", "b", "c", "d", "e"]
    _check_logq(student, *_batch_with_repeats(0, ids, 3), ids, hint=LOGQ_HINT)


@graded("logq_in_batch_loss", points=1)
def test_logq_loss_leaves_out_accidental_hits(student, reference):
    ids = ["a", "b", "a", "c", "b", "a"]
    _check_logq(student, *_batch_with_repeats(1, ids, 3), ids, hint=HITS_HINT + LOGQ_HINT)


@graded("logq_in_batch_loss", points=1, hidden=True)
def test_logq_loss_on_a_larger_batch(student, reference):
    ids = [f"item {i}" for i in np.random.default_rng(2).integers(0, 20, 48)]
    _check_logq(student, *_batch_with_repeats(3, ids, 8), ids, hint=HITS_HINT + LOGQ_HINT)


# Visible, as for in_batch_softmax_loss: a softmax by hand fails only on scores this large.
@graded("logq_in_batch_loss", points=1)
def test_logq_loss_is_stable_for_large_scores(student, reference):
    ids = [f"item {i}" for i in np.random.default_rng(4).integers(0, 10, 16)]
    _check_logq(
        student, *_batch_with_repeats(5, ids, 4, scale=12.0), ids,
        hint=Hint("Scores in the hundreds: compute the softmax from the scores as logits, never exp() them yourself.")
        + LOGQ_HINT,
    )  # fmt: skip


# --- TwoTowerModel -----------------------------------------------------------------

MODEL_HINT = Hint(
    "One training step: compute the loss of the batch while recording the operations, take the "
    "gradients of that loss with respect to every trainable weight of both towers, let the optimizer "
    "apply them, update the loss tracker and report its value.",
    code="tf.GradientTape around the forward pass and self.loss_fn; tape.gradient over "
    "self.trainable_variables; self.optimizer.apply_gradients; return a dict with the key 'loss'.",
)


def _towers(seed, users, items, dim):
    rng = np.random.default_rng(seed)
    return {
        "user_vocabulary": users,
        "item_vocabulary": items,
        "user_table": rng.normal(scale=0.5, size=(len(users) + 1, dim)).astype(np.float32),
        "item_table": rng.normal(scale=0.5, size=(len(items) + 1, dim)).astype(np.float32),
    }


USERS = ["-71", "13", "5", "802"]
ITEMS = ["a1", "b2", "c3", "d4", "e5"]


def _table(got, name, like):
    """``got[name]`` if it is a numeric array shaped like ``like``, else None.

    Only such a table is compared with the initial one: comparing whatever the student's
    code returned could broadcast it (a (N, 1, 1) array) into an array too large for the grader.
    """
    value = got.get(name) if isinstance(got, dict) else None
    if isinstance(value, np.ndarray) and value.shape == like.shape and np.issubdtype(value.dtype, np.number):
        return value
    return None


def _tables_changed(got, towers) -> dict[str, bool]:
    """For each table ``got`` holds as a comparable array: whether it differs from its initial values in ``towers``."""
    changed = {}
    for name in ("user_table", "item_table"):
        table = _table(got, name, towers[name])
        if table is not None:
            changed[name] = not np.allclose(table, towers[name], atol=1e-7)
    return changed


TRACKER_HINT = Hint(
    "Your loss came back as 0.0. Keras reports what the model's metrics hold (self.loss_tracker, named "
    "'loss') in place of the value your step returns under the same name, so a tracker that was never "
    "given the batch's loss reports 0.",
    code="Update the tracker with the batch's loss in the step, then report the tracker's result.",
)


def _reported_zero(got, expected) -> bool:
    """Whether the student's run reported a loss of 0.0 where the reference reported another."""
    return isinstance(got, dict) and got.get("loss") == 0.0 and expected.get("loss") != 0.0


def _model_hint(got, towers, expected):
    if _reported_zero(got, expected):
        return TRACKER_HINT + MODEL_HINT
    unchanged = [name for name, changed in _tables_changed(got, towers).items() if not changed]
    if unchanged == ["item_table"]:
        return (
            Hint(
                "The item table did not change: the gradients must be taken with respect to the weights "
                "of both towers, not only the user tower.",
                code="The model's own trainable_variables hold both towers.",
            )
            + MODEL_HINT
        )
    if len(unchanged) == 2:
        return Hint("No weight changed: the gradients were computed but never applied.") + MODEL_HINT
    return MODEL_HINT


def _check_training(student, reference, towers, batches, learning_rate):
    call = (
        f"TwoTowerModel(...).fit() on {len(batches)} batch(es) of {len(batches[0]['user_no'])} rows, "
        f"Adagrad({learning_rate}), from fixed initial weights"
    )
    expected = reference.run(drivers.train_two_tower, towers, batches, learning_rate)
    got = student_run(
        student,
        drivers.train_two_tower,
        towers,
        batches,
        learning_rate,
        call=call,
        name="TwoTowerModel",
        hint=GRAPH_HINT + MODEL_HINT,
    )
    expect_same(got, expected, rtol=1e-4, atol=1e-5, call=call, hint=_model_hint(got, towers, expected))


@graded("TwoTowerModel", points=2)
def test_one_train_step_updates_weights_like_the_reference(student, reference):
    towers = _towers(0, USERS, ITEMS, 3)
    batch = {"user_no": ["13", "5", "802", "-71"], "item_no": ["b2", "a1", "e5", "c3"]}
    _check_training(student, reference, towers, [batch], 0.5)


@graded("TwoTowerModel", points=2)
def test_evaluation_reports_the_loss_and_changes_nothing(student, reference):
    towers = _towers(1, USERS, ITEMS, 3)
    batch = {"user_no": ["5", "13", "-71"], "item_no": ["c3", "d4", "a1"]}
    call = "TwoTowerModel(...).evaluate() on one batch of 3 rows"
    evaluation_hint = Hint(
        "Evaluation computes the loss of the batch and reports it; it never changes a weight.",
        code="test_step: no tape and no optimizer; embed, compute self.loss_fn, update the tracker, "
        "return a dict with the key 'loss'.",
    )
    expected = reference.run(drivers.evaluate_two_tower, towers, batch)
    got = student_run(
        student, drivers.evaluate_two_tower, towers, batch, call=call, name="TwoTowerModel",
        hint=GRAPH_HINT + evaluation_hint,
    )  # fmt: skip
    changed = any(_tables_changed(got, towers).values())
    hint = Hint("The weights changed during evaluation.") + evaluation_hint if changed else evaluation_hint
    expect_same(
        got, expected, rtol=1e-4, atol=1e-5,
        call=call, hint=TRACKER_HINT + hint if _reported_zero(got, expected) else hint,
    )  # fmt: skip


@graded("TwoTowerModel", points=2, hidden=True)
def test_several_steps_with_unknown_ids_match_the_reference(student, reference):
    towers = _towers(2, USERS, ITEMS, 4)
    rng = np.random.default_rng(9)
    users, items = USERS + ["unknown-user"], ITEMS + ["unknown-item"]
    batches = [{"user_no": rng.choice(users, 6).tolist(), "item_no": rng.choice(items, 6).tolist()} for _ in range(3)]
    _check_training(student, reference, towers, batches, 0.1)


# --- factorized_top_k_accuracy ------------------------------------------------------

TOP_K_HINT = Hint(
    "A row is a hit at k when fewer than k candidates score strictly higher than its true "
    "item (score = dot product with the row's query); ties count in the row's favour.",
    code="Score every candidate and the true item for each row; count, per row, the candidates "
    "scoring strictly more than the true item; the accuracy at k is the share of rows whose count is below k.",
)


# TFRS's own metric gives the expected values. It takes about half a second per
# submission, and every submission is checked on the same inputs, so a grading
# process computes it once per input.
_tfrs_top_k_results: dict[bytes, dict[int, float]] = {}


def _tfrs_top_k(queries, positives, candidates, ks):
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    key = pickle.dumps((queries, positives, candidates, tuple(ks)))
    if key not in _tfrs_top_k_results:
        batches = tf.data.Dataset.from_tensor_slices(candidates).batch(16)
        metric = tfrs.metrics.FactorizedTopK(candidates=batches, ks=ks)
        metric.update_state(tf.constant(queries), tf.constant(positives))
        _tfrs_top_k_results[key] = {k: float(value) for k, value in zip(ks, metric.result(), strict=True)}
    return dict(_tfrs_top_k_results[key])


def _integer_embeddings(seed, rows, dim):
    # Small integers keep every dot product exact, so ties are real ties and no
    # rounding can decide a comparison differently in numpy and TensorFlow.
    return np.random.default_rng(seed).integers(-2, 3, size=(rows, dim)).astype(np.float32)


def _top_k_hint(got, expected, ks):
    if isinstance(got, dict) and set(got) == set(ks):
        shifted = [expected[k] for k in ks[:-1]]
        if np.allclose([got[k] for k in ks[1:]], shifted, atol=1e-9) and got != expected:
            return (
                Hint(
                    "Your accuracy at each k matches the expected accuracy one rank lower: the true item "
                    "competes with itself. Count only candidates scoring strictly higher.",
                    code="Compare with >, not >=.",
                )
                + TOP_K_HINT
            )
    return TOP_K_HINT


def _check_top_k(student, queries, positives, candidates, ks, hint=None):
    expected = _tfrs_top_k(queries, positives, candidates, ks)
    got = student_call(student, "factorized_top_k_accuracy", queries, positives, candidates, list(ks), hint=TOP_K_HINT)
    expect_same(
        got, expected, rtol=1e-5, atol=1e-6,
        call=describe_call("factorized_top_k_accuracy", queries, positives, candidates, list(ks)),
        hint=hint or _top_k_hint(got, expected, list(ks)),
    )  # fmt: skip


@graded("factorized_top_k_accuracy", points=1)
def test_top_k_equals_tfrs_factorized_top_k(student, reference):
    candidates = _integer_embeddings(0, 40, 4)
    positives = candidates[np.random.default_rng(1).integers(0, 40, size=25)]
    _check_top_k(student, _integer_embeddings(2, 25, 4), positives, candidates, (1, 2, 3, 5, 10))


@graded("factorized_top_k_accuracy", points=1)
def test_top_k_counts_ties_in_the_rows_favour(student, reference):
    # Every candidate scores the same as the true item: no candidate is strictly higher.
    candidates = np.ones((12, 2), dtype=np.float32)
    queries = np.ones((3, 2), dtype=np.float32)
    _check_top_k(student, queries, candidates[:3], candidates, (1, 5, 10))


@graded("factorized_top_k_accuracy", points=1, hidden=True)
def test_top_k_true_items_outside_the_candidates(student, reference):
    candidates = _integer_embeddings(3, 60, 5)
    positives = _integer_embeddings(4, 30, 5)  # like out-of-vocabulary items: not in the index
    _check_top_k(student, _integer_embeddings(5, 30, 5), positives, candidates, (1, 5, 10, 50))


@graded("factorized_top_k_accuracy", points=0.5)
def test_top_k_many_rows(student, reference):
    # More rows than any chunk a student is likely to choose, and not a multiple of one.
    candidates = _integer_embeddings(6, 120, 6)
    rows = 10_007
    positives = candidates[np.random.default_rng(7).integers(0, 120, size=rows)]
    chunks_hint = Hint(
        f"This test differs from the others in its number of rows ({rows:,}). If you score the rows in "
        "chunks, the accuracy is the share of all the rows: the last chunk is smaller than the others, so a "
        "mean of the chunks' accuracies gives its rows more weight than the rest.",
        code="Count each chunk's hits (or keep each row's count of higher-scoring candidates), then divide "
        "the total by the number of rows once.",
    )
    _check_top_k(
        student, _integer_embeddings(8, rows, 6), positives, candidates, (1, 5, 10, 50, 100),
        hint=chunks_hint + TOP_K_HINT,
    )  # fmt: skip


@graded("factorized_top_k_accuracy", points=0.5, hidden=True)
def test_top_k_no_rows(student, reference):
    empty = np.zeros((0, 3), dtype=np.float32)
    got = student_call(
        student, "factorized_top_k_accuracy", empty, empty, _integer_embeddings(9, 5, 3), [1, 5], hint=TOP_K_HINT
    )
    expect_same(
        got, {1: 0.0, 5: 0.0},
        call="factorized_top_k_accuracy(no rows, no rows, 5 candidates, [1, 5])",
        hint="With no rows, return 0.0 for every k instead of dividing by zero (or returning nan).",
    )  # fmt: skip
