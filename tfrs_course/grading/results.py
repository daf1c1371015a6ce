"""One graded submission, and every way it is shown.

A :class:`LessonGrade` is what the batch grader finds for one student's notebook
for one lesson: what each exercise is worth (visible and hidden points), every
test's result and message, and why the notebook could not be graded, if it could
not. It is saved as ``result.json`` and read back with :meth:`LessonGrade.read`,
and it renders itself as a row of ``grades.csv`` (:meth:`LessonGrade.to_csv_row`,
:func:`grades_csv` for the whole table), as the student's feedback in Markdown
(:meth:`LessonGrade.to_feedback_markdown`) and as Gradescope's ``results.json``
(:meth:`LessonGrade.to_gradescope`). Scores and maxima are computed here only.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath

from tfrs_course.grading.program import cell_name


@dataclass(frozen=True)
class TestResult:
    """One test's outcome for one student.

    Attributes:
        student: the submission's id.
        test: the test's name.
        exercise: the exercise it checks.
        points: what it is worth.
        hidden: whether it is a hidden test.
        passed: whether it passed.
        message: why it failed (empty if it passed).
        seconds: how long it took.
    """

    student: str
    test: str
    exercise: str
    points: float
    hidden: bool
    passed: bool
    message: str
    seconds: float

    @property
    def score(self) -> float:
        return self.points if self.passed else 0.0


@dataclass(frozen=True)
class ExercisePoints:
    """What one exercise is worth: the points of its visible tests and of its hidden tests."""

    visible: float = 0.0
    hidden: float = 0.0

    @property
    def total(self) -> float:
        return self.visible + self.hidden

    def adding(self, points: float, *, hidden: bool) -> ExercisePoints:
        """These points and one more test's."""
        if hidden:
            return ExercisePoints(self.visible, self.hidden + points)
        return ExercisePoints(self.visible + points, self.hidden)

    def to_json(self) -> dict[str, float]:
        return {"visible": self.visible, "hidden": self.hidden}

    @classmethod
    def from_json(cls, points: Mapping[str, float]) -> ExercisePoints:
        """From ``{"visible": ..., "hidden": ...}``, as records store it."""
        return cls(visible=float(points["visible"]), hidden=float(points["hidden"]))


@dataclass(frozen=True)
class ExerciseResult:
    """One exercise of a graded submission: what it is worth, and how each of its tests went."""

    name: str
    points: ExercisePoints
    tests: tuple[TestResult, ...]

    @property
    def score(self) -> float:
        return sum(test.score for test in self.tests)

    @property
    def maximum(self) -> float:
        return self.points.total

    @property
    def failed(self) -> tuple[TestResult, ...]:
        return tuple(test for test in self.tests if not test.passed)


