"""Grade a whole class: ``tfrs-course grade SUBMITTED --out OUT [--jobs N] [--shard I/N]``.

Reads nbgrader's layout, ``SUBMITTED/<student_id>/<lesson>/<notebook>.ipynb``,
and writes:

- ``OUT/<student_id>/<lesson>/result.json``: the full record of one graded
  submission, written atomically as soon as it is graded; a rerun skips
  submissions whose record matches the notebook and the tests (resume after a
  crash or a kill without regrading or duplicating anything);
- ``OUT/<student_id>/<lesson>/feedback.md``: what passed and failed, with hints
  for visible tests; hidden tests by name and result only;
- ``OUT/<student_id>/<lesson>/results.json``: the same in Gradescope's format;
- ``OUT/grades.csv``: one row per student and lesson, rebuilt from the records.

Student code runs only in sandboxed worker processes
(:mod:`tfrs_course.grading.isolated`); ``--jobs`` grades several submissions at
once; ``--shard i/n`` grades one of n disjoint parts of the class, and
``tfrs-course grade-merge`` joins the parts deterministically.
"""

from __future__ import annotations

import concurrent.futures
import csv
import functools
import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from tfrs_course import __version__, layout
from tfrs_course.files import write_text_atomically
from tfrs_course.grading import template
from tfrs_course.grading.isolated import IsolatedStudentCode, Limits
from tfrs_course.grading.notebook import NotebookError, build_program, read_notebook
from tfrs_course.grading.runner import (
    LessonRun,
    TestResult,
    describe_lesson,
    run_tests,
)
from tfrs_course.grading.sandbox import sandbox_description

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class Submission:
    """One student's notebook for one lesson; ``problem`` says why it cannot be graded at all."""

    student: str
    lesson: str
    notebook: Path
    problem: str = ""


@dataclass
class LessonGrade:
    """One student's graded lesson: every test's result, or why it could not be graded."""

    student: str
    lesson: str
    notebook: str
    exercises: dict[str, dict[str, float]]
    results: list[TestResult] = field(default_factory=list)
    error: str = ""
    notebook_sha256: str = ""
    tests_fingerprint: str = ""
    problems: dict[str, str] = field(default_factory=dict)

    def exercise_score(self, exercise: str) -> float:
        return sum(result.score for result in self.results if result.exercise == exercise)

    @property
    def total(self) -> float:
        return sum(result.score for result in self.results)

    @property
    def maximum(self) -> float:
        return sum(points["visible"] + points["hidden"] for points in self.exercises.values())

    def to_json(self) -> dict:
        record = asdict(self)
        record["results"] = [asdict(result) for result in self.results]
        return record

    @classmethod
    def from_json(cls, record: dict) -> LessonGrade:
        results = [TestResult(**result) for result in record.pop("results")]
        return cls(**record, results=results)


def find_submissions(submitted: Path, lessons: Iterable[str] | None = None) -> tuple[list[Submission], list[str]]:
    """Submissions in nbgrader's layout, and problems with the layout itself.

    A lesson folder should hold one notebook; if it holds several, the one named
    after the lesson is graded. A folder with no usable notebook is still listed,
    so that it gets a row (scored zero, with the reason).
    """
    if not submitted.is_dir():
        raise FileNotFoundError(f"{submitted}: no such folder of submissions")
    known = set(layout.course().lesson_names())
    wanted = set(lessons) if lessons else known
    unknown = wanted - known
    if unknown:
        raise ValueError(f"unknown lesson(s) {sorted(unknown)}; the course has {sorted(known)}")
    found, problems = [], []
    for student_dir in _folders(submitted, problems):
        for lesson_dir in _folders(student_dir, problems):
            if lesson_dir.name not in wanted:
                if lesson_dir.name not in known:
                    problems.append(f"{printable(str(lesson_dir))}: not a lesson of this course; skipped")
                continue
            named = lesson_dir / f"{lesson_dir.name}.ipynb"
            linked = next((path for path in (student_dir, lesson_dir) if path.is_symlink()), None)
            if linked is not None:
                problem = f"{linked}: a symbolic link, not a folder; submit the notebook itself"
                found.append(Submission(student_dir.name, lesson_dir.name, named, problem))
                continue
            try:
                notebooks = sorted(lesson_dir.glob("*.ipynb"))
            except OSError as error:
                found.append(Submission(student_dir.name, lesson_dir.name, named, f"{lesson_dir}: {error}"))
                continue
            chosen = notebooks[0] if len(notebooks) == 1 else named
            found.append(Submission(student_dir.name, lesson_dir.name, chosen))
    return found, problems


