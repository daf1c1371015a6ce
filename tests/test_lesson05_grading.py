"""Lesson 5 end to end: validation both ways, realistic mistakes, and the solution notebook's run."""

import csv
import json
import time
from pathlib import Path

import nbformat
import pytest

from tfrs_course.grading.batch import grade_folder
from tfrs_course.lessons import solution_source, student_copy_with_answers, write_notebook

LESSON = "05_hybrid"
EXERCISES = ("ItemTower", "HybridModel")
MAXIMUM = {"ItemTower": 4.0, "HybridModel": 3.0}
FIXTURES = Path(__file__).parent / "fixtures" / "lesson05"
KS = ("1", "5", "10", "50", "100")


def _solved(**wrong: str) -> nbformat.NotebookNode:
    """The student copy with every exercise solved, except those given as fixture names."""
    answers = {exercise: solution_source(LESSON, exercise) for exercise in EXERCISES}
    for exercise, fixture in wrong.items():
        answers[exercise] = (FIXTURES / f"{fixture}.py").read_text()
    return student_copy_with_answers(LESSON, answers)


# Each realistic mistake: its exercise, its fixture, the tests that must catch it,
# and words its feedback must contain (the symptom, in a visible test's hint).
ALL_ITEM_TOWER_TESTS = {
    "test_item_tower_weight_shapes", "test_item_tower_vectors_of_known_items",
    "test_item_tower_unknown_ids_brands_and_groups", "test_item_tower_random_vocabularies",
}  # fmt: skip
ALL_MODEL_TESTS = {
    "test_hybrid_loss_on_one_batch", "test_hybrid_loss_with_unknown_values", "test_hybrid_trains_with_fit",
}  # fmt: skip
MISTAKES = {
    "brand_table_without_oov_row": (
        "ItemTower", "item_tower_brand_without_oov", ALL_ITEM_TOWER_TESTS,
        "one row per vocabulary value plus one for unknown values",
    ),
    "gender_one_hot_with_oov_column": (
        "ItemTower", "item_tower_gender_oov_column",
        ALL_ITEM_TOWER_TESTS - {"test_item_tower_weight_shapes"},
        "no OOV column",
    ),
    "brand_and_group_swapped": (
        "HybridModel", "hybrid_brand_and_group_swapped", ALL_MODEL_TESTS,
        "fed under another feature's name",
    ),
    "metrics_always_is_still_right": ("HybridModel", "hybrid_metrics_always", set(), ""),
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
