"""Grade a whole class: ``tfrs-course grade SUBMITTED --out OUT``.

Reads nbgrader's layout, ``SUBMITTED/<student_id>/<lesson>/<notebook>.ipynb``,
and writes:

- ``OUT/grades.csv``: one row per student and lesson, each exercise's score,
  the total, the maximum, and the reason if the notebook could not be graded;
- ``OUT/<student_id>/<lesson>/feedback.md``: what passed and failed, with hints
  for visible tests; hidden tests by name and result only;
- ``OUT/<student_id>/<lesson>/results.json``: the same in Gradescope's format.

A broken notebook costs only its own row.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from tfrs_course import lessons as course_lessons
from tfrs_course.grading.notebook import NotebookError
from tfrs_course.grading.runner import TestResult, describe_lesson, master_notebook, run_tests
from tfrs_course.grading.submission import StudentCode


@dataclass
class LessonGrade:
    """One student's grade for one lesson."""

    student: str
    lesson: str
    notebook: str
    exercises: dict[str, dict[str, float]]
    results: list[TestResult] = field(default_factory=list)
    error: str = ""

    def exercise_score(self, exercise: str) -> float:
        return sum(result.score for result in self.results if result.exercise == exercise)

    @property
    def total(self) -> float:
        return sum(result.score for result in self.results)

    @property
    def maximum(self) -> float:
        return sum(points["visible"] + points["hidden"] for points in self.exercises.values())


@dataclass(frozen=True)
class Submission:
    student: str
    lesson: str
    notebook: Path


def find_submissions(submitted: Path, lessons: Iterable[str] | None = None) -> tuple[list[Submission], list[str]]:
    """Submissions in nbgrader's layout, and problems with the layout itself.

    A lesson folder should hold one notebook; if it holds several, the one named
    after the lesson is graded, else the submission is reported as a problem.
    """
    if not submitted.is_dir():
        raise FileNotFoundError(f"{submitted}: no such folder of submissions")
    known = set(course_lessons.lesson_names())
    wanted = set(lessons) if lessons else known
    unknown = wanted - known
    if unknown:
        raise ValueError(f"unknown lesson(s) {sorted(unknown)}; the course has {sorted(known)}")
    found, problems = [], []
    for student_dir in sorted(path for path in submitted.iterdir() if path.is_dir()):
        for lesson_dir in sorted(path for path in student_dir.iterdir() if path.is_dir()):
            if lesson_dir.name not in wanted:
                if lesson_dir.name not in known:
                    problems.append(f"{lesson_dir}: not a lesson of this course; skipped")
                continue
            notebooks = sorted(lesson_dir.glob("*.ipynb"))
            named = lesson_dir / f"{lesson_dir.name}.ipynb"
            if len(notebooks) == 1:
                found.append(Submission(student_dir.name, lesson_dir.name, notebooks[0]))
            elif named in notebooks:
                found.append(Submission(student_dir.name, lesson_dir.name, named))
            else:
                problem = "no notebook" if not notebooks else f"{len(notebooks)} notebooks and none named {named.name}"
                found.append(Submission(student_dir.name, lesson_dir.name, named))
                problems.append(f"{lesson_dir}: {problem}")
    return found, problems


def grade_submissions(submissions: list[Submission], progress: bool = True) -> list[LessonGrade]:
    """Grade submissions, one pytest session per lesson; returns one grade per submission."""
    by_lesson: dict[str, list[Submission]] = {}
    for submission in submissions:
        by_lesson.setdefault(submission.lesson, []).append(submission)
    lessons = {lesson: describe_lesson(lesson) for lesson in by_lesson}
    total = sum(len(group) * lessons[lesson].test_count for lesson, group in by_lesson.items())
    grades: list[LessonGrade] = []
    with tqdm(total=total, desc="grading", unit="test", disable=not progress) as bar:
        for lesson, group in by_lesson.items():
            master = master_notebook(lesson)
            lesson_grades: dict[str, LessonGrade] = {}
            builders = {}
            for submission in group:
                grade = LessonGrade(submission.student, lesson, str(submission.notebook), lessons[lesson].exercises)
                lesson_grades[submission.student] = grade
                try:
                    code = StudentCode.from_notebook(submission.notebook, master)
                except NotebookError as error:
                    grade.error = str(error)
                except Exception as error:  # noqa: BLE001 - the setup or a cell failed: this notebook only
                    grade.error = f"{submission.notebook}: could not be loaded: {type(error).__name__}: {error}"
                else:
                    builders[submission.student] = _constant(code)
                if grade.error:
                    bar.update(lessons[lesson].test_count)

            def record(result: TestResult, grades: dict[str, LessonGrade] = lesson_grades) -> None:
                grades[result.student].results.append(result)
                bar.update(1)

            if builders:
                run_tests(lesson, builders, on_result=record)
            grades.extend(lesson_grades.values())
    return grades