def _folders(folder: Path, problems: list[str]) -> list[Path]:
    try:
        return sorted(path for path in folder.iterdir() if path.is_dir())
    except OSError as error:
        problems.append(f"{printable(str(folder))}: cannot be listed ({error.strerror}); skipped")
        return []


def printable(text: str) -> str:
    """Text that can be written as UTF-8 whatever it holds (undecodable file names, lone surrogates)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# Names in OUT that belong to the batch, not to a student.
RESERVED_NAMES = {"grades.csv"}


def student_folder(out: Path, student: str) -> Path:
    """Where a student's outputs go: their id, unless it could clash with the batch's own files.

    An id that is a reserved name, or starts with ``%`` or ``.``, is written as
    ``%`` and its bytes in hex, which no other id can produce.
    """
    if student in RESERVED_NAMES or student.startswith(("%", ".")):
        return out / ("%" + os.fsencode(student).hex())
    return out / student


def select_shard(submissions: list[Submission], shard: tuple[int, int] | None) -> list[Submission]:
    """Part ``i`` of ``n`` (1-based): every n-th submission in a fixed order, so parts never overlap."""
    if shard is None:
        return submissions
    index, count = shard
    if not 1 <= index <= count:
        raise ValueError(f"shard must be i/n with 1 <= i <= n, got {index}/{count}")
    ordered = sorted(submissions, key=lambda s: (s.lesson, s.student))
    return [submission for position, submission in enumerate(ordered) if position % count == index - 1]


def tests_fingerprint(lesson: str) -> str:
    """Changes whenever the lesson's tests, its master notebook or the kit's version change."""
    digest = hashlib.sha256(__version__.encode())
    for path in (layout.lesson(lesson).tests, layout.lesson(lesson).master_notebook):
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _lesson_tests(lesson: str, fingerprint: str) -> LessonRun:
    """A lesson's exercises and points, collected once per grading process and version of its tests."""
    return describe_lesson(lesson)


