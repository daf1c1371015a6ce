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

import collections
import concurrent.futures
import concurrent.futures.process
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from tfrs_course import __version__, layout
from tfrs_course.files import write_text_atomically
from tfrs_course.grading import template
from tfrs_course.grading.isolated import IsolatedStudentCode, Limits
from tfrs_course.grading.program import MAX_NOTEBOOK_BYTES, NotebookError, build_program, read_notebook
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


EXPECTED_LAYOUT = "SUBMITTED/<student_id>/<lesson>/<lesson>.ipynb"
# What copying, zipping on a Mac or running Jupyter leaves beside a notebook: never a submission.
IGNORED_FOLDERS = {"__MACOSX", ".ipynb_checkpoints"}


def is_handed_in_notebook(path: Path) -> bool:
    """Whether a file name is a notebook a student handed in (any case of ``.ipynb``; no AppleDouble ``._`` file)."""
    return path.name.lower().endswith(".ipynb") and not path.name.startswith("._")


def find_submissions(submitted: Path, lessons: Iterable[str] | None = None) -> tuple[list[SubmittedFile], list[str]]:
    """Submissions in nbgrader's layout, and problems with the layout itself.

    A lesson folder should hold one notebook; if it holds several, the one named
    after the lesson is graded (the others are named in the problems). A folder
    with no usable notebook is still listed, so that it gets a row (scored zero,
    with the reason). Notebooks outside a lesson folder are named in the problems.
    """
    if not submitted.is_dir():
        raise FileNotFoundError(f"{submitted}: no such folder of submissions")
    known = set(layout.course().lesson_names())
    wanted = set(lessons) if lessons else known
    unknown = wanted - known
    if unknown:
        raise ValueError(f"unknown lesson(s) {sorted(unknown)}; the course has {sorted(known)}")
    found, problems = [], []
    for stray in _notebooks(submitted, problems):
        problems.append(
            f"{printable(str(stray))}: a notebook outside any student's folder; skipped (expected {EXPECTED_LAYOUT})"
        )
    problems += _archives(submitted)
    for student_dir in _folders(submitted, problems):
        for stray in _notebooks(student_dir, problems):
            lesson = next((name for name in known if stray.name.lower().startswith(name.lower())), "<lesson>")
            problems.append(
                f"{printable(str(stray))}: not in a lesson folder; skipped (expected "
                f"{printable(str(student_dir / lesson / (lesson + '.ipynb')))}, as in {EXPECTED_LAYOUT})"
            )
        # A notebook that lost its extension in place of its lesson's folder, a zip of it...
        named_after_lessons = _lesson_named_files(student_dir, known)
        for stray, lesson in named_after_lessons:
            problems.append(
                f"{printable(str(stray))}: not a notebook in a lesson folder; skipped (expected "
                f"{printable(str(student_dir / lesson / (lesson + '.ipynb')))}, as in {EXPECTED_LAYOUT})"
            )
        problems += _archives(student_dir, skip={path for path, _ in named_after_lessons})
        for lesson_dir in _folders(student_dir, problems):
            if lesson_dir.name not in wanted:
                if lesson_dir.name not in known:
                    problems.append(
                        f"{printable(str(lesson_dir))}: not a lesson of this course; skipped "
                        f"(expected {EXPECTED_LAYOUT}, <lesson> one of {', '.join(sorted(known))})"
                    )
                continue
            found.append(_lesson_submission(student_dir, lesson_dir, problems))
    return found, problems


