"""Grade a whole class: ``tfrs-course grade SUBMITTED --out OUT [--jobs N] [--shard I/N]``.

Reads nbgrader's layout, ``SUBMITTED/<student_id>/<lesson>/<notebook>.ipynb``,
and writes:

- ``OUT/<student_id>/<lesson>/result.json``: the full record of one graded
  submission (a :class:`~tfrs_course.grading.results.LessonGrade`), written
  atomically as soon as it is graded; a rerun skips submissions whose record
  matches the notebook and the tests (resume after a crash or a kill without
  regrading or duplicating anything);
- ``OUT/<student_id>/<lesson>/feedback.md``: what passed and failed, with hints
  for visible tests; hidden tests by name and result only;
- ``OUT/<student_id>/<lesson>/results.json``: the same in Gradescope's format;
- ``OUT/grades.csv``: one row per student and lesson, rebuilt from the records.

Student code runs only in sandboxed worker processes
(:mod:`tfrs_course.grading.isolated`); ``--jobs`` grades several submissions at
once; ``--shard i/n`` grades one of n disjoint parts of the class, and
``tfrs-course grade-merge`` joins the parts deterministically. What a grade
holds and how it renders itself is :mod:`tfrs_course.grading.results`.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from tfrs_course import __version__, layout
from tfrs_course.files import write_text_atomically
from tfrs_course.grading import template
from tfrs_course.grading.isolated import IsolatedStudentCode, Limits
from tfrs_course.grading.program import NotebookError, build_program, read_notebook
from tfrs_course.grading.results import ExercisePoints, LessonGrade, grades_csv, printable
from tfrs_course.grading.runner import describe_lesson, run_tests
from tfrs_course.grading.sandbox import sandbox_description

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class SubmittedFile:
    """A student's notebook file for one lesson; ``problem`` says why it cannot be graded at all."""

    student: str
    lesson: str
    notebook: Path
    problem: str = ""


def find_submissions(submitted: Path, lessons: Iterable[str] | None = None) -> tuple[list[SubmittedFile], list[str]]:
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
                found.append(SubmittedFile(student_dir.name, lesson_dir.name, named, problem))
                continue
            try:
                notebooks = sorted(lesson_dir.glob("*.ipynb"))
            except OSError as error:
                found.append(SubmittedFile(student_dir.name, lesson_dir.name, named, f"{lesson_dir}: {error}"))
                continue
            chosen = notebooks[0] if len(notebooks) == 1 else named
            found.append(SubmittedFile(student_dir.name, lesson_dir.name, chosen))
    return found, problems


def _folders(folder: Path, problems: list[str]) -> list[Path]:
    try:
        return sorted(path for path in folder.iterdir() if path.is_dir())
    except OSError as error:
        problems.append(f"{printable(str(folder))}: cannot be listed ({error.strerror}); skipped")
        return []


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


def record_path(out: Path, student: str, lesson: str) -> Path:
    """Where the record of a student's graded lesson is saved (beside its feedback and results.json)."""
    return student_folder(out, student) / lesson / RESULT_FILE


def select_shard(submissions: list[SubmittedFile], shard: tuple[int, int] | None) -> list[SubmittedFile]:
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
def _lesson_points(lesson: str, fingerprint: str) -> dict[str, ExercisePoints]:
    """A lesson's exercises and points, collected once per grading process and version of its tests."""
    return describe_lesson(lesson).exercises


