"""nbgrader and the batch grader give the same scores, lesson by lesson.

Lesson 1 is checked on many submissions in test_lesson01_grading.py. For the
model lessons, nbgrader executes whole notebooks (training included), so each
gets a solved submission, run on fewer users for one epoch through its editable
parameters cell, and an untouched one.
"""

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfrs_course.environment import subprocess_environment
from tfrs_course.grading.batch import grade_folder
from tfrs_course.grading.runner import exercise_points
from tfrs_course.lessons import lesson_names
from tfrs_course.notebooks import solution_source, student_copy_with_answers, write_notebook

REPO = Path(__file__).resolve().parents[1]
MODEL_LESSONS = [lesson for lesson in lesson_names() if lesson != "01_baseline_metrics"]
# Smaller runs for nbgrader's full execution; the graded functions do not depend on them.
FAST_PARAMETERS = {"NUM_USERS": 300, "EPOCHS": 1}


def _solved(lesson: str):
    notebook = student_copy_with_answers(lesson, {name: solution_source(lesson, name) for name in exercise_points(lesson)})
    for cell in notebook.cells:
        if "parameters" in cell.metadata.get("tags", []):
            overrides = [f"{name} = {value!r}" for name, value in FAST_PARAMETERS.items() if re.search(rf"^{name} =", cell.source, re.M)]
            cell.source += "\n" + "\n".join(overrides)
    return notebook


@pytest.mark.slow
@pytest.mark.parametrize("lesson", MODEL_LESSONS)
def test_nbgrader_and_the_batch_grader_agree(lesson, tmp_path):
    submitted = tmp_path / "course" / "submitted"
    write_notebook(_solved(lesson), submitted / "solved" / lesson / f"{lesson}.ipynb")
    write_notebook(student_copy_with_answers(lesson, {}), submitted / "untouched" / lesson / f"{lesson}.ipynb")

    grade_folder(submitted, tmp_path / "graded", progress=False)
    with open(tmp_path / "graded" / "grades.csv", newline="") as stream:
        ours = {row["student_id"]: float(row["total"]) for row in csv.DictReader(stream)}

    course = tmp_path / "course"
    shutil.copytree(REPO / "solutions" / lesson, course / "solutions" / lesson)
    shutil.copy(REPO / "nbgrader_config.py", course)
    environment = {**subprocess_environment(), "TFRS_COURSE_DATA_DIR": str(tmp_path / "data")}
    for args in (["generate_assignment", lesson, "--force"], ["autograde", lesson, "--force"], ["export"]):
        completed = subprocess.run(
            [sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
            env=environment, check=False,
        )  # fmt: skip
        assert completed.returncode == 0, f"nbgrader {args}:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    with open(course / "grades.csv", newline="") as stream:
        theirs = {row["student_id"]: float(row["score"]) for row in csv.DictReader(stream)}

    maximum = sum(points["visible"] + points["hidden"] for points in exercise_points(lesson).values())
    assert ours == theirs == {"solved": maximum, "untouched": 0.0}


@pytest.mark.slow
def test_nbgrader_validate_fails_an_untouched_lesson_and_does_not_call_it_partial_credit(tmp_path):
    """A check that earns nothing raises, so Validate lists the failure; it never says "partial credit"."""
    lesson = "01_baseline_metrics"
    path = tmp_path / f"{lesson}.ipynb"
    write_notebook(student_copy_with_answers(lesson, {}), path)
    environment = {**subprocess_environment(), "TFRS_COURSE_DATA_DIR": str(tmp_path / "data")}
    completed = subprocess.run(
        [sys.executable, "-m", "nbgrader", "validate", str(path)], cwd=tmp_path, capture_output=True, text=True,
        env=environment, check=False,
    )  # fmt: skip
    output = completed.stdout + completed.stderr
    assert "VALIDATION FAILED" in output, output[-3000:]
    assert "Partial credit" not in output
    for exercise in exercise_points(lesson):
        assert f"{exercise}: 0 of" in output  # the check's own report, as the reason
