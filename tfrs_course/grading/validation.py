"""Validate a lesson's tests both ways, as an instructor does after adding an exercise.

The reference solutions must earn full marks, the untouched student copy must
earn nothing, and each realistic wrong answer must fail exactly the tests that
should catch it, costing only its own exercise's points. Wrong answers live in a
folder with a ``mistakes.toml`` that describes them: ``autograder/<lesson>/mistakes/``.
"""

from __future__ import annotations

import csv
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tfrs_course.grading.batch import grade_folder, record_path, student_folder
from tfrs_course.grading.results import LessonGrade
from tfrs_course.grading.runner import exercise_points
from tfrs_course.notebooks import solution_source, student_copy_with_answers, write_notebook

SOLVED, UNTOUCHED = "solution", "untouched"


@dataclass(frozen=True)
class Mistake:
    """A realistic wrong answer and what it must cost, or an honest alternative that must cost nothing.

    Attributes:
        name: its name in ``mistakes.toml``.
        exercise: the exercise it answers.
        answer: the file holding the answer cell's code.
        failing_tests: the tests of that exercise that must fail (the others must
            pass); empty for an honest alternative to the reference.
        symptom: words its feedback must contain (from a visible test's hint).
        submission: the notebook it is graded in; several mistakes of different
            exercises may share one.
        visible: whether the visible tests (what ``check()`` runs) must catch it.
            A likely mistake must be caught visibly; a mistake left to the hidden
            tests says why in ``why``.
        why: why a mistake is caught only by hidden tests.
        helper_cell: a file whose code goes into a cell the student added just
            before the answer cell (helpers the answer uses), or None.
    """

    name: str
    exercise: str
    answer: Path
    failing_tests: frozenset[str]
    symptom: str
    submission: str
    visible: bool = False
    why: str = ""
    helper_cell: Path | None = None

    @property
    def is_alternative(self) -> bool:
        return not self.failing_tests


class MistakesFileError(ValueError):
    """A ``mistakes.toml`` entry is incomplete; the message names the file and the entry."""


def load_mistakes(folder: Path) -> dict[str, Mistake]:
    """The mistakes (and honest alternatives) described in ``folder/mistakes.toml``.

    Raises:
        MistakesFileError: an entry lacks a field, a mistake lacks its ``visible``
            flag, a hidden-only mistake does not say why, or an answer file is missing.
    """
    path = folder / "mistakes.toml"
    try:
        described = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise MistakesFileError(f"{path}: not valid TOML: {error}") from error
    mistakes = {}
    for name, entry in described.items():
        where = f"{path}, [{name}]"
        missing = [field for field in ("exercise", "answer", "failing_tests") if field not in entry]
        if missing:
            raise MistakesFileError(f"{where}: missing {', '.join(missing)}")
        if entry["failing_tests"] and "visible" not in entry:
            raise MistakesFileError(f"{where}: say whether the visible tests must catch it (visible = true/false)")
        if entry["failing_tests"] and not entry.get("visible") and not entry.get("why"):
            raise MistakesFileError(f"{where}: a mistake only hidden tests catch must say why (why = ...)")
        for field in ("answer", "helper_cell"):
            if field in entry and not (folder / entry[field]).is_file():
                raise MistakesFileError(f"{where}: no {field} file {folder / entry[field]}")
        mistakes[name] = Mistake(
            name=name,
            exercise=entry["exercise"],
            answer=folder / entry["answer"],
            failing_tests=frozenset(entry["failing_tests"]),
            symptom=entry.get("symptom", ""),
            submission=entry.get("submission", name),
            visible=bool(entry.get("visible", False)),
            why=entry.get("why", ""),
            helper_cell=folder / entry["helper_cell"] if "helper_cell" in entry else None,
        )
    return mistakes


