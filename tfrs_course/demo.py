"""``make demo``: run every lesson's solution notebook and print what the course found."""

from __future__ import annotations

import sys

import pandas as pd

from tfrs_course import lessons as course_lessons
from tfrs_course import records
from tfrs_course.data import load_babyshop
from tfrs_course.notebooks import execute_notebook, solution_notebook
from tfrs_course.paths import default_data_dir


def main(lessons: list[str] | None = None) -> int:
    """Run the lessons in order; print the data used, the time of each, and the results table.

    Returns:
        0 if every lesson ran, 1 otherwise.
    """
    names = lessons or course_lessons.lesson_names()
    data = load_babyshop()  # builds the synthetic twin once, before the kernels need it
    print(data)
    runs_dir = default_data_dir() / "runs"
    failed = []
    timings = []
    for lesson in names:
        print(f"running {lesson} ...", flush=True)
        try:
            run = execute_notebook(solution_notebook(lesson), output_path=runs_dir / f"{lesson}.ipynb")
        except Exception as error:  # noqa: BLE001 - report every lesson, then fail
            failed.append(lesson)
            print(f"  FAILED: {type(error).__name__}: {str(error)[-2000:]}", file=sys.stderr)
            continue
        timings.append((lesson, run.seconds))
        print(f"  done in {run.seconds:.1f} s (executed copy: {runs_dir / lesson}.ipynb)")
    print()
    print("Lesson run times:")
    for lesson, seconds in timings:
        print(f"  {lesson:<32} {seconds:6.1f} s")
    table = records.comparison_table()
    print()
    print(f"Results ({data.source} data): test top-k categorical accuracy of the kept users")
    with pd.option_context("display.width", 120, "display.float_format", "{:.4f}".format):
        print(table.drop(columns="lesson").to_string(na_rep="-") if len(table) else "  (no lesson recorded results)")
    if failed:
        print(f"\n{len(failed)} lesson(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
