"""Lesson 4 end to end: validation both ways, realistic mistakes, and the solution notebook's run."""

import csv
import json
import time
from pathlib import Path

import nbformat
import pytest

from tfrs_course.grading.batch import grade_folder
from tfrs_course.lessons import solution_source, student_copy_with_answers, write_notebook

LESSON = "04_content_based"
EXERCISES = ("content_vectors", "user_vectors", "frozen_tower", "top_k_through_index")
MAXIMUM = {"content_vectors": 4.0, "user_vectors": 3.0, "frozen_tower": 4.0, "top_k_through_index": 3.0}
FIXTURES = Path(__file__).parent / "fixtures" / "lesson04"
KS = ("1", "5", "10", "50", "100")


def _solved(**wrong: str) -> nbformat.NotebookNode:
    """The student copy with every exercise solved, except those given as fixture names."""
    answers = {exercise: solution_source(LESSON, exercise) for exercise in EXERCISES}
    for exercise, fixture in wrong.items():
        answers[exercise] = (FIXTURES / f"{fixture}.py").read_text()
    return student_copy_with_answers(LESSON, answers)


# Each realistic mistake: its exercise, its fixture, the tests that must catch it,
# and words its feedback must contain (the symptom, in a visible test's hint).
ALL_FROZEN_TOWER_TESTS = {
    "test_frozen_tower_looks_up_known_ids", "test_frozen_tower_does_not_train",
    "test_frozen_tower_unknown_ids_get_zeros", "test_frozen_tower_wide_random_vectors",
}  # fmt: skip
MISTAKES = {
    "content_writes_into_slice": (
        "content_vectors", "content_writes_into_slice",
        {"test_content_vectors_leaves_its_input_alone"},
        "chained assignment",
    ),
    "user_vectors_summed": (
        "user_vectors", "user_vectors_summed",
        {
            "test_user_vectors_small_example", "test_user_vectors_text_order_of_users",
            "test_user_vectors_random_histories",
        },
        "summed, not averaged",
    ),
    "frozen_tower_trainable": (
        "frozen_tower", "frozen_tower_trainable",
        {"test_frozen_tower_does_not_train"},
        "trainable=False",
    ),
    "frozen_tower_no_zero_row": (
        "frozen_tower", "frozen_tower_no_zero_row", ALL_FROZEN_TOWER_TESTS, "the zero row is missing",
    ),
    "index_default_k": (
        "top_k_through_index", "index_default_k",
        {
            "test_top_k_through_index_small_example", "test_top_k_through_index_ties_and_unknown_users",
            "test_top_k_through_index_random_catalogue",
        },
        "unless you pass k",
    ),
    "index_queried_user_by_user": ("top_k_through_index", "index_one_query_per_user_loop", set(), ""),
}  # fmt: skip


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """A class of submissions graded once by the batch grader."""
    submitted = tmp_path_factory.mktemp("submitted")
    out = tmp_path_factory.mktemp("graded")
    notebooks = {"solution": _solved(), "untouched": student_copy_with_answers(LESSON, {})}
    for name, (exercise, fixture, _, _) in MISTAKES.items():
        notebooks[name] = _solved(**{exercise: fixture})
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
    results = json.loads((out / mistake / LESSON / "results.json").read_text())
    failed = {test["name"].split(": ", 1)[1] for test in results["tests"] if test["status"] == "failed"}
    assert failed == failing_tests
    lost = sum(test["max_score"] for test in results["tests"] if test["status"] == "failed")
    for other in EXERCISES:
        expected = MAXIMUM[other] - (lost if other == exercise else 0.0)
        assert float(rows[mistake][other]) == expected, (other, rows[mistake])
    assert symptom in _feedback(out, mistake)
