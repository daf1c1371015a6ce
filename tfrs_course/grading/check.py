"""``check("exercise")``: students test their own work from inside a lesson notebook."""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, Any

from tfrs_course.grading.submission import StudentCode

if TYPE_CHECKING:
    from tfrs_course.grading.runner import TestResult


def _notebook_namespace() -> dict[str, Any]:
    """The namespace the student's cells run in: the IPython user namespace, else ``__main__``."""
    try:
        from IPython import get_ipython
    except ImportError:
        shell = None
    else:
        shell = get_ipython()
    if shell is not None:
        return shell.user_ns
    return vars(sys.modules["__main__"])


class Checker:
    """Runs one exercise's tests on the functions currently defined in the notebook.

    The lesson's setup cell makes one: ``check = Checker("01_baseline_metrics")``.
    Then ``check("top_k_accuracy")`` runs that exercise's visible tests and prints
    what passed, what failed, and hints. It returns the points earned, which is
    how nbgrader reads partial credit from a test cell.

    Args:
        lesson: the lesson's folder name.
    """

    def __init__(self, lesson: str):
        self.lesson = lesson

    def __call__(self, exercise: str, hidden: bool = False) -> float:
        """Check one exercise.

        Args:
            exercise: the exercise's name, as in the lesson.
            hidden: run the hidden tests instead of the visible ones (done when
                the lesson is graded; their messages are never shown).

        Returns:
            The points earned.
        """
        # Imported here: a lesson's setup cell creates a Checker, and the grading
        # worker runs that cell, so creating one must not load pytest.
        from tfrs_course.grading.runner import run_tests

        namespace = _notebook_namespace()
        student = StudentCode(namespace, origin="this notebook")
        with warnings.catch_warnings():
            # nbgrader scores a test cell that writes to stderr as zero.
            warnings.simplefilter("ignore")
            run = run_tests(
                self.lesson, {"notebook": lambda: student}, exercises=[exercise], visible=not hidden, hidden=hidden
            )
        results = run.results
        if exercise not in run.exercises:
            raise ValueError(
                f"Lesson {self.lesson} has no exercise named {exercise!r}; its exercises are {sorted(run.exercises)}."
            )
        print(format_report(exercise, results, hidden))
        return float(sum(result.score for result in results))


def format_report(exercise: str, results: list[TestResult], hidden: bool) -> str:
    """A short report: one line per test, with the failure message for visible tests."""
    earned = sum(result.score for result in results)
    possible = sum(result.points for result in results)
    kind = "hidden" if hidden else "visible"
    lines = [f"{exercise}: {earned:g} of {possible:g} points on the {kind} tests"]
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        lines.append(f"  {mark}  {result.test} ({result.points:g} pt)")
        if not result.passed and not hidden:
            lines.extend(f"        {line}" for line in result.message.splitlines())
    if results and all(result.passed for result in results) and not hidden:
        lines.append("  All visible tests pass. Hidden tests run when your work is graded.")
    return "\n".join(lines)
