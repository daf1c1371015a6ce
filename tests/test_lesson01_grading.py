"""Lesson 1 end to end: validation both ways, realistic mistakes, the batch CLI and nbgrader."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tfrs_course.environment import subprocess_environment
from tfrs_course.grading.batch import grade_folder
from tfrs_course.lessons import solution_source, student_copy_with_answers, write_notebook

LESSON = "01_baseline_metrics"
EXERCISES = ("select_top_users", "most_popular_items", "top_k_accuracy")
MAXIMUM = {"select_top_users": 4.0, "most_popular_items": 3.0, "top_k_accuracy": 5.0}
FIXTURES = Path(__file__).parent / "fixtures" / "lesson01"
REPO = Path(__file__).resolve().parents[1]


def _solved(**wrong: str) -> nbformat.NotebookNode:
    """The student copy with every exercise solved, except those given as fixture names."""
    answers = {exercise: solution_source(LESSON, exercise) for exercise in EXERCISES}
    for exercise, fixture in wrong.items():
        answers[exercise] = (FIXTURES / f"{fixture}.py").read_text()
    return student_copy_with_answers(LESSON, answers)


# Each realistic mistake: which exercise it touches, the fixture, the tests that must
# catch it, and words its feedback must contain (the symptom, in the hint).
MISTAKES = {
    "counts_every_match": (
        "top_k_accuracy", "top_k_counts_every_match",
        {"test_top_k_accuracy_counts_repeated_matches_once", "test_top_k_accuracy_random_lists"},
        "counted twice",
    ),
    "off_by_one_in_k": (
        "top_k_accuracy", "top_k_off_by_one",
        {
            "test_top_k_accuracy_small_example", "test_top_k_accuracy_counts_repeated_matches_once",
            "test_top_k_accuracy_k_longer_than_list", "test_top_k_accuracy_random_lists",
        },
        "off-by-one",
    ),
    "ascending_popularity": (
        "most_popular_items", "popular_ascending",
        {
            "test_most_popular_items_small_table", "test_most_popular_items_ties_and_short_catalogue",
            "test_most_popular_items_random_tables",
        },
        "ascending",
    ),
    "no_tie_break": (
        "select_top_users", "top_users_no_tie_break",
        {"test_select_top_users_breaks_ties_by_id", "test_select_top_users_random_tables"},
        "ties",
    ),
    "python_loop_is_still_right": ("top_k_accuracy", "top_k_python_loop", set(), ""),
    "forged_equality": (
        "top_k_accuracy", "top_k_returns_tensor_like",
        {
            "test_top_k_accuracy_small_example", "test_top_k_accuracy_counts_repeated_matches_once",
            "test_top_k_accuracy_k_longer_than_list", "test_top_k_accuracy_no_rows",
            "test_top_k_accuracy_random_lists",
        },
        "tests cannot use",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """A class of submissions graded once by the batch CLI's code path."""
    submitted = tmp_path_factory.mktemp("submitted")
    out = tmp_path_factory.mktemp("graded")
    notebooks = {
        "solution": student_copy_with_answers(LESSON, {e: solution_source(LESSON, e) for e in EXERCISES}),
        "untouched": student_copy_with_answers(LESSON, {}),
    }
    for name, (exercise, fixture, _, _) in MISTAKES.items():
        notebooks[name] = _solved(**{exercise: fixture})
    for student, notebook in notebooks.items():
        write_notebook(notebook, submitted / student / LESSON / f"{LESSON}.ipynb")
    broken = submitted / "broken_json" / LESSON / f"{LESSON}.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cells": [')
    summary = grade_folder(submitted, out, progress=False)
    with open(out / "grades.csv", newline="") as stream:
        rows = {row["student_id"]: row for row in csv.DictReader(stream)}
    return submitted, out, rows, summary


def _feedback(out: Path, student: str) -> str:
    return (out / student / LESSON / "feedback.md").read_text()


def test_solutions_score_full_marks(graded_class):
    _, _, rows, _ = graded_class
    row = rows["solution"]
    assert {e: float(row[e]) for e in EXERCISES} == MAXIMUM
    assert float(row["total"]) == float(row["max_score"]) == sum(MAXIMUM.values())


def test_untouched_stubs_score_zero_everywhere(graded_class):
    _, out, rows, _ = graded_class
    assert {e: float(rows["untouched"][e]) for e in EXERCISES} == dict.fromkeys(EXERCISES, 0.0)
    assert "NotImplementedError" in _feedback(out, "untouched")


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_mistakes_lose_exactly_their_exercises_points(graded_class, mistake):
    _, out, rows, _ = graded_class
    exercise, _, failing_tests, symptom = MISTAKES[mistake]
    results = json.loads((out / mistake / LESSON / "results.json").read_text())
    failed = {test["name"].split(": ", 1)[1] for test in results["tests"] if test["status"] == "failed"}
    assert failed == failing_tests
    lost = sum(test["max_score"] for test in results["tests"] if test["status"] == "failed")
    for other in EXERCISES:
        expected = MAXIMUM[other] - (lost if other == exercise else 0.0)
        assert float(rows[mistake][other]) == expected, (other, rows[mistake])
    assert symptom in _feedback(out, mistake)


def test_broken_notebook_scores_zero_and_the_batch_goes_on(graded_class):
    _, _, rows, summary = graded_class
    assert float(rows["broken_json"]["total"]) == 0.0
    assert "not valid notebook JSON" in rows["broken_json"]["error"]
    assert "broken_json" in summary
    assert float(rows["solution"]["total"]) == sum(MAXIMUM.values())


def test_feedback_never_shows_hidden_test_messages(graded_class):
    _, out, _, _ = graded_class
    feedback = _feedback(out, "counts_every_match")
    results = json.loads((out / "counts_every_match" / LESSON / "results.json").read_text())
    hidden = [test for test in results["tests"] if test["visibility"] != "visible"]
    assert hidden and all(test["output"] in ("passed", "failed") for test in hidden)
    # The hidden random-lists test fails here; its name shows, its hint and inputs do not.
    assert "failed: hidden test `test_top_k_accuracy_random_lists`" in feedback
    assert "array(" not in feedback.split("hidden test `test_top_k_accuracy_random_lists`")[1].split("\n- ")[0]


def test_gradescope_results_have_the_required_fields(graded_class):
    _, out, _, _ = graded_class
    results = json.loads((out / "solution" / LESSON / "results.json").read_text())
    assert results["score"] == sum(MAXIMUM.values())
    assert {"name", "score", "max_score", "status", "visibility", "output"} <= set(results["tests"][0])


def test_cli_writes_the_three_outputs(tmp_path):
    submitted = tmp_path / "submitted"
    write_notebook(_solved(), submitted / "ada" / LESSON / f"{LESSON}.ipynb")
    out = tmp_path / "out"
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "tfrs-course"), "grade", str(submitted), "--out", str(out)],
        capture_output=True, text=True, env=subprocess_environment(), check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "grading" in completed.stderr  # the progress bar
    assert (out / "grades.csv").read_text().splitlines()[1].startswith("ada,01_baseline_metrics,4,3,5,12,12")
    assert (out / "ada" / LESSON / "feedback.md").is_file()
    assert json.loads((out / "ada" / LESSON / "results.json").read_text())["score"] == 12.0