@dataclass
class LessonGrade:
    """One student's graded lesson: every test's result, or why it could not be graded.

    Attributes:
        student: the student's id (their folder's name).
        lesson: the lesson's folder name.
        notebook: the graded notebook's path.
        exercises: each exercise of the lesson (in the lesson's order) with its points.
        results: every test's result, in the order the tests ran.
        error: why the notebook could not be graded (empty if it was).
        notebook_sha256: the notebook's digest (empty if it could not be read).
        tests_fingerprint: which version of the lesson's tests graded it.
        problems: answer cell -> what went wrong while it was defined (the tests still ran).
    """

    student: str
    lesson: str
    notebook: str
    exercises: dict[str, ExercisePoints]
    results: list[TestResult] = field(default_factory=list)
    error: str = ""
    notebook_sha256: str = ""
    tests_fingerprint: str = ""
    problems: dict[str, str] = field(default_factory=dict)

    # --- scores: the one place they are computed ---------------------------------------

    def exercise(self, name: str) -> ExerciseResult:
        """One exercise's points and test results.

        Raises:
            KeyError: the lesson has no such exercise (the message lists those it has).
        """
        if name not in self.exercises:
            raise KeyError(f"{self.lesson} has no exercise {name!r}; its exercises are {list(self.exercises)}")
        tests = tuple(result for result in self.results if result.exercise == name)
        return ExerciseResult(name, self.exercises[name], tests)

    @property
    def exercise_results(self) -> list[ExerciseResult]:
        """Every exercise of the lesson, in the lesson's order."""
        return [self.exercise(name) for name in self.exercises]

    @property
    def total(self) -> float:
        return sum(result.score for result in self.results)

    @property
    def maximum(self) -> float:
        return sum(points.total for points in self.exercises.values())

    # --- the saved record ----------------------------------------------------------------

    def to_json(self) -> dict:
        """The record saved as ``result.json``: plain JSON types, in a fixed field order."""
        return {
            "student": self.student,
            "lesson": self.lesson,
            "notebook": self.notebook,
            "exercises": {name: points.to_json() for name, points in self.exercises.items()},
            "results": [asdict(result) for result in self.results],
            "error": self.error,
            "notebook_sha256": self.notebook_sha256,
            "tests_fingerprint": self.tests_fingerprint,
            "problems": dict(self.problems),
        }

    @classmethod
    def from_json(cls, record: Mapping) -> LessonGrade:
        """The grade a :meth:`to_json` record describes.

        Raises:
            KeyError, TypeError, ValueError: the record lacks a field or has one of the wrong kind.
        """
        record = dict(record)
        exercises = {name: ExercisePoints.from_json(points) for name, points in record.pop("exercises").items()}
        results = [TestResult(**result) for result in record.pop("results")]
        return cls(**record, exercises=exercises, results=results)

    @classmethod
    def read(cls, path: str | Path) -> LessonGrade:
        """The grade saved at ``path`` (a ``result.json``).

        Raises:
            OSError: the file cannot be read.
            ValueError: it is not a grading record; the message names the file.
        """
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        try:
            return cls.from_json(json.loads(text))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ValueError(f"{path}: not a grading record ({type(error).__name__}: {error})") from error

    # --- what it shows ---------------------------------------------------------------------

    def to_csv_row(self, exercise_columns: Sequence[str]) -> dict[str, str]:
        """This grade's row of ``grades.csv``; an exercise column of another lesson stays empty."""
        row = {"student_id": self.student, "lesson": self.lesson}
        for name in exercise_columns:
            row[name] = f"{self.exercise(name).score:g}" if name in self.exercises else ""
        row["total"] = f"{self.total:g}"
        row["max_score"] = f"{self.maximum:g}"
        row["error"] = self.error.splitlines()[0] if self.error else ""
        return row

    def to_feedback_markdown(self) -> str:
        """Feedback for the student. Hidden tests: name and result only.

        Everything the student controls (their id, error and failure messages, which
        can quote their code) is shown as code, never rendered as Markdown or HTML.
        """
        lines = [
            f"# Feedback: {self.lesson}",
            "",
            f"Student: {_code_span(self.student)}  ",
            f"Score: **{self.total:g} / {self.maximum:g}**",
            "",
        ]
        if self.error:
            lines += [
                "Your notebook could not be graded, so every exercise scores 0:",
                "",
                *_fenced(self._student_error(), ""),
                "",
            ]
        if self.problems:
            lines += [
                "While your cells were being defined, this went wrong (it may explain a failure):",
                "",
            ]
            lines += [*_fenced("\n".join(self._problem_lines()), ""), ""]
        for exercise in self.exercise_results:
            lines += [f"## {exercise.name}: {exercise.score:g} / {exercise.maximum:g}", ""]
            for result in exercise.tests:
                status = "passed" if result.passed else "failed"
                kind = "hidden test" if result.hidden else "test"
                lines.append(f"- {status}: {kind} {_code_span(result.test)} ({result.score:g} / {result.points:g})")
                if not result.passed and not result.hidden:
                    lines += ["", *_fenced(result.message, "  "), ""]
            lines.append("")
        return printable("\n".join(lines))

    def to_gradescope(self) -> dict:
        """Gradescope's ``results.json`` (https://gradescope-autograders.readthedocs.io/en/latest/specs/)."""
        tests = []
        for result in self.results:
            status = "passed" if result.passed else "failed"
            tests.append(
                {
                    "name": f"{result.exercise}: {result.test}",
                    "score": result.score,
                    "max_score": result.points,
                    "status": status,
                    # Hidden tests show their name and result after grades are published, never their message.
                    "visibility": "after_published" if result.hidden else "visible",
                    "output": status if result.hidden else (result.message or status),
                }
            )
        document = {"score": self.total, "tests": tests}
        if self.error:
            document["output"] = f"Your notebook could not be graded: {self._student_error()}"
        elif self.problems:
            document["output"] = (
                f"While your cells were being defined, this went wrong: {'; '.join(self._problem_lines())}"
            )
        return document

    def _student_error(self) -> str:
        """The error as the student sees it: their notebook by its file name, not the instructor's folders."""
        if not self.notebook:
            return self.error
        return self.error.replace(self.notebook, PurePath(self.notebook).name)

    def _problem_lines(self) -> list[str]:
        return [f"{cell_name(cell)}: {problem}" for cell, problem in self.problems.items()]


def grades_csv(grades: Iterable[LessonGrade]) -> str:
    """``grades.csv``: one row per student and lesson (exercise scores, total, maximum, error).

    The exercise columns are every lesson's exercises, lesson by lesson, in each lesson's order.
    A cell that a spreadsheet would run as a formula (a student id ``=1+1``) starts with ``'``.
    """
    grades = list(grades)
    exercise_columns: list[str] = []
    for grade in sorted(grades, key=lambda g: g.lesson):
        exercise_columns += [name for name in grade.exercises if name not in exercise_columns]
    table = io.StringIO()
    writer = csv.DictWriter(
        table, fieldnames=["student_id", "lesson", *exercise_columns, "total", "max_score", "error"]
    )
    writer.writeheader()
    for grade in sorted(grades, key=lambda g: (g.student, g.lesson)):
        row = grade.to_csv_row(exercise_columns)
        writer.writerow({name: printable(_inert(value)) for name, value in row.items()})
    return table.getvalue()


def _inert(cell: str) -> str:
    """A cell a spreadsheet shows as text: one starting with ``= + - @`` (or a tab or CR) would be a formula.

    A student id or an error message is student-controlled; a leading ``'`` keeps it
    inert (OWASP's advice for CSV injection). Scores are numbers and never negative.
    """
    return "'" + cell if cell.startswith(("=", "+", "-", "@", "\t", "\r")) else cell


# Control characters (C0 but newline and tab, DEL, C1): a terminal would obey them, e.g. a
# file name that erases the summary's lines or sets the clipboard (ANSI and OSC sequences).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text safe to print and to write as UTF-8, whatever it holds.

    Undecodable file names and lone surrogates become backslash escapes, and so does
    every control character but newline and tab (a student names their notebook, and
    error messages quote their code).
    """
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROLS.sub(lambda match: repr(match.group())[1:-1], text)


def _one_line(text: str) -> str:
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall("`+", text)), default=0)


def _code_span(text: str) -> str:
    """``text`` as an inline code span that nothing inside it can close."""
    text = _one_line(text)
    fence = "`" * (_longest_backtick_run(text) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def _fenced(text: str, indent: str) -> list[str]:
    """``text`` as a fenced code block (indented for a list item) that nothing inside it can close."""
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    body = [indent + "".join(char if char.isprintable() or char == "\t" else " " for char in line)
            for line in text.splitlines()]  # fmt: skip
    return [indent + fence, *body, indent + fence]