def _lesson_submission(student_dir: Path, lesson_dir: Path, problems: list[str]) -> SubmittedFile:
    """The notebook graded for one lesson folder, or why there is none."""
    lesson = lesson_dir.name
    named = lesson_dir / f"{lesson}.ipynb"
    linked = next((path for path in (student_dir, lesson_dir) if path.is_symlink()), None)
    if linked is not None:
        problem = f"{linked}: a symbolic link, not a folder; submit the notebook itself"
        return SubmittedFile(student_dir.name, lesson, named, problem)
    listing: list[str] = []
    notebooks = _notebooks(lesson_dir, listing)
    if listing:
        return SubmittedFile(student_dir.name, lesson, named, listing[0])
    exact = [path for path in notebooks if path.name.lower() == named.name.lower()]
    if len(notebooks) == 1:
        return SubmittedFile(student_dir.name, lesson, notebooks[0])
    if exact:
        others = ", ".join(path.name for path in notebooks if path != exact[0])
        problems.append(f"{printable(str(lesson_dir))}: graded {exact[0].name}; also handed in (not graded): {others}")
        return SubmittedFile(student_dir.name, lesson, exact[0])
    if notebooks:
        names = ", ".join(path.name for path in notebooks)
        problem = (
            f"{lesson_dir}: {len(notebooks)} notebooks and none named {named.name} ({names}); "
            f"keep one, or name the one to grade {named.name}"
        )
        return SubmittedFile(student_dir.name, lesson, named, problem)
    nested = [path for folder in _folders(lesson_dir, listing) for path in _notebooks(folder, listing)]
    if nested:  # an unzipped folder inside the lesson's folder
        names = ", ".join(str(path.relative_to(lesson_dir)) for path in nested)
        problem = f"{lesson_dir}: no notebook here, only in a folder inside it ({names}); expected {named}"
        return SubmittedFile(student_dir.name, lesson, named, problem)
    others = _files(lesson_dir)
    if others:  # a notebook saved as .ipynb.txt or .json, say
        names = ", ".join(path.name for path in others[:10]) + (" ..." if len(others) > 10 else "")
        problem = f"{lesson_dir}: no notebook here, only other files ({names}); expected {named}"
        return SubmittedFile(student_dir.name, lesson, named, problem)
    return SubmittedFile(student_dir.name, lesson, named)  # reading it says there is no such notebook


def _notebooks(folder: Path, problems: list[str]) -> list[Path]:
    """The notebooks a student handed in directly in ``folder``."""
    try:
        return sorted(path for path in folder.iterdir() if is_handed_in_notebook(path) and not path.is_dir())
    except OSError as error:
        problems.append(f"{printable(str(folder))}: cannot be listed ({error.strerror})")
        return []


def _files(folder: Path) -> list[Path]:
    """The files in ``folder`` but notebooks and what a Mac leaves (``._*``, ``.DS_Store``), sorted."""
    try:
        return sorted(
            path for path in folder.iterdir()
            if not path.is_dir() and not is_handed_in_notebook(path) and not path.name.startswith((".DS_Store", "._"))
        )  # fmt: skip
    except OSError:
        return []  # the folder's listing problem is reported where it is graded


def _lesson_named_files(student_dir: Path, lessons: set[str]) -> list[tuple[Path, str]]:
    """Files in a student's folder named after a lesson (any case) that are neither notebooks nor folders."""
    found = []
    for path in _files(student_dir):
        lesson = next((name for name in sorted(lessons) if path.name.lower().startswith(name.lower())), None)
        if lesson is not None:
            found.append((path, lesson))
    return found


ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".7z", ".rar")


def _archives(folder: Path, skip: set[Path] = frozenset()) -> list[str]:
    """A line for each archive in ``folder``: handed in but never extracted, it would be skipped without a word."""
    return [
        f"{printable(str(path))}: an archive; skipped (extract it so that its notebooks are at {EXPECTED_LAYOUT})"
        for path in _files(folder)
        if path.name.lower().endswith(ARCHIVES) and path not in skip
    ]


def _folders(folder: Path, problems: list[str]) -> list[Path]:
    try:
        return sorted(path for path in folder.iterdir() if path.is_dir() and path.name not in IGNORED_FOLDERS)
    except OSError as error:
        problems.append(f"{printable(str(folder))}: cannot be listed ({error.strerror}); skipped")
        return []