@pytest.mark.slow
def test_nbgrader_agrees_with_the_batch_grader(graded_class, tmp_path):
    """nbgrader autograde on the same submissions gives the same totals."""
    submitted, _, rows, _ = graded_class
    course = tmp_path / "course"
    shutil.copytree(REPO / "solutions" / LESSON, course / "solutions" / LESSON)
    shutil.copy(REPO / "nbgrader_config.py", course)
    students = ["solution", "untouched", "counts_every_match", "ascending_popularity"]
    for student in students:
        shutil.copytree(submitted / student / LESSON, course / "submitted" / student / LESSON)
    environment = subprocess_environment()

    def nbgrader(*args):
        completed = subprocess.run(
            [sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
            env=environment, check=False,
        )  # fmt: skip
        assert completed.returncode == 0, f"nbgrader {args}:\n{completed.stdout}\n{completed.stderr}"

    nbgrader("generate_assignment", LESSON, "--force")
    nbgrader("autograde", LESSON, "--force")
    nbgrader("generate_feedback", LESSON, "--force")
    nbgrader("export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as stream:
        exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(stream)}
    for student in students:
        assert exported[student] == float(rows[student]["total"]), student
    assert (course / "feedback" / "solution" / LESSON / f"{LESSON}.html").is_file()