def _sha256(path: Path) -> str:
    """The notebook's digest; empty for anything but a regular file (a FIFO would block a read)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return ""
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def grade_submission(submission: SubmittedFile, limits: Limits) -> LessonGrade:
    """Grade one submission; its code runs in a sandboxed worker. Never raises.

    Whatever goes wrong with this notebook (reading, parsing, grading) becomes
    its zero, with a reason that names the file.
    """
    try:
        return _grade_submission(submission, limits)
    except Exception as error:  # noqa: BLE001 - one notebook must never stop the batch
        return failed_grade(submission, f"grading it failed in the grader ({type(error).__name__}: {error})")


def failed_grade(submission: SubmittedFile, reason: str) -> LessonGrade:
    """A zero for a submission the grader itself could not finish; a rerun grades it again."""
    try:
        exercises = dict(_lesson_points(submission.lesson, tests_fingerprint(submission.lesson)))
    except Exception:  # noqa: BLE001 - the lesson's points are unknown; the error still gets its row
        exercises = {}
    return LessonGrade(
        submission.student, submission.lesson, str(submission.notebook), exercises,
        error=f"{submission.notebook}: {reason}",
    )  # fmt: skip


def _grade_submission(submission: SubmittedFile, limits: Limits) -> LessonGrade:
    fingerprint = tests_fingerprint(submission.lesson)
    grade = LessonGrade(
        submission.student,
        submission.lesson,
        str(submission.notebook),
        dict(_lesson_points(submission.lesson, fingerprint)),
        notebook_sha256=_sha256(submission.notebook),
        tests_fingerprint=fingerprint,
    )
    master = layout.lesson(submission.lesson).master_notebook
    try:
        if submission.problem:
            raise NotebookError(submission.problem)
        program = build_program(read_notebook(submission.notebook), read_notebook(master), master, submission.lesson)
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


def _is_current(out: Path, submission: SubmittedFile) -> bool:
    """Whether a readable record of this notebook, graded by the current tests, is already saved."""
    path = record_path(out, submission.student, submission.lesson)
    if not path.is_file():
        return False
    try:
        saved = LessonGrade.read(path)
    except (OSError, ValueError):
        return False
    fingerprint = tests_fingerprint(submission.lesson)
    return saved.notebook_sha256 == _sha256(submission.notebook) and saved.tests_fingerprint == fingerprint


def _job_initializer(grader: int) -> None:
    import tfrs_course  # noqa: F401 - legacy Keras before the reference solutions import TensorFlow
    from tfrs_course.grading.sandbox import die_with

    die_with(grader)  # a grader killed with SIGKILL leaves no job processes behind


def _grade_in_job(submission: SubmittedFile, limits: Limits) -> dict:
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
    write_text_atomically(out / "grades.csv", grades_csv(grade for grade in grades if grade is not None))
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
    folder = record_path(out, grade.student, grade.lesson).parent
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(folder / "feedback.md", grade.to_feedback_markdown())
    write_text_atomically(folder / "results.json", json.dumps(grade.to_gradescope(), indent=2))
    # The record goes last: its presence means the submission is completely done.
    write_text_atomically(folder / RESULT_FILE, json.dumps(grade.to_json(), indent=1))


def _load(out: Path, submission: SubmittedFile) -> LessonGrade | None:
    try:
        return LessonGrade.read(record_path(out, submission.student, submission.lesson))
    except (OSError, ValueError):
        return None  # missing or unreadable: graded again by the next run


def merge_outputs(parts: list[str | Path], out: str | Path) -> str:
    """Join shard outputs into one folder and one grades.csv, the same whatever the order of parts.

    Raises:
        ValueError: two parts graded the same student and lesson differently, or a record is unreadable.
    """
    out = Path(out)
    records: dict[tuple[str, str], LessonGrade] = {}
    for part in sorted(Path(p) for p in parts):
        for path in sorted(part.glob(f"*/*/{RESULT_FILE}")):
            grade = LessonGrade.read(path)
            key = (grade.student, grade.lesson)
            if key in records and records[key].to_json() != grade.to_json():
                raise ValueError(f"{key[0]}/{key[1]} was graded differently in two parts (see {path})")
            records[key] = grade
    out.mkdir(parents=True, exist_ok=True)
    for grade in records.values():
        _save(out, grade)
    write_text_atomically(out / "grades.csv", grades_csv(records.values()))
    return f"Merged {len(records)} graded notebook(s) from {len(parts)} part(s) into {out / 'grades.csv'}"