# Names in OUT that belong to the batch, not to a student.
RESERVED_NAMES = {"grades.csv"}


# The longest file name most file systems take, in bytes.
MAX_NAME_BYTES = 255


def student_folder(out: Path, student: str) -> Path:
    """Where a student's outputs go: their id, unless it could clash with the batch's own files.

    An id that is a reserved name, or starts with ``%`` or ``.``, is written as
    ``%`` and its bytes in hex, which no other id can produce; if that is longer than
    a file name can be, as ``%~`` and the SHA-256 of its bytes.
    """
    if student in RESERVED_NAMES or student.startswith(("%", ".")):
        encoded = os.fsencode(student)
        name = "%" + encoded.hex()
        return out / (name if len(name) <= MAX_NAME_BYTES else "%~" + hashlib.sha256(encoded).hexdigest())
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


def tests_fingerprint(lesson: str, limits: Limits | None = None) -> str:
    """Changes whenever anything that decides the lesson's verdicts changes.

    That is: the kit's version and Python code (the grader, the boundary, and every
    module the tests, drivers or reference solution import from the kit), the course's
    pytest settings, every file of ``autograder/<lesson>/`` but its wrong answers
    (``mistakes/``, read only by the course's own validation), the drivers of the
    lessons its drivers load, the master notebook, and ``limits`` without the paths
    it hides (moving the class's folders changes no verdict).
    """
    from tfrs_course.grading.drivers import required_lessons

    course = layout.course()
    digest = hashlib.sha256(__version__.encode())
    lesson_dir = layout.lesson(lesson).autograder_dir
    lesson_files = [
        path
        for path in lesson_dir.rglob("*")
        if path.is_file() and not {"mistakes", "__pycache__"} & set(path.relative_to(lesson_dir).parts)
    ]
    paths = [
        *_kit_sources(),
        *(path for path in course.autograder_dir.iterdir() if path.is_file()),
        *lesson_files,
        *(layout.lesson(other).drivers for other in required_lessons(lesson)[1:]),
        layout.lesson(lesson).master_notebook,
    ]
    for path in sorted(set(paths)):
        content = path.read_bytes()
        digest.update(f"{path.name}\0{len(content)}\0".encode())
        digest.update(content)
    if limits is not None:
        digest.update(json.dumps(verdict_limits(limits), sort_keys=True).encode())
    return digest.hexdigest()


def _kit_sources() -> list[Path]:
    """The kit's Python files (not a wheel's copy of the course, which is hashed file by file)."""
    package = Path(__file__).resolve().parents[1]
    return [
        path for path in package.rglob("*.py") if not {"_course", "__pycache__"} & set(path.relative_to(package).parts)
    ]


def verdict_limits(limits: Limits) -> dict:
    """The limits that can change a verdict: every time, size and resource limit, not the hidden paths."""
    sandbox = {name: value for name, value in asdict(limits.sandbox).items() if name not in ("hide", "lesson")}
    return {**{name: value for name, value in asdict(limits).items() if name != "sandbox"}, "sandbox": sandbox}


@functools.cache
def _lesson_points(lesson: str, fingerprint: str) -> dict[str, ExercisePoints]:
    """A lesson's exercises and points, collected once per grading process and version of its tests."""
    return describe_lesson(lesson).exercises


def _sha256(path: Path) -> str:
    """The notebook's digest; empty for anything but a regular file (a FIFO would block a read).

    Also empty for a file larger than a notebook may be (it is refused unread): read at
    once, a file larger than memory stopped the batch.
    """
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_NOTEBOOK_BYTES:
            return ""
        with open(path, "rb") as stream:
            return hashlib.sha256(stream.read(MAX_NOTEBOOK_BYTES + 1)).hexdigest()
    except OSError:
        return ""


