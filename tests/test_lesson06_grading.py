"""Lesson 6 end to end: validation both ways, realistic mistakes, and the solution notebook's run."""

import csv
import json
from pathlib import Path

import nbformat
import pytest

from tfrs_course.grading.batch import grade_folder
from tfrs_course.lessons import solution_source, student_copy_with_answers, write_notebook

LESSON = "06_evaluation_serving"
EXERCISES = ("exclude_seen", "split_by_month", "blocked_top_k", "recall_at_k")
MAXIMUM = {"exclude_seen": 4.0, "split_by_month": 3.0, "blocked_top_k": 5.0, "recall_at_k": 3.0}
FIXTURES = Path(__file__).parent / "fixtures" / "lesson06"
KS = ("1", "5", "10", "50", "100")


def _solved(**wrong: str) -> nbformat.NotebookNode:
    """The student copy with every exercise solved, except those given as fixture names."""
    answers = {exercise: solution_source(LESSON, exercise) for exercise in EXERCISES}
    for exercise, fixture in wrong.items():
        answers[exercise] = (FIXTURES / f"{fixture}.py").read_text()
    return student_copy_with_answers(LESSON, answers)


# Each realistic mistake: which exercise it touches, the fixture, the tests that must
# catch it, and words its feedback must contain (the symptom, in a visible test's hint).
ALL_TOP_K_TESTS = {
    "test_blocked_top_k_small_example", "test_blocked_top_k_ties_go_to_the_lower_row",
    "test_blocked_top_k_k_larger_than_candidates", "test_blocked_top_k_one_block_and_many",
    "test_blocked_top_k_many_ties",
}  # fmt: skip
MISTAKES = {
    "exclude_after_truncating": (
        "exclude_seen", "exclude_after_truncating",
        {
            "test_exclude_seen_small_example", "test_exclude_seen_seen_items_at_the_top",
            "test_exclude_seen_random_lists",
        },
        "cut to k before the seen items were removed",
    ),
    "exclude_everyones_items": (
        "exclude_seen", "exclude_everyones_items",
        {
            "test_exclude_seen_small_example", "test_exclude_seen_short_rows_and_empty_history",
            "test_exclude_seen_random_lists",
        },
        "Each row has its own seen items",
    ),
    "split_leaks_boundary_month": (
        "split_by_month", "split_leaks_boundary_month",
        {"test_split_by_month_small_table", "test_split_by_month_random_tables"},
        "the boundary month belongs to train alone",
    ),
    "top_k_ascending": ("blocked_top_k", "top_k_ascending", ALL_TOP_K_TESTS, "the sort is ascending"),
    "top_k_reversed_sort": (
        "blocked_top_k", "top_k_reversed_sort",
        {"test_blocked_top_k_ties_go_to_the_lower_row", "test_blocked_top_k_many_ties"},
        "Reversing an ascending sort puts the higher row number first",
    ),
    "full_sort_is_still_right": ("blocked_top_k", "top_k_full_sort", set(), ""),
    "recall_by_position": (
        "recall_at_k", "recall_by_position",
        {"test_recall_at_k_ignores_order", "test_recall_at_k_random_and_empty"},
        "Comparing position by position undercounts",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """A class of submissions graded once by the batch CLI's code path."""
    submitted = tmp_path_factory.mktemp("submitted")
    out = tmp_path_factory.mktemp("graded")
    notebooks = {"solution": _solved(), "untouched": student_copy_with_answers(LESSON, {})}
    for name, (exercise, fixture, _, _) in MISTAKES.items():
        notebooks[name] = _solved(**{exercise: fixture})
    for student, notebook in notebooks.items():
        write_notebook(notebook, submitted / student / LESSON / f"{LESSON}.ipynb")
    grade_folder(submitted, out, progress=False)
    with open(out / "grades.csv", newline="") as stream:
        rows = {row["student_id"]: row for row in csv.DictReader(stream)}
    return out, rows


def _feedback(out: Path, student: str) -> str:
    return (out / student / LESSON / "feedback.md").read_text()


def test_solutions_score_full_marks(graded_class):
    _, rows = graded_class
    row = rows["solution"]
    assert {e: float(row[e]) for e in EXERCISES} == MAXIMUM
    assert float(row["total"]) == float(row["max_score"]) == sum(MAXIMUM.values())


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


def test_feedback_never_shows_hidden_test_messages(graded_class):
    out, _ = graded_class
    feedback = _feedback(out, "top_k_reversed_sort")
    results = json.loads((out / "top_k_reversed_sort" / LESSON / "results.json").read_text())
    hidden = [test for test in results["tests"] if test["visibility"] != "visible"]
    assert hidden and all(test["output"] in ("passed", "failed") for test in hidden)
    assert "failed: hidden test `test_blocked_top_k_many_ties`" in feedback
    assert "array(" not in feedback.split("hidden test `test_blocked_top_k_many_ties`")[1].split("\n- ")[0]


@pytest.mark.slow
def test_solution_notebook_runs_and_records_results(tmp_path):
    from tfrs_course.notebooks import execute_notebook, solution_notebook
    from tfrs_course.records import load_results

    run = execute_notebook(solution_notebook(LESSON), output_path=tmp_path / f"{LESSON}.ipynb")
    print(f"{LESSON} ran in {run.seconds:.1f} s")
    approaches = load_results()[LESSON]["approaches"]
    for model in ("Most popular", "ID embeddings", "Content-based", "Hybrid"):
        for suffix in ("seen items excluded", "time split"):
            values = [approaches[f"{model}, {suffix}"]["test"][k] for k in KS]
            assert values == sorted(values) and 0.0 <= values[-1] < 1.0, (model, suffix, values)
    assert any(name.startswith("ID embeddings, L2") for name in approaches)
