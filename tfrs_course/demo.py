"""``make demo``: run every lesson's solution notebook and print what the course found.

Besides the results table, the demo reads the claims each lesson checked on its
run (:mod:`tfrs_course.claims`) and fails if any of them did not hold: a lesson
must not say what its own run does not show.
"""

from __future__ import annotations

import sys

import pandas as pd

from tfrs_course import claims as course_claims
from tfrs_course import lessons as course_lessons
from tfrs_course import records
from tfrs_course.data import load_babyshop
from tfrs_course.notebooks import execute_notebook, solution_notebook
from tfrs_course.paths import default_data_dir


def main(lessons: list[str] | None = None) -> int:
    """Run the lessons in order; print the data used, the time of each, the claims and the results table.

    Returns:
        0 if every lesson ran and every claim it checked held, 1 otherwise.
    """
    names = lessons or course_lessons.lesson_names()
    data = load_babyshop()  # builds the synthetic twin once, before the kernels need it
    print(data)
    runs_dir = default_data_dir() / "runs"
    failed = []
    timings = []
    false_claims: list[tuple[str, str]] = []
    checked = 0
    for lesson in names:
        print(f"running {lesson} ...", flush=True)
        try:
            run = execute_notebook(solution_notebook(lesson), output_path=runs_dir / f"{lesson}.ipynb")
        except Exception as error:  # noqa: BLE001 - report every lesson, then fail
            failed.append(lesson)
            print(f"  FAILED: {type(error).__name__}: {str(error)[-2000:]}", file=sys.stderr)
            continue
        timings.append((lesson, run.seconds))
        held, total = course_claims.summary(course_claims.claims_in(run.notebook))
        checked += total
        false_claims += [(lesson, statement) for statement in course_claims.failed_claims(run.notebook)]
        print(
            f"  done in {run.seconds:.1f} s, {held} of {total} claims held (executed copy: {runs_dir / lesson}.ipynb)"
        )
    print()
    print("Lesson run times:")
    for lesson, seconds in timings:
        print(f"  {lesson:<32} {seconds:6.1f} s")
    table = records.comparison_table()
    print()
    print(f"Results ({data.source} data): {records.PROTOCOL}.")
    with pd.option_context("display.width", 160, "display.max_colwidth", 40, "display.float_format", "{:.4f}".format):
        print(table.drop(columns="lesson").to_string(na_rep="-") if len(table) else "  (no lesson recorded results)")
    print()
    print(f"Claims: {checked - len(false_claims)} of {checked} held on this run.")
    for lesson, statement in false_claims:
        print(f"  NOT SHOWN in {lesson}: {statement}", file=sys.stderr)
    if failed:
        print(f"\n{len(failed)} lesson(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or false_claims else 0
