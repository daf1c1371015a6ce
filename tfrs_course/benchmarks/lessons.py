"""How long each solution notebook takes, top to bottom, on the default twin.

Run ``python -m tfrs_course.benchmarks lessons``. Lessons run in order in a
scratch data folder (lesson 5 reads the records of lessons 1-4), each in a fresh
kernel; the figure includes the kernel's start and TensorFlow's import.
"""

from __future__ import annotations

import os
import tempfile

from tfrs_course.lessons import lesson_names
from tfrs_course.notebooks import execute_notebook, solution_notebook
from tfrs_course.paths import DATA_DIR_VARIABLE

GOAL_SECONDS_PER_LESSON = 60
GOAL_SECONDS_COURSE = 300


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tfrs-course-bench-lessons-") as scratch:
        os.environ[DATA_DIR_VARIABLE] = scratch  # the kernels inherit it
        # Build the twin first, so the first lesson is not charged for it.
        from tfrs_course.data import load_babyshop

        load_babyshop(source="synthetic")
        timings = {lesson: execute_notebook(solution_notebook(lesson)).seconds for lesson in lesson_names()}
    print("Solution notebooks on the default twin (seconds, kernel start included):")
    for lesson, seconds in timings.items():
        flag = "" if seconds <= GOAL_SECONDS_PER_LESSON else f"  over the {GOAL_SECONDS_PER_LESSON} s goal"
        print(f"  {lesson:<28} {seconds:6.1f}{flag}")
    core = sum(seconds for lesson, seconds in timings.items() if lesson[:2] in {"01", "02", "03", "04", "05"})
    print(f"  {'lessons 1-5':<28} {core:6.1f}  (goal: {GOAL_SECONDS_COURSE} s)")
    print(f"  {'all lessons':<28} {sum(timings.values()):6.1f}")