def grade_submission(submission: SubmittedFile, limits: Limits) -> LessonGrade:
    """Grade one submission; its code runs in a sandboxed worker. Never raises an Exception.

    Whatever goes wrong with this notebook (reading, parsing, grading) becomes
    its zero, with a reason that names the file. Only Ctrl-C's KeyboardInterrupt
    goes through: it stops the batch, it is no verdict.
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
    grade = LessonGrade(
        submission.student,
        submission.lesson,
        str(submission.notebook),
        dict(_lesson_points(submission.lesson, tests_fingerprint(submission.lesson))),
        notebook_sha256=_sha256(submission.notebook),
        tests_fingerprint=tests_fingerprint(submission.lesson, limits),
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


def _is_current(out: Path, submission: SubmittedFile, fingerprint: str) -> bool:
    """Whether a readable record of this notebook, graded with these tests, code and limits, is saved."""
    path = record_path(out, submission.student, submission.lesson)
    if not path.is_file():
        return False
    try:
        saved = LessonGrade.read(path)
    except (OSError, ValueError):
        return False
    return saved.notebook_sha256 == _sha256(submission.notebook) and saved.tests_fingerprint == fingerprint


def _job_initializer(grader: int, scratch: str) -> None:
    import tfrs_course  # noqa: F401 - legacy Keras before the reference solutions import TensorFlow
    from tfrs_course.grading.sandbox import die_with

    die_with(grader)  # a grader killed with SIGKILL leaves no job processes behind
    # A job process ends without running its exit handlers, so AutoGraph (run by the
    # reference solutions) never deletes the module files it writes for every function it
    # converts. They go in the batch's scratch folder, which the grader removes.
    tempfile.tempdir = scratch
    # The reference's warnings (TensorFlow's retracing notes, say) are nothing an instructor can act on.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # Ctrl-C reaches the whole process group: the grader alone decides what happens
    # (it ends the jobs), so that no job turns it into a grade.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _grade_in_job(submission: SubmittedFile, limits: Limits) -> dict:
    return grade_submission(submission, limits).to_json()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped a batch; the submission being graded was not recorded."""

    def __init__(self, out: Path, graded: int):
        super().__init__(
            f"interrupted: {graded} notebook(s) graded and saved in {out} (grades.csv lists every saved grade); "
            "rerun to grade the rest"
        )
        self.graded = graded


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

    Raises:
        Interrupted: SIGINT stopped the batch. Every record saved before it is kept;
            the submissions being graded are not recorded, so a rerun grades them.
    """
    try:
        os.getcwd()  # pytest runs each notebook's tests from it
    except FileNotFoundError:
        raise FileNotFoundError(
            "the current folder no longer exists (it was deleted after this shell entered it); "
            "cd to an existing folder and run again"
        ) from None
    submitted, out = Path(submitted).resolve(), Path(out).resolve()
    submissions, problems = find_submissions(submitted, lessons)
    _refuse_overlap(submitted, out)
    out.mkdir(parents=True, exist_ok=True)
    handed_in = {(s.student, s.lesson) for s in submissions}
    submissions = select_shard(submissions, shard)
    limits = limits or Limits()
    course = layout.course()
    hidden = [str(course.solutions_dir), str(course.autograder_dir), str(submitted), str(out)]
    fingerprints = {lesson: tests_fingerprint(lesson, limits) for lesson in {s.lesson for s in submissions}}
    pending = [s for s in submissions if not _is_current(out, s, fingerprints[s.lesson])]
    skipped = len(submissions) - len(pending)

    limits = replace(limits, sandbox=replace(limits.sandbox, hide=[*limits.sandbox.hide, *hidden]))
    saved = 0
    try:
        with tqdm(total=len(pending), desc="grading", unit="notebook", disable=not progress) as bar:
            for grade in _graded(pending, limits, jobs):
                problems += _save(out, grade)
                saved += 1
                bar.update(1)
    except KeyboardInterrupt:
        # grades.csv then holds what was saved, so it never shows an earlier run's grades.
        write_text_atomically(out / "grades.csv", grades_csv(_records(out)[0]))
        raise Interrupted(out, saved) from None

    grades = [_load(out, submission) for submission in submissions]
    everyone, unreadable = _records(out)
    write_text_atomically(out / "grades.csv", grades_csv(everyone))
    lines = [
        f"Graded {len(pending)} notebook(s), reused {skipped} already graded; wrote {out / 'grades.csv'}"
        f" ({len(everyone)} row(s): every record in {out})",
        f"Student code ran in {sandbox_description()}.",
    ]
    lines += _without_notebook(everyone, handed_in, lessons, submitted)
    failed = [grade for grade in grades if grade is not None and grade.error]
    if failed:
        lines.append(f"{len(failed)} could not be graded (scored 0; see the error column):")
        lines += [f"  {grade.student}/{grade.lesson}: {grade.error.splitlines()[0]}" for grade in failed]
    return printable("\n".join(lines + problems + unreadable))


def _refuse_overlap(submitted: Path, out: Path) -> None:
    """Refuse an output folder that is the submissions folder, lies inside it or holds it.

    Records are read back from ``OUT/<student_id>/<lesson>/result.json``; where the two
    folders overlap, a ``result.json`` a student handed in would be read as a grade.
    """
    if out == submitted or submitted in out.parents or out in submitted.parents:
        raise ValueError(
            f"the output folder {out} and the submissions folder {submitted} must not overlap "
            "(a file a student handed in could be read as a grade); choose an --out beside SUBMITTED, "
            "such as graded/"
        )


def _graded(pending: list[SubmittedFile], limits: Limits, jobs: int) -> Iterator[LessonGrade]:
    """Each pending submission's grade as it is finished; stops at SIGINT, recording nothing more.

    A grade finished after SIGINT arrived is dropped: the interrupt may have cut its
    tests short (pytest turns Ctrl-C into failures), and a rerun grades it in full.
    """
    interrupted = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_interrupt(signum: int, frame: object) -> None:
            interrupted.set()
            signal.default_int_handler(signum, frame)

        previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        if jobs <= 1:
            for submission in pending:
                try:
                    grade = grade_submission(submission, limits)
                except KeyboardInterrupt:
                    if interrupted.is_set():
                        raise
                    # Not Ctrl-C (signals reach only this handler): the grading raised it, a zero like any failure.
                    grade = failed_grade(submission, "grading it raised KeyboardInterrupt without a SIGINT")
                if interrupted.is_set():
                    raise KeyboardInterrupt
                yield grade
        else:
            yield from _graded_in_jobs(pending, limits, jobs, interrupted)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _graded_in_jobs(
    pending: list[SubmittedFile], limits: Limits, jobs: int, interrupted: threading.Event
) -> Iterator[LessonGrade]:
    """Grade in ``jobs`` processes, each on its own run of lessons as far as the work allows.

    A grading process pays once for each lesson it grades (loading the reference
    solution and computing its expected values: seconds for a model lesson). So the
    submissions, in lesson order, are cut into ``jobs`` runs, one per process, which
    works through its run from the front; a process whose run is done takes work from
    the back of the longest run left. Each process then meets few lessons, yet none
    waits while there is work.
    """
    context = template.job_context(submission.lesson for submission in pending)
    ordered = sorted(pending, key=lambda submission: (submission.lesson, submission.student))
    jobs = min(jobs, len(ordered))
    runs = [
        collections.deque(ordered[len(ordered) * job // jobs : len(ordered) * (job + 1) // jobs]) for job in range(jobs)
    ]

    scratch = tempfile.mkdtemp(prefix="tfrs-course-jobs-")

    def new_process() -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(1, context, _job_initializer, (os.getpid(), scratch))

    processes = [new_process() for _ in range(jobs)]
    running: dict[concurrent.futures.Future, tuple[int, SubmittedFile]] = {}

    def next_for(job: int) -> None:
        own = runs[job]
        longest = max(runs, key=len)
        if not own and not longest:
            return
        submission = own.popleft() if own else longest.pop()
        try:
            future = processes[job].submit(_grade_in_job, submission, limits)
        except concurrent.futures.process.BrokenProcessPool:
            # The process died between notebooks: start another; nothing was lost.
            processes[job].shutdown(wait=True)
            processes[job] = new_process()
            future = processes[job].submit(_grade_in_job, submission, limits)
        running[future] = (job, submission)

    try:
        for job in range(jobs):
            next_for(job)
        while running:
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                job, submission = running.pop(future)
                try:
                    grade = LessonGrade.from_json(future.result())
                except Exception as error:  # noqa: BLE001 - a crashed job costs only its notebook
                    grade = failed_grade(submission, f"the grading process stopped ({type(error).__name__}: {error})")
                    if isinstance(error, concurrent.futures.process.BrokenProcessPool):
                        processes[job].shutdown(wait=True)  # its manager thread has stopped (see below)
                        processes[job] = new_process()
                next_for(job)
                if interrupted.is_set():
                    raise KeyboardInterrupt
                yield grade
    except BaseException:
        # Interrupted (or the grader itself failed): end the jobs now rather than
        # wait for the notebooks they are grading. Their workers die with them.
        _end(multiprocessing.active_children())
        # Then wait for each pool's manager thread to see its process gone and stop:
        # one still closing its pipe while the interpreter exits makes Python 3.11
        # print an OSError traceback (a race its exit hook does not lock against).
        for process in processes:
            process.shutdown(wait=True, cancel_futures=True)
        raise
    else:
        for process in processes:
            process.shutdown()
    finally:
        # Every job process has ended (shutdown waits for it), so nothing writes here any more.
        shutil.rmtree(scratch, ignore_errors=True)


def _end(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """Terminate processes, then kill any still running a few seconds later."""
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()


def _without_notebook(
    records: list[LessonGrade], handed_in: set[tuple[str, str]], lessons: Iterable[str] | None, submitted: Path
) -> list[str]:
    """Say which rows of grades.csv come from records with no notebook in ``submitted``.

    Their rows stay (only the instructor removes a record: it may come from another
    folder graded into the same output), but a notebook withdrawn since it was graded
    must not keep its grade unnoticed. Only the lessons this run looked for are checked.
    """
    wanted = set(lessons) if lessons is not None else None
    gone = [
        f"{grade.student}/{grade.lesson}"
        for grade in records
        if (wanted is None or grade.lesson in wanted) and (grade.student, grade.lesson) not in handed_in
    ]
    if not gone:
        return []
    shown = ", ".join(gone[:10]) + (f" and {len(gone) - 10} more" if len(gone) > 10 else "")
    return [
        f"{len(gone)} row(s) of grades.csv come from records with no notebook in {submitted} (withdrawn since "
        f"they were graded, or graded from another folder): {shown}. Delete OUT/<student_id>/<lesson>/ to drop a row."
    ]


def _records(out: Path) -> tuple[list[LessonGrade], list[str]]:
    """Every record in ``out`` (whichever run or lesson graded it), and those that cannot be read.

    A record counts only in the folder it names (``<student_id>/<lesson>/``), as in a merge.
    """
    grades, unreadable = [], []
    for path in sorted(out.glob(f"*/*/{RESULT_FILE}")):
        try:
            grade = LessonGrade.read(path)
        except (OSError, ValueError) as error:
            unreadable.append(f"{printable(str(path))}: left out of grades.csv ({error}); delete it and rerun")
            continue
        if record_path(out, grade.student, grade.lesson) != path:
            unreadable.append(
                f"{printable(str(path))}: left out of grades.csv (it names another student or lesson); delete it"
            )
            continue
        grades.append(grade)
    return grades, unreadable


def _save(out: Path, grade: LessonGrade) -> list[str]:
    """Write a grade's files; if that fails, a short record that says why (a rerun grades it again).

    Returns:
        What could not be written at all (empty when the grade or its short record is saved).
    """
    folder = record_path(out, grade.student, grade.lesson).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomically(folder / "feedback.md", grade.to_feedback_markdown())
        write_text_atomically(folder / "results.json", json.dumps(grade.to_gradescope(), indent=2))
        # The record goes last: its presence means the submission is completely done.
        write_text_atomically(folder / RESULT_FILE, json.dumps(grade.to_json(), indent=1))
        return []
    except Exception as error:  # noqa: BLE001 - MemoryError, OSError...: one grade must never stop the batch
        reason = f"{type(error).__name__}: {str(error)[:300]}"
    # No digest and no fingerprint: the next run grades this notebook again.
    short = LessonGrade(
        grade.student, grade.lesson, grade.notebook, dict(grade.exercises),
        error=f"{grade.notebook}: its grade could not be saved ({reason})",
    )  # fmt: skip
    try:
        write_text_atomically(folder / RESULT_FILE, json.dumps(short.to_json(), indent=1))
        return []
    except Exception as error:  # noqa: BLE001 - the row is missing; the summary says so
        return [f"{printable(grade.student)}/{grade.lesson}: no record could be saved ({reason}; then {error})"]


def _load(out: Path, submission: SubmittedFile) -> LessonGrade | None:
    try:
        return LessonGrade.read(record_path(out, submission.student, submission.lesson))
    except (OSError, ValueError):
        return None  # missing or unreadable: graded again by the next run


def _without_timings(grade: LessonGrade) -> dict:
    """A record as two runs of the same grading agree on it: every field but the tests' durations."""
    record = grade.to_json()
    record["results"] = [{**result, "seconds": None} for result in record["results"]]
    return record


