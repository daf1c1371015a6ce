"""Lesson 3 end to end: validation both ways, realistic mistakes, and the solution notebook's run."""

import csv
import json
import time
from pathlib import Path

import nbformat
import pytest

from tfrs_course.grading.batch import grade_folder
from tfrs_course.lessons import solution_source, student_copy_with_answers, write_notebook

LESSON = "03_id_embeddings"
EXERCISES = ("make_id_tower", "IdModel", "recommend")
MAXIMUM = {"make_id_tower": 3.0, "IdModel": 2.0, "recommend": 3.0}
FIXTURES = Path(__file__).parent / "fixtures" / "lesson03"


def _solved(**wrong: str) -> nbformat.NotebookNode:
    """The student copy with every exercise solved, except those given as fixture names."""
    answers = {exercise: solution_source(LESSON, exercise) for exercise in EXERCISES}
    for exercise, fixture in wrong.items():
        answers[exercise] = (FIXTURES / f"{fixture}.py").read_text()
    return student_copy_with_answers(LESSON, answers)


# Each realistic mistake: its exercise, its fixture, the tests that must catch it,
# and words its feedback must contain (the symptom, in a visible test's hint).
MISTAKES = {
    "tower_one_row_short": (
        "make_id_tower", "tower_one_row_short",
        {
            "test_tower_table_has_a_row_for_unknown_ids",
            "test_tower_gives_known_ids_their_own_vector_and_unknown_ids_one_shared",
            "test_tower_with_many_repeated_ids",
        },
        "one row short",
    ),
    "items_as_queries": (
        "IdModel", "compute_loss_items_as_queries",
        {"test_compute_loss_equals_the_reference", "test_training_steps_match_the_reference"},
        "pass the user embeddings first",
    ),
    "recommend_without_exclusions": (
        "recommend", "recommend_without_exclusions",
        {
            "test_recommend_leaves_out_the_users_items",
            "test_recommend_for_an_unknown_user_with_many_exclusions",
        },
        "exclusions were not applied",
    ),
    "recommend_filters_after": (
        "recommend", "recommend_filters_after",
        {
            "test_recommend_leaves_out_the_users_items",
            "test_recommend_for_an_unknown_user_with_many_exclusions",
        },
        "fewer than k",
    ),
}  # fmt: skip


# Mistakes in different exercises share a submission: each must still cost only its
# own exercise's points, and grading four notebooks instead of eight keeps this quick.
SUBMISSIONS = {
    "mistakes_a": ("tower_one_row_short", "items_as_queries", "recommend_without_exclusions"),
    "mistakes_b": ("recommend_filters_after",),
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
