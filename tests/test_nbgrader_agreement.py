"""nbgrader and the batch grader give the same scores, lesson by lesson.

Lesson 1 is checked on many submissions in test_grading_outputs.py. For the
model lessons, nbgrader executes whole notebooks (training included), so each
gets a solved submission, run on fewer users for one epoch through its editable
parameters cell, and an untouched one.
"""

import csv

import pytest

from tfrs_course.grading.batch import grade_folder
from tfrs_course.grading.runner import exercise_points
from tfrs_course.lessons import lesson_names
from tfrs_course.nbgrader_course import NbgraderCourse, run_nbgrader, with_fast_parameters
from tfrs_course.notebooks import solution_source, student_copy_with_answers, write_notebook

MODEL_LESSONS = [lesson for lesson in lesson_names() if lesson != "01_baseline_metrics"]


def _solved(lesson: str):
    answers = {name: solution_source(lesson, name) for name in exercise_points(lesson)}
    return with_fast_parameters(student_copy_with_answers(lesson, answers))


@pytest.mark.slow
@pytest.mark.parametrize("lesson", MODEL_LESSONS)
def test_nbgrader_and_the_batch_grader_agree(lesson, tmp_path):
    course = NbgraderCourse(tmp_path / "course", lesson, data_dir=tmp_path / "data")
    course.submit("solved", _solved(lesson))
    course.submit("untouched", student_copy_with_answers(lesson, {}))

    grade_folder(course.root / "submitted", tmp_path / "graded", progress=False)
    with open(tmp_path / "graded" / "grades.csv", newline="") as stream:
        ours = {row["student_id"]: float(row["total"]) for row in csv.DictReader(stream)}
    course.autograde()
    theirs = course.scores()

    maximum = sum(points.total for points in exercise_points(lesson).values())
    assert ours == theirs == {"solved": maximum, "untouched": 0.0}


@pytest.mark.slow
def test_nbgrader_validate_fails_an_untouched_lesson_and_does_not_call_it_partial_credit(tmp_path):
    """A check that earns nothing raises, so Validate lists the failure; it never says "partial credit"."""
    lesson = "01_baseline_metrics"
    path = tmp_path / f"{lesson}.ipynb"
    write_notebook(student_copy_with_answers(lesson, {}), path)
    completed = run_nbgrader(["validate", str(path)], tmp_path, data_dir=tmp_path / "data")
    output = completed.stdout + completed.stderr
    assert "VALIDATION FAILED" in output, output[-3000:]
    assert "Partial credit" not in output
    for exercise in exercise_points(lesson):
        assert f"{exercise}: 0 of" in output  # the check's own report, as the reason
