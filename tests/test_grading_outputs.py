"""The batch grader's outputs, feedback rules and agreement with nbgrader, on lesson 1 (the format's proving ground).

Validation both ways (solutions, stubs, realistic mistakes) is in
test_lesson_validation.py, for every lesson alike.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfrs_course import layout
from tfrs_course.environment import subprocess_environment
from tfrs_course.grading.validation import (
    SOLVED,
    UNTOUCHED,
    grade_class,
    load_mistakes,
    validation_class,
)
from tfrs_course.nbgrader_course import NbgraderCourse
from tfrs_course.notebooks import write_notebook

LESSON = "01_baseline_metrics"
FIXTURES = layout.lesson(LESSON).fixtures
FULL_MARKS = 8.0
# Its tests share one expensive module fixture: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group(LESSON)


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    notebooks = validation_class(LESSON, load_mistakes(FIXTURES))
    return notebooks, grade_class(LESSON, notebooks, tmp_path_factory.mktemp(LESSON))


def test_feedback_never_shows_hidden_test_messages(graded_class):
    _, graded = graded_class
    feedback = graded.feedback("counts_every_match")
    hidden = [test for test in graded.results("counts_every_match")["tests"] if test["visibility"] != "visible"]
    assert hidden and all(test["output"] in ("passed", "failed") for test in hidden)
    # The hidden random-lists test fails here: its name and result show, its inputs and hint do not.
    assert "failed: hidden test `test_top_k_accuracy_random_lists`" in feedback
    after_hidden = feedback.split("hidden test `test_top_k_accuracy_random_lists`")[1].split("\n- ")[0]
    assert "array(" not in after_hidden and "hint" not in after_hidden


def test_gradescope_results_have_the_required_fields(graded_class):
    _, graded = graded_class
    results = graded.results(SOLVED)
    assert results["score"] == FULL_MARKS
    for test in results["tests"]:
        assert {"name", "score", "max_score", "status", "visibility", "output"} <= set(test)
        assert test["status"] in ("passed", "failed") and test["visibility"] in ("visible", "after_published")


def test_cli_writes_the_three_outputs(graded_class, tmp_path):
    notebooks, _ = graded_class
    submitted = tmp_path / "submitted"
    write_notebook(notebooks[SOLVED], submitted / "ada" / LESSON / f"{LESSON}.ipynb")
    out = tmp_path / "out"
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "tfrs-course"), "grade", str(submitted), "--out", str(out)],
        capture_output=True, text=True, env=subprocess_environment(), check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "grading" in completed.stderr  # the progress bar
    assert (out / "grades.csv").read_text().splitlines()[1].startswith("ada,01_baseline_metrics,2,2,4,8,8")
    assert "Score: **8 / 8**" in (out / "ada" / LESSON / "feedback.md").read_text()
    assert json.loads((out / "ada" / LESSON / "results.json").read_text())["score"] == FULL_MARKS


def test_cli_reports_a_missing_folder_in_one_line(tmp_path):
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "tfrs-course"), "grade", str(tmp_path / "nowhere"), "--out", str(tmp_path)],
        capture_output=True, text=True, env=subprocess_environment(), check=False,
    )  # fmt: skip
    assert completed.returncode == 2
    assert completed.stderr.strip() == f"tfrs-course: error: {tmp_path / 'nowhere'}: no such folder of submissions"


@pytest.mark.slow
def test_nbgrader_agrees_with_the_batch_grader(graded_class, tmp_path):
    """nbgrader autograde on the same submissions, mistakes included, gives the same totals."""
    notebooks, graded = graded_class
    course = NbgraderCourse(tmp_path / "course", LESSON, data_dir=tmp_path / "data")
    students = [SOLVED, UNTOUCHED, "counts_every_match", "ascending_popularity", "off_by_one_in_k"]
    for student in students:
        course.submit(student, notebooks[student])
    course.autograde()
    course.run("generate_feedback", LESSON, "--force")
    assert course.scores() == {student: float(graded.rows[student]["total"]) for student in students}
    assert (course.root / "feedback" / SOLVED / LESSON / f"{LESSON}.html").is_file()