def solved_copy(
    lesson: str, wrong: dict[str, Path] | None = None, helpers: dict[str, Path] | None = None
) -> nbformat.NotebookNode:
    """The student copy with every exercise solved, except ``wrong``: exercise -> answer file.

    ``helpers`` (exercise -> file) become cells the student added just before those answer cells.
    """
    answers = {exercise: solution_source(lesson, exercise) for exercise in exercise_points(lesson)}
    for exercise, path in (wrong or {}).items():
        answers[exercise] = path.read_text()
    notebook = student_copy_with_answers(lesson, answers)
    for exercise, path in (helpers or {}).items():
        position = next(
            index for index, cell in enumerate(notebook.cells)
            if cell.metadata.get("nbgrader", {}).get("grade_id") == exercise
        )  # fmt: skip
        added = nbformat.v4.new_code_cell(path.read_text())
        added.id = f"added-helper-{exercise}"
        notebook.cells.insert(position, added)
    return notebook


def validation_class(lesson: str, mistakes: dict[str, Mistake]) -> dict[str, nbformat.NotebookNode]:
    """Student id -> notebook: the solution, the untouched copy, and one per mistake submission."""
    notebooks = {SOLVED: solved_copy(lesson), UNTOUCHED: student_copy_with_answers(lesson, {})}
    submissions: dict[str, dict[str, Path]] = {}
    helpers: dict[str, dict[str, Path]] = {}
    for mistake in mistakes.values():
        wrong = submissions.setdefault(mistake.submission, {})
        if mistake.exercise in wrong:
            raise ValueError(f"{mistake.submission!r} has two mistakes for {mistake.exercise!r}")
        wrong[mistake.exercise] = mistake.answer
        if mistake.helper_cell is not None:
            helpers.setdefault(mistake.submission, {})[mistake.exercise] = mistake.helper_cell
    for submission, wrong in submissions.items():
        notebooks[submission] = solved_copy(lesson, wrong, helpers.get(submission))
    return notebooks


@dataclass
class GradedClass:
    """What the batch grader wrote for a class: grades.csv rows, each student's grade, feedback and results."""

    lesson: str
    out: Path
    rows: dict[str, dict[str, str]]

    def grade(self, student: str) -> LessonGrade:
        """The student's graded lesson, read from the record the batch grader saved."""
        return LessonGrade.read(record_path(self.out, student, self.lesson))

    def score(self, student: str, exercise: str) -> float:
        return self.grade(student).exercise(exercise).score

    def feedback(self, student: str) -> str:
        return (student_folder(self.out, student) / self.lesson / "feedback.md").read_text()

    def results(self, student: str) -> dict:
        """The student's Gradescope results.json, as the grader wrote it."""
        return json.loads((student_folder(self.out, student) / self.lesson / "results.json").read_text())


def grade_class(lesson: str, notebooks: dict[str, nbformat.NotebookNode], workdir: Path, **options) -> GradedClass:
    """Write the notebooks in nbgrader's layout under ``workdir`` and grade them with the batch grader."""
    submitted, out = workdir / "submitted", workdir / "graded"
    for student, notebook in notebooks.items():
        write_notebook(notebook, submitted / student / lesson / f"{lesson}.ipynb")
    grade_folder(submitted, out, progress=False, **options)
    with open(out / "grades.csv", newline="") as stream:
        rows = {row["student_id"]: row for row in csv.DictReader(stream)}
    return GradedClass(lesson, out, rows)


def failed_tests(graded: GradedClass, student: str, exercise: str) -> tuple[set[str], float]:
    """The tests of one exercise that failed for a student, and the points they were worth."""
    failed = graded.grade(student).exercise(exercise).failed
    return {test.test for test in failed}, sum(test.points for test in failed)


def failed_visible_tests(graded: GradedClass, student: str, exercise: str) -> set[str]:
    """The visible tests (the ones ``check()`` runs) of one exercise that failed for a student."""
    return {test.test for test in graded.grade(student).exercise(exercise).failed if not test.hidden}