def merge_outputs(parts: list[str | Path], out: str | Path) -> str:
    """Join shard outputs into one folder and one grades.csv, the same whatever the order of parts.

    Parts may overlap (a shard graded twice): the same student and lesson should then
    have the same record in both, durations of tests aside. Where they differ (a call
    that timed out under load in one part only, say), the first part's record is kept
    and the summary names it, so one notebook never stops the merge for the class. A
    record is used only from the folder it names (``<student_id>/<lesson>/``).
    """
    out = Path(out)
    records: dict[tuple[str, str], LessonGrade] = {}
    conflicts: list[str] = []
    refused: list[str] = []
    for part in sorted(Path(p) for p in parts):
        for path in sorted(part.glob(f"*/*/{RESULT_FILE}")):
            try:
                grade = LessonGrade.read(path)
            except (OSError, ValueError) as error:
                refused.append(f"{printable(str(path))}: left out ({error})")
                continue
            key = (grade.student, grade.lesson)
            if record_path(part, *key) != path:
                refused.append(f"{printable(str(path))}: left out (it names another student or lesson)")
                continue
            if key in records:
                if _without_timings(records[key]) != _without_timings(grade):
                    conflicts.append(
                        f"{printable(key[0])}/{key[1]}: graded differently in two parts "
                        f"({records[key].total:g} and {grade.total:g} of {grade.maximum:g}); kept the first "
                        f"(the parts are taken in name order), regrade it to settle which is right ({printable(str(path))})"
                    )
                continue
            records[key] = grade
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    for grade in records.values():
        problems += _save(out, grade)
    everyone, unreadable = _records(out)
    write_text_atomically(out / "grades.csv", grades_csv(everyone))
    return printable(
        "\n".join(
            [
                f"Merged {len(records)} graded notebook(s) from {len(parts)} part(s) into {out / 'grades.csv'}",
                *conflicts,
                *refused,
                *problems,
                *unreadable,
            ]
        )
    )