def _sha256(path: Path) -> str:
    """The notebook's digest; empty for anything but a regular file (a FIFO would block a read)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return ""
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def grade_submission(submission: Submission, limits: Limits) -> LessonGrade:
    """Grade one submission; its code runs in a sandboxed worker. Never raises.

    Whatever goes wrong with this notebook (reading, parsing, grading) becomes
    its zero, with a reason that names the file.
    """
    try:
        return _grade_submission(submission, limits)
    except Exception as error:  # noqa: BLE001 - one notebook must never stop the batch
        return failed_grade(submission, f"grading it failed in the grader ({type(error).__name__}: {error})")


def failed_grade(submission: Submission, reason: str) -> LessonGrade:
    """A zero for a submission the grader itself could not finish; a rerun grades it again."""
    try:
        exercises = _lesson_tests(submission.lesson, tests_fingerprint(submission.lesson)).exercises
    except Exception:  # noqa: BLE001 - the lesson's points are unknown; the error still gets its row
        exercises = {}
    return LessonGrade(
        submission.student, submission.lesson, str(submission.notebook), exercises,
        error=f"{submission.notebook}: {reason}",
    )  # fmt: skip


def _grade_submission(submission: Submission, limits: Limits) -> LessonGrade:
    fingerprint = tests_fingerprint(submission.lesson)
    lesson = _lesson_tests(submission.lesson, fingerprint)
    grade = LessonGrade(
        submission.student,
        submission.lesson,
        str(submission.notebook),
        lesson.exercises,
        notebook_sha256=_sha256(submission.notebook),
        tests_fingerprint=fingerprint,
    )
    master = layout.lesson(submission.lesson).master_notebook
    try:
        if submission.problem:
            raise NotebookError(submission.problem)
        program = build_program(
            read_notebook(submission.notebook), read_notebook(master), master, submission.lesson
        )
    except NotebookError as error:
        message = str(error)
        grade.error = message if str(submission.notebook) in message else f"{submission.notebook}: {message}"
        return grade
    code = IsolatedStudentCode(program, origin=submission.notebook.name, limits=limits)
    try:
        run = run_tests(submission.lesson, {submission.student: lambda: code})
    finally:
        code.close()
    grade.results = run.results
    grade.error = code.load_error
    grade.problems = dict(code.problems)
    return grade


def _is_current(out: Path, submission: Submission) -> bool:
    record_path = student_folder(out, submission.student) / submission.lesson / RESULT_FILE
    if not record_path.is_file():
        return False
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return False
    return record.get("notebook_sha256") == _sha256(submission.notebook) and record.get(
        "tests_fingerprint"
    ) == tests_fingerprint(submission.lesson)


def _job_initializer(grader: int) -> None:
    import tfrs_course  # noqa: F401 - legacy Keras before the reference solutions import TensorFlow
    from tfrs_course.grading.sandbox import die_with

    die_with(grader)  # a grader killed with SIGKILL leaves no job processes behind


def _grade_in_job(submission: Submission, limits: Limits) -> dict:
    return grade_submission(submission, limits).to_json()


def grade_folder(
    submitted: str | Path,
    out: str | Path,
    *,
    lessons: Iterable[str] | None = None,
    jobs: int = 1,
    shard: tuple[int, int] | None = None,
    limits: Limits | None = None,
    progress: bool = True,
) -> str:
    """Grade every submission under ``submitted`` (or one shard of them) into ``out``.

    Args:
        submitted: nbgrader's ``submitted/`` layout.
        out: the output folder.
        lessons: grade only these lessons.
        jobs: how many submissions to grade at once.
        shard: ``(i, n)``: grade only part i of n.
        limits: per-call and per-submission limits (defaults are generous).
        progress: show a progress bar on stderr.

    Returns:
        A short summary for the terminal.
    """
    submitted, out = Path(submitted).resolve(), Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    submissions, problems = find_submissions(submitted, lessons)
    submissions = select_shard(submissions, shard)
    limits = limits or Limits()
    course = layout.course()
    hidden = [str(course.solutions_dir), str(course.autograder_dir), str(submitted), str(out)]
    pending = [submission for submission in submissions if not _is_current(out, submission)]
    skipped = len(submissions) - len(pending)

    limits = replace(limits, sandbox=replace(limits.sandbox, hide=[*limits.sandbox.hide, *hidden]))
    with tqdm(total=len(pending), desc="grading", unit="notebook", disable=not progress) as bar:
        if jobs <= 1:
            for submission in pending:
                _save(out, grade_submission(submission, limits))
                bar.update(1)
        else:
            context = template.job_context(submission.lesson for submission in pending)
            with concurrent.futures.ProcessPoolExecutor(jobs, context, _job_initializer, (os.getpid(),)) as pool:
                futures = {pool.submit(_grade_in_job, submission, limits): submission for submission in pending}
                for future in concurrent.futures.as_completed(futures):
                    try:
                        grade = LessonGrade.from_json(future.result())
                    except Exception as error:  # noqa: BLE001 - a crashed job costs only its notebook
                        reason = f"the grading process stopped ({type(error).__name__}: {error})"
                        grade = failed_grade(futures[future], reason)
                    _save(out, grade)
                    bar.update(1)

    grades = [_load(out, submission) for submission in submissions]
    write_grades_csv([grade for grade in grades if grade is not None], out / "grades.csv")
    lines = [
        f"Graded {len(pending)} notebook(s), reused {skipped} already graded; wrote {out / 'grades.csv'}",
        f"Student code ran in {sandbox_description()}.",
    ]
    failed = [grade for grade in grades if grade is not None and grade.error]
    if failed:
        lines.append(f"{len(failed)} could not be graded (scored 0; see the error column):")
        lines += [f"  {grade.student}/{grade.lesson}: {grade.error.splitlines()[0]}" for grade in failed]
    return printable("\n".join(lines + problems))


def _save(out: Path, grade: LessonGrade) -> None:
    folder = student_folder(out, grade.student) / grade.lesson
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(folder / "feedback.md", printable(feedback_markdown(grade)))
    write_text_atomically(folder / "results.json", json.dumps(gradescope_results(grade), indent=2))
    # The record goes last: its presence means the submission is completely done.
    write_text_atomically(folder / RESULT_FILE, json.dumps(grade.to_json(), indent=1))


def _load(out: Path, submission: Submission) -> LessonGrade | None:
    path = student_folder(out, submission.student) / submission.lesson / RESULT_FILE
    try:
        return LessonGrade.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None  # missing or unreadable: graded again by the next run


def merge_outputs(parts: list[str | Path], out: str | Path) -> str:
    """Join shard outputs into one folder and one grades.csv, the same whatever the order of parts.

    Raises:
        ValueError: two parts graded the same student and lesson differently.
    """
    out = Path(out)
    records: dict[tuple[str, str], LessonGrade] = {}
    for part in sorted(Path(p) for p in parts):
        for path in sorted(part.glob(f"*/*/{RESULT_FILE}")):
            grade = LessonGrade.from_json(json.loads(path.read_text()))
            key = (grade.student, grade.lesson)
            if key in records and records[key].to_json() != grade.to_json():
                raise ValueError(f"{key[0]}/{key[1]} was graded differently in two parts (see {path})")
            records[key] = grade
    out.mkdir(parents=True, exist_ok=True)
    for grade in records.values():
        _save(out, grade)
    write_grades_csv(list(records.values()), out / "grades.csv")
    return f"Merged {len(records)} graded notebook(s) from {len(parts)} part(s) into {out / 'grades.csv'}"


def write_grades_csv(grades: list[LessonGrade], path: Path) -> None:
    """One row per student and lesson: exercise scores, total, maximum, error."""
    exercise_columns: list[str] = []
    for grade in sorted(grades, key=lambda g: g.lesson):
        for exercise in grade.exercises:
            if exercise not in exercise_columns:
                exercise_columns.append(exercise)
    header = ["student_id", "lesson", *exercise_columns, "total", "max_score", "error"]
    rows = []
    for grade in sorted(grades, key=lambda g: (g.student, g.lesson)):
        row = {"student_id": grade.student, "lesson": grade.lesson}
        for exercise in exercise_columns:
            row[exercise] = f"{grade.exercise_score(exercise):g}" if exercise in grade.exercises else ""
        row["total"] = f"{grade.total:g}"
        row["max_score"] = f"{grade.maximum:g}"
        row["error"] = grade.error.splitlines()[0] if grade.error else ""
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(path, printable(table.getvalue()))


def feedback_markdown(grade: LessonGrade) -> str:
    """Feedback for one student and lesson. Hidden tests: name and result only.

    Everything the student controls (their id, error and failure messages, which
    can quote their code) is shown as code, never rendered as Markdown or HTML.
    """
    lines = [
        f"# Feedback: {grade.lesson}",
        "",
        f"Student: {_code_span(grade.student)}  ",
        f"Score: **{grade.total:g} / {grade.maximum:g}**",
        "",
    ]
    if grade.error:
        lines += ["Your notebook could not be graded, so every exercise scores 0:", "", *_fenced(grade.error, ""), ""]
    if grade.problems:
        details = [f"cell {cell}: {problem}" for cell, problem in grade.problems.items()]
        lines += ["While your cells were being defined, this went wrong (it may explain a failure):", ""]
        lines += [*_fenced("\n".join(details), ""), ""]
    for exercise, points in grade.exercises.items():
        results = [result for result in grade.results if result.exercise == exercise]
        possible = points["visible"] + points["hidden"]
        lines += [f"## {exercise}: {grade.exercise_score(exercise):g} / {possible:g}", ""]
        for result in results:
            status = "passed" if result.passed else "failed"
            kind = "hidden test" if result.hidden else "test"
            lines.append(f"- {status}: {kind} {_code_span(result.test)} ({result.score:g} / {result.points:g})")
            if not result.passed and not result.hidden:
                lines += ["", *_fenced(result.message, "  "), ""]
        lines.append("")
    return "\n".join(lines)


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


def gradescope_results(grade: LessonGrade) -> dict:
    """Gradescope's results.json for one student and lesson."""
    tests = []
    for result in grade.results:
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
    document = {"score": grade.total, "tests": tests}
    if grade.error:
        document["output"] = f"Your notebook could not be graded: {grade.error}"
    elif grade.problems:
        details = "; ".join(f"cell {cell}: {problem}" for cell, problem in grade.problems.items())
        document["output"] = f"While your cells were being defined, this went wrong: {details}"
    return document