def _constant(code: StudentCode):
    return lambda: code


def grade_folder(
    submitted: str | Path, out: str | Path, *, lessons: Iterable[str] | None = None, progress: bool = True
) -> str:
    """Grade every submission under ``submitted`` and write the outputs to ``out``.

    Returns:
        A short summary for the terminal.
    """
    submitted, out = Path(submitted), Path(out)
    submissions, problems = find_submissions(submitted, lessons)
    grades = grade_submissions(submissions, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    write_grades_csv(grades, out / "grades.csv")
    for grade in grades:
        folder = out / grade.student / grade.lesson
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(folder / "feedback.md", feedback_markdown(grade))
        _atomic_write(folder / "results.json", json.dumps(gradescope_results(grade), indent=2))
    lines = [f"Graded {len(grades)} notebook(s) into {out}/grades.csv"]
    failed = [grade for grade in grades if grade.error]
    if failed:
        lines.append(f"{len(failed)} could not be graded (scored 0; see the error column):")
        lines += [f"  {grade.student}/{grade.lesson}: {grade.error.splitlines()[0]}" for grade in failed]
    lines += problems
    return "\n".join(lines)


def write_grades_csv(grades: list[LessonGrade], path: Path) -> None:
    """One row per student and lesson: exercise scores, total, maximum, error."""
    exercise_columns: list[str] = []
    for grade in grades:
        for exercise in grade.exercises:
            if exercise not in exercise_columns:
                exercise_columns.append(exercise)
    header = ["student_id", "lesson", *exercise_columns, "total", "max_score", "error"]
    rows = []
    for grade in sorted(grades, key=lambda g: (g.student, g.lesson)):
        row = {"student_id": grade.student, "lesson": grade.lesson, "error": grade.error.splitlines()[0] if grade.error else ""}
        for exercise in exercise_columns:
            row[exercise] = f"{grade.exercise_score(exercise):g}" if exercise in grade.exercises else ""
        row["total"] = f"{grade.total:g}"
        row["max_score"] = f"{grade.maximum:g}"
        rows.append(row)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".grades.", suffix=".tmp")
    with os.fdopen(handle, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)


def feedback_markdown(grade: LessonGrade) -> str:
    """Feedback for one student and lesson. Hidden tests: name and result only."""
    lines = [
        f"# Feedback: {grade.lesson}",
        "",
        f"Student: `{grade.student}`  ",
        f"Score: **{grade.total:g} / {grade.maximum:g}**",
        "",
    ]
    if grade.error:
        lines += ["Your notebook could not be graded, so every exercise scores 0:", "", f"> {grade.error}", ""]
    for exercise, points in grade.exercises.items():
        results = [result for result in grade.results if result.exercise == exercise]
        possible = points["visible"] + points["hidden"]
        lines += [f"## {exercise}: {grade.exercise_score(exercise):g} / {possible:g}", ""]
        for result in results:
            status = "passed" if result.passed else "failed"
            kind = "hidden test" if result.hidden else "test"
            lines.append(f"- {status}: {kind} `{result.test}` ({result.score:g} / {result.points:g})")
            if not result.passed and not result.hidden:
                lines += ["", "  ```", *[f"  {line}" for line in result.message.splitlines()], "  ```", ""]
        lines.append("")
    return "\n".join(lines)


def gradescope_results(grade: LessonGrade) -> dict:
    """Gradescope's results.json for one student and lesson."""
    tests = []
    for result in grade.results:
        tests.append(
            {
                "name": f"{result.exercise}: {result.test}",
                "score": result.score,
                "max_score": result.points,
                "status": "passed" if result.passed else "failed",
                # Hidden tests show their name and result after grades are published, never their message.
                "visibility": "after_published" if result.hidden else "visible",
                "output": ("passed" if result.passed else "failed")
                if result.hidden
                else (result.message or "passed"),
            }
        )
    document = {"score": grade.total, "tests": tests}
    if grade.error:
        document["output"] = f"Your notebook could not be graded: {grade.error}"
    return document


def _atomic_write(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(temporary, path)
