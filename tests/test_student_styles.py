"""Answers in styles the lessons' authors did not write, graded by the batch grader.

The standard: a student who passes every visible check is not surprised at grading,
and a correct answer in any reasonable style gets full marks. So each case here is
an answer cell that once broke it, graded in a notebook otherwise solved:

- ``CORRECT``: a correct answer in another style; it must earn its exercise's full
  marks, visible and hidden tests alike.
- ``CAUGHT``: a wrong answer that once passed every visible test and lost points only
  at grading; a visible test (what ``check()`` runs) must now fail too. A case with a
  ``symptom`` was caught, but its feedback did not say why; it must now hold those words.

mistakes.toml (tests/test_lesson_validation.py) holds each lesson's catalogue of likely
mistakes and alternatives; the cases here are the regressions found by trying styles.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pytest

from tfrs_course.grading.runner import exercise_points
from tfrs_course.grading.validation import failed_tests, failed_visible_tests, grade_class, solved_copy

CORRECT, CAUGHT = "correct", "caught"


@dataclass(frozen=True)
class Case:
    """An answer cell for one exercise, and what grading must make of it."""

    lesson: str
    exercise: str
    name: str
    expect: str
    source: str
    symptom: str = ""


CASES = [
    # Sorting the counts alone with pandas' or numpy's default sort (quicksort, not stable)
    # breaks ties in no fixed order; with three tied ids it happened to give the text order,
    # so only the hidden random tables caught it.
    Case(
        "01_baseline_metrics", "select_top_users", "unstable_sort_of_grouped_counts", CAUGHT,
        """
        def select_top_users(train, n):
            # groupby sorts the ids as text; then sort by count, largest first
            counts = train.groupby("user_no").size()
            return counts.sort_values(ascending=False).head(n).index.tolist()
        """,
        symptom="the default (quicksort) may reorder equal counts",
    ),
    Case(
        "01_baseline_metrics", "most_popular_items", "unstable_argsort_of_unique_counts", CAUGHT,
        """
        def most_popular_items(train, k):
            ids, counts = np.unique(train["item_no"].to_numpy(), return_counts=True)
            return ids[np.argsort(-counts)][:k].tolist()
        """,
        symptom="the default quicksort may reorder them",
    ),
    Case(
        "01_baseline_metrics", "most_popular_items", "stable_sort_of_grouped_counts", CORRECT,
        """
        def most_popular_items(train, k):
            counts = train.groupby("item_no").size()
            return list(counts.sort_values(ascending=False, kind="stable").index[:k])
        """,
    ),
    # np.full((rows, k), "") holds one-character strings: NumPy cut every id to its first
    # character, and the visible tests' ids were all one letter long.
    Case(
        "06_evaluation_serving", "exclude_seen", "one_character_result_array", CAUGHT,
        """
        def exclude_seen(retrieved_ids, seen_ids, k):
            out = np.full((len(retrieved_ids), k), "")
            for i, (row, seen) in enumerate(zip(retrieved_ids, seen_ids)):
                kept = [item for item in row if item not in set(seen)][:k]
                out[i, : len(kept)] = kept
            return out
        """,
    ),
    Case(
        "06_evaluation_serving", "exclude_seen", "result_array_of_the_ids_dtype", CORRECT,
        """
        def exclude_seen(retrieved_ids, seen_ids, k):
            out = np.full((len(retrieved_ids), k), "", dtype=retrieved_ids.dtype)
            for i, (row, seen) in enumerate(zip(retrieved_ids, seen_ids)):
                kept = row[~np.isin(row, np.asarray(seen, dtype=str))][:k]
                out[i, : kept.size] = kept
            return out
        """,
    ),
    # np.array copies its input: a blocked answer that starts with np.array(candidates, dtype=float)
    # held one copy of the candidates (8 MB) besides its blocks, and the memory test failed it
    # with a hint about a full score table it never built.
    Case(
        "06_evaluation_serving", "blocked_top_k", "copies_its_inputs_first", CORRECT,
        """
        def blocked_top_k(queries, candidates, k, block):
            queries = np.array(queries, dtype=float)
            candidates = np.array(candidates, dtype=float)
            best_scores = np.empty((len(queries), 0))
            best_rows = np.empty((len(queries), 0), dtype=int)
            for start in range(0, len(candidates), block):
                scores = queries @ candidates[start : start + block].T
                rows = np.arange(start, start + scores.shape[1])[None, :].repeat(len(queries), axis=0)
                all_scores = np.hstack([best_scores, scores])
                all_rows = np.hstack([best_rows, rows])
                order = np.argsort(-all_scores, axis=1, kind="mergesort")[:, :k]
                best_scores = np.take_along_axis(all_scores, order, 1)
                best_rows = np.take_along_axis(all_rows, order, 1)
            return best_rows
        """,
    ),
    Case(
        "06_evaluation_serving", "blocked_top_k", "full_table_in_float32", CAUGHT,
        """
        def blocked_top_k(queries, candidates, k, block):
            scores = np.asarray(queries, dtype=np.float32) @ np.asarray(candidates, dtype=np.float32).T
            top = np.argpartition(-scores, k, axis=1)[:, :k]
            part = np.take_along_axis(scores, top, 1)
            return np.take_along_axis(top, np.argsort(-part, axis=1, kind="stable"), 1)
        """,
    ),
    # Without an out-of-vocabulary index, every known id is looked up right and an unknown
    # one fails (index -1); only hidden tests asked for an unknown id.
    Case(
        "04_content_based", "frozen_tower", "lookup_without_oov_index", CAUGHT,
        """
        def frozen_tower(vectors):
            lookup = tf.keras.layers.StringLookup(vocabulary=list(vectors.index), num_oov_indices=0)
            table = tf.keras.layers.Embedding(
                len(vectors), vectors.shape[1],
                embeddings_initializer=tf.keras.initializers.Constant(vectors.to_numpy(np.float32)), trainable=False)
            return tf.keras.Sequential([lookup, table])
        """,
    ),
    Case(
        "04_content_based", "frozen_tower", "functional_with_a_mask_token", CORRECT,
        """
        def frozen_tower(vectors):
            # "" is the mask token (index 0), unknown ids index 1, known ids 2..: two zero rows.
            width = vectors.shape[1]
            matrix = np.concatenate([np.zeros((2, width), np.float32), vectors.to_numpy(np.float32)])
            ids = tf.keras.Input(shape=(), dtype=tf.string)
            index = tf.keras.layers.StringLookup(vocabulary=list(vectors.index), mask_token="")(ids)
            out = tf.keras.layers.Embedding(len(matrix), width, weights=[matrix], trainable=False)(index)
            return tf.keras.Model(ids, out)
        """,
    ),
    # A softmax computed by hand is right on small scores and overflows on large ones (inf or NaN);
    # only hidden tests had scores that large.
    Case(
        "02_keras_retrieval", "in_batch_softmax_loss", "log_of_softmax", CAUGHT,
        """
        def in_batch_softmax_loss(query_embeddings, candidate_embeddings):
            scores = tf.matmul(query_embeddings, candidate_embeddings, transpose_b=True)
            probabilities = tf.nn.softmax(scores, axis=1)
            return -tf.reduce_sum(tf.math.log(tf.linalg.diag_part(probabilities)))
        """,
    ),
    Case(
        "02_keras_retrieval", "in_batch_softmax_loss", "einsum_and_sparse_labels", CORRECT,
        """
        def in_batch_softmax_loss(query_embeddings, candidate_embeddings):
            scores = tf.einsum("qd,cd->qc", query_embeddings, candidate_embeddings)
            labels = tf.range(tf.shape(scores)[0])
            return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=scores))
        """,
    ),
    Case(
        "02_keras_retrieval", "logq_in_batch_loss", "logq_log_of_softmax", CAUGHT,
        """
        def logq_in_batch_loss(query_embeddings, candidate_embeddings, candidate_probabilities, candidate_ids):
            scores = tf.matmul(query_embeddings, candidate_embeddings, transpose_b=True)
            scores -= tf.math.log(candidate_probabilities)[tf.newaxis, :]
            eye = tf.eye(tf.shape(scores)[0])
            same = tf.cast(tf.equal(candidate_ids[:, None], candidate_ids[None, :]), tf.float32)
            scores = tf.where((same - eye) > 0, -1e9, scores)
            return -tf.reduce_sum(tf.math.log(tf.linalg.diag_part(tf.nn.softmax(scores))))
        """,
    ),
    Case(
        "02_keras_retrieval", "logq_in_batch_loss", "sparse_labels_minus_1e9", CORRECT,
        """
        def logq_in_batch_loss(query_embeddings, candidate_embeddings, candidate_probabilities, candidate_ids):
            scores = tf.einsum("id,jd->ij", query_embeddings, candidate_embeddings)
            scores = scores - tf.math.log(tf.cast(candidate_probabilities, scores.dtype))
            n = tf.shape(scores)[0]
            same = tf.cast(tf.equal(tf.expand_dims(candidate_ids, 1), tf.expand_dims(candidate_ids, 0)), scores.dtype)
            scores = scores - (same - tf.eye(n, dtype=scores.dtype)) * 1e9
            return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.range(n), logits=scores))
        """,
    ),
    # The reference's own idea without its min(k, list length): column k - 1 does not exist for
    # a k longer than the list (IndexError), which only hidden tests asked for.
    Case(
        "01_baseline_metrics", "top_k_accuracy", "column_k_minus_one_unclamped", CAUGHT,
        """
        def top_k_accuracy(true_ids, retrieved_ids, ks):
            if len(true_ids) == 0:
                return {k: 0.0 for k in ks}
            hit_by = np.logical_or.accumulate(retrieved_ids == true_ids[:, None], axis=1)
            return {k: float(hit_by[:, k - 1].mean()) for k in ks}
        """,
    ),
    Case(
        "01_baseline_metrics", "top_k_accuracy", "pandas_cummax", CORRECT,
        """
        def top_k_accuracy(true_ids, retrieved_ids, ks):
            table = pd.DataFrame(retrieved_ids)
            if table.empty:
                return {k: 0.0 for k in ks}
            hits = table.eq(pd.Series(true_ids), axis=0).cummax(axis=1)
            return {k: float(hits.iloc[:, min(k, table.shape[1]) - 1].mean()) for k in ks}
        """,
    ),
    # A running top k started as k placeholder columns (-inf, row -1) returned them when k was
    # larger than the number of candidates; only a hidden test asked for that.
    Case(
        "06_evaluation_serving", "blocked_top_k", "placeholder_columns_kept", CAUGHT,
        """
        def blocked_top_k(queries, candidates, k, block):
            best_scores = np.full((len(queries), k), -np.inf)
            best_rows = np.full((len(queries), k), -1)
            for start in range(0, len(candidates), block):
                scores = queries @ candidates[start : start + block].T
                rows = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
                s = np.concatenate([best_scores, scores], axis=1)
                r = np.concatenate([best_rows, rows], axis=1)
                order = np.argsort(-s, axis=1, kind="stable")[:, :k]
                best_scores, best_rows = np.take_along_axis(s, order, 1), np.take_along_axis(r, order, 1)
            return best_rows
        """,
    ),
    # A step that returns its loss without giving it to the tracker: Keras reports the tracker's
    # 0.0 instead, and the feedback said "expected 5.27, got 0" without saying why.
    Case(
        "02_keras_retrieval", "TwoTowerModel", "step_never_updates_the_tracker", CAUGHT,
        """
        class TwoTowerModel(tf.keras.Model):
            def __init__(self, user_model, item_model, loss_fn):
                super().__init__()
                self.user_model = user_model
                self.item_model = item_model
                self.loss_fn = loss_fn
                self.loss_tracker = tf.keras.metrics.Mean(name="loss")

            @property
            def metrics(self):
                return [self.loss_tracker]

            def call(self, features):
                return self.user_model(features["user_no"]), self.item_model(features["item_no"])

            def train_step(self, features):
                with tf.GradientTape() as tape:
                    user_embeddings, item_embeddings = self(features, training=True)
                    loss = self.loss_fn(user_embeddings, item_embeddings)
                gradients = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
                return {"loss": loss}

            def test_step(self, features):
                user_embeddings, item_embeddings = self(features, training=False)
                return {"loss": self.loss_fn(user_embeddings, item_embeddings)}
        """,
        symptom="Keras reports what the model's metrics hold",
    ),
    # The index's ids are bytes; returned as they are, the boundary refused them with a message
    # about converting tensors, and the hint about decoding never showed.
    Case(
        "03_id_embeddings", "recommend", "ids_left_as_bytes", CAUGHT,
        """
        def recommend(index, user_id, exclude_item_ids, k):
            exclusions = tf.constant([list(exclude_item_ids)], dtype=tf.string)
            _, item_ids = index.query_with_exclusions(tf.constant([user_id]), exclusions, k=k)
            return list(item_ids[0].numpy())
        """,
        symptom="the index returns ids as bytes",
    ),
    Case(
        "03_id_embeddings", "recommend", "numpy_array_of_str", CORRECT,
        """
        def recommend(index, user_id, exclude_item_ids, k):
            exclusions = tf.expand_dims(tf.convert_to_tensor(list(exclude_item_ids), dtype=tf.string), axis=0)
            _, ids = index.query_with_exclusions(queries=tf.constant([user_id]), exclusions=exclusions, k=k)
            return ids.numpy()[0].astype(str)
        """,
    ),
]  # fmt: skip


def _marks(lesson: str) -> list[pytest.MarkDecorator]:
    """A lesson's cases share one graded class; a model lesson's class takes minutes."""
    return [pytest.mark.xdist_group(f"styles-{lesson}"), *([] if lesson.startswith("01_") else [pytest.mark.slow])]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grades each lesson's cases once, one notebook per case, on first use."""
    done = {}

    def graded_lesson(lesson):
        if lesson not in done:
            folder = tmp_path_factory.mktemp(lesson)
            notebooks = {}
            for case in CASES:
                if case.lesson == lesson:
                    answer = folder / f"{case.name}.py"
                    answer.write_text(textwrap.dedent(case.source).lstrip())
                    notebooks[case.name] = solved_copy(lesson, {case.exercise: answer})
            done[lesson] = grade_class(lesson, notebooks, folder / "class")
        return done[lesson]

    return graded_lesson


def test_case_names_are_unique():
    # A lesson's cases are graded in one class, one notebook per name.
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name, marks=_marks(case.lesson)) for case in CASES])
def test_style(graded, case):
    result = graded(case.lesson)
    assert not result.rows[case.name].get("error"), result.rows[case.name]["error"]
    failed, _ = failed_tests(result, case.name, case.exercise)
    maximum = exercise_points(case.lesson)[case.exercise].total
    if case.expect == CORRECT:
        assert result.score(case.name, case.exercise) == maximum, (
            f"{case.name}: a correct {case.exercise} failed {sorted(failed)}:\n{result.feedback(case.name)}"
        )
    else:
        assert failed, f"{case.name}: a wrong {case.exercise} earned full marks"
        assert failed_visible_tests(result, case.name, case.exercise), (
            f"{case.name}: only hidden tests caught it ({sorted(failed)}); check() would have passed it"
        )
        assert case.symptom in result.feedback(case.name)
