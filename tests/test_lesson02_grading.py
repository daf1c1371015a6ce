"""Lesson 2 end to end: validation both ways, realistic mistakes, and the solution notebook's run."""

import csv
import json
import time
from pathlib import Path

import nbformat
import pytest

from tfrs_course.grading.batch import grade_folder
from tfrs_course.lessons import solution_source, student_copy_with_answers, write_notebook

LESSON = "02_keras_retrieval"
EXERCISES = ("in_batch_softmax_loss", "TwoTowerModel", "factorized_top_k_accuracy")
MAXIMUM = {"in_batch_softmax_loss": 4.0, "TwoTowerModel": 3.0, "factorized_top_k_accuracy": 5.0}
FIXTURES = Path(__file__).parent / "fixtures" / "lesson02"


def _solved(**wrong: str) -> nbformat.NotebookNode:
    """The student copy with every exercise solved, except those given as fixture names."""
    answers = {exercise: solution_source(LESSON, exercise) for exercise in EXERCISES}
    for exercise, fixture in wrong.items():
        answers[exercise] = (FIXTURES / f"{fixture}.py").read_text()
    return student_copy_with_answers(LESSON, answers)


# Each realistic mistake: its exercise, its fixture, the tests that must catch it,
# and words its feedback must contain (the symptom, in a visible test's hint).
MISTAKES = {
    "loss_averaged": (
        "in_batch_softmax_loss", "loss_averaged",
        {
            "test_loss_equals_tfrs_retrieval_on_a_small_batch", "test_loss_is_a_sum_over_the_batch",
            "test_loss_equals_tfrs_retrieval_on_a_larger_batch", "test_loss_is_stable_for_large_scores",
        },
        "averaged over the rows",
    ),
    "loss_not_from_logits": (
        "in_batch_softmax_loss", "loss_not_from_logits",
        {
            "test_loss_equals_tfrs_retrieval_on_a_small_batch",
            "test_loss_equals_tfrs_retrieval_on_a_larger_batch", "test_loss_is_stable_for_large_scores",
        },
        "from_logits=True",
    ),
    "user_tower_only": (
        "TwoTowerModel", "train_step_user_tower_only",
        {
            "test_one_train_step_updates_weights_like_the_reference",
            "test_several_steps_with_unknown_ids_match_the_reference",
        },
        "item table did not change",
    ),
    "test_step_trains": (
        "TwoTowerModel", "test_step_trains",
        {"test_evaluation_reports_the_loss_and_changes_nothing"},
        "weights changed during evaluation",
    ),
    "top_k_counts_the_true_item": (
        "factorized_top_k_accuracy", "top_k_counts_the_true_item",
        {
            "test_top_k_equals_tfrs_factorized_top_k", "test_top_k_counts_ties_in_the_rows_favour",
            "test_top_k_true_items_outside_the_candidates", "test_top_k_many_rows",
        },
        "strictly higher",
    ),
    "sorting_is_still_right": ("factorized_top_k_accuracy", "top_k_sorts_the_scores", set(), ""),
}  # fmt: skip


# Mistakes in different exercises share a submission: each must still cost only its
# own exercise's points, and grading four notebooks instead of eight keeps this quick.
SUBMISSIONS = {
    "mistakes_a": ("loss_averaged", "user_tower_only", "top_k_counts_the_true_item"),
    "mistakes_b": ("loss_not_from_logits", "test_step_trains", "sorting_is_still_right"),
}


def _submission_of(mistake: str) -> str:
    return next(name for name, mistakes in SUBMISSIONS.items() if mistake in mistakes)


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """A class of submissions graded once by the batch grader."""
    submitted = tmp_path_factory.mktemp("submitted")
    out = tmp_path_factory.mktemp("graded")
    notebooks = {"solution": _solved(), "untouched": student_copy_with_answers(LESSON, {})}
    for name, mistakes in SUBMISSIONS.items():
        notebooks[name] = _solved(**{MISTAKES[mistake][0]: MISTAKES[mistake][1] for mistake in mistakes})
    for student, notebook in notebooks.items():
        write_notebook(notebook, submitted / student / LESSON / f"{LESSON}.ipynb")
    started = time.perf_counter()
    grade_folder(submitted, out, progress=False)
    print(f"graded {len(notebooks)} submissions of {LESSON} in {time.perf_counter() - started:.1f} s")
    with open(out / "grades.csv", newline="") as stream:
        rows = {row["student_id"]: row for row in csv.DictReader(stream)}
    return out, rows


def _feedback(out: Path, student: str) -> str:
    return (out / student / LESSON / "feedback.md").read_text()


def test_solutions_score_full_marks(graded_class):
    _, rows = graded_class
    assert {e: float(rows["solution"][e]) for e in EXERCISES} == MAXIMUM
    assert float(rows["solution"]["total"]) == sum(MAXIMUM.values())


def test_untouched_stubs_score_zero_everywhere(graded_class):
    out, rows = graded_class
    assert {e: float(rows["untouched"][e]) for e in EXERCISES} == dict.fromkeys(EXERCISES, 0.0)
    assert "NotImplementedError" in _feedback(out, "untouched")


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_mistakes_lose_exactly_their_exercises_points(graded_class, mistake):
    out, rows = graded_class
    exercise, _, failing_tests, symptom = MISTAKES[mistake]
    submission = _submission_of(mistake)
    results = json.loads((out / submission / LESSON / "results.json").read_text())
    # Graded test names read "<exercise>: <test>".
    mine = [test for test in results["tests"] if test["name"].split(": ", 1)[0] == exercise]
    failed = {test["name"].split(": ", 1)[1] for test in mine if test["status"] == "failed"}
    assert failed == failing_tests
    lost = sum(test["max_score"] for test in mine if test["status"] == "failed")
    assert float(rows[submission][exercise]) == MAXIMUM[exercise] - lost, rows[submission]
    assert symptom in _feedback(out, submission)


def test_each_submission_loses_only_what_its_mistakes_cost(graded_class):
    _, rows = graded_class
    for submission, mistakes in SUBMISSIONS.items():
        lost = sum(MAXIMUM[e] - float(rows[submission][e]) for e in EXERCISES)
        assert float(rows[submission]["total"]) == sum(MAXIMUM.values()) - lost
        assert {MISTAKES[m][0] for m in mistakes if MISTAKES[m][2]} == {
            e for e in EXERCISES if float(rows[submission][e]) < MAXIMUM[e]
        }
