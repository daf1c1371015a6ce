"""Grading a class, lesson by lesson: ``tfrs-course grade --jobs 2`` against ``nbgrader autograde``.

Run ``python -m tfrs_course.benchmarks grading [N] [--lesson L ...] [--full-notebooks]``
(``make bench-grading``). For every lesson it builds a class of N submissions
from the reference answers and the lesson's realistic mistakes (see
:func:`build_class`), grades them both ways in a scratch folder, checks that
every student gets the same score, and prints per lesson: seconds both ways, the
ratio, seconds per submission in the batch, and one submission's time in a warm
grader. Then it grades every lesson's submissions together with one
``tfrs-course grade --jobs 2``, as an instructor grades a course (the grading
processes start, and import TensorFlow, once for the whole course), checks that
it gives the same scores, and compares its time with nbgrader's, which grades
one assignment per command.

nbgrader executes each whole notebook, training included. By default each
submission's parameters cell is cut to 300 users and one epoch, as
``tests/test_nbgrader_agreement.py`` does, so that the benchmark finishes in
minutes; this makes nbgrader faster than it is on what students submit, so the
ratio printed is a lower bound. ``--full-notebooks`` keeps the parameters as
the lesson ships them. The batch grader never runs those cells, so its time is
the same either way.
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tfrs_course import layout, paths
from tfrs_course.data.synthetic import ensure_twin
from tfrs_course.environment import subprocess_environment
from tfrs_course.grading.batch import SubmittedFile, grade_submission
from tfrs_course.grading.isolated import Limits
from tfrs_course.grading.validation import (
    SOLVED,
    UNTOUCHED,
    load_mistakes,
    validation_class,
)
from tfrs_course.lessons import lesson_names
from tfrs_course.nbgrader_course import NbgraderCourse, with_fast_parameters

DEFAULT_SIZE = 4
BROKEN = "broken"
# A broken answer cell: it does not parse, so the function it should define never exists.
# (A cell whose first line raises would do too, but today the batch grader runs the rest
# of such a cell and nbgrader does not, so they disagree on it.)
BROKEN_PREFIX = "this line is not Python  # a broken submission\n\n"
# Warm-grader timings per lesson (the first of them pays for loading the reference).
LATENCY_SAMPLES = 2


def mistakes_folder(lesson: str) -> Path:
    """Where a lesson's realistic wrong answers and their ``mistakes.toml`` live."""
    return layout.lesson(lesson).fixtures


def build_class(lesson: str, size: int, *, full_notebooks: bool = False) -> dict[str, nbformat.NotebookNode]:
    """Student id -> notebook: ``size`` submissions of right, wrong and broken answers.

    The kinds take turns: the solved copy, the untouched copy, a broken one
    (the first exercise's cell does not parse), then each submission of the
    lesson's ``mistakes.toml`` (wrong answers and honest alternatives), then
    again from the start. Repeated kinds are graded again as new students.
    """
    folder = mistakes_folder(lesson)
    mistakes = load_mistakes(folder) if (folder / "mistakes.toml").is_file() else {}
    kinds = validation_class(lesson, mistakes)
    broken = copy.deepcopy(kinds[SOLVED])
    first = next(cell for cell in broken.cells if cell.metadata.get("nbgrader", {}).get("solution"))
    first.source = BROKEN_PREFIX + first.source
    kinds[BROKEN] = broken
    names = [SOLVED, UNTOUCHED, BROKEN] + [name for name in kinds if name not in (SOLVED, UNTOUCHED, BROKEN)]
    notebooks = {}
    for index in range(size):
        kind = names[index % len(names)]
        notebook = copy.deepcopy(kinds[kind])
        if not full_notebooks:
            with_fast_parameters(notebook)
        notebooks[f"s{index:03d}_{kind}"] = notebook
    return notebooks


def _run(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env=subprocess_environment(), check=False
    )  # noqa: S603
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    return time.perf_counter() - started


def _scores(path: Path, column: str) -> dict[str, float]:
    with open(path, newline="") as stream:
        return {row["student_id"]: float(row[column]) for row in csv.DictReader(stream)}


@dataclass
class LessonFigures:
    lesson: str
    size: int
    ours: float
    theirs: float
    warm: float
    differing: list[str]


def _grade_with_ours(submitted: str, root: Path, *lessons: str) -> float:
    """Seconds for one ``tfrs-course grade --jobs 2`` over ``root/submitted`` (only ``lessons``, if given)."""
    command = [str(Path(sys.executable).parent / "tfrs-course"), "grade", submitted, "--out", "graded"]
    for lesson in lessons:
        command += ["--lesson", lesson]
    return _run([*command, "--jobs", "2", "--quiet"], root)


def measure_lesson(lesson: str, size: int, root: Path, *, full_notebooks: bool = False) -> LessonFigures:
    """Grade one lesson's class both ways under ``root``; return the figures.

    The submissions stay in ``root/course/submitted``, where :func:`measure_course` finds them.
    """
    course = NbgraderCourse(root / "course", lesson)
    for student, notebook in build_class(lesson, size, full_notebooks=full_notebooks).items():
        course.submit(student, notebook)
    ours = _grade_with_ours("course/submitted", root, lesson)
    our_scores = _scores(root / "graded" / "grades.csv", "total")
    theirs = course.autograde()
    their_scores = course.scores()

    latencies = []
    for student in sorted(our_scores)[:LATENCY_SAMPLES]:
        started = time.perf_counter()
        grade_submission(SubmittedFile(student, lesson, course.submission_path(student)), Limits())
        latencies.append(time.perf_counter() - started)
    differing = sorted(s for s in our_scores.keys() | their_scores.keys() if our_scores.get(s) != their_scores.get(s))
    return LessonFigures(lesson, size, ours, theirs, min(latencies), differing)


def measure_course(lesson_roots: dict[str, Path], root: Path) -> tuple[float, list[str]]:
    """Grade every lesson's class with one ``tfrs-course grade --jobs 2``, as an instructor grades a course.

    Args:
        lesson_roots: lesson -> the folder :func:`measure_lesson` graded it in.
        root: an empty folder; the course's ``submitted/`` is assembled there.

    Returns:
        The command's seconds, and the ``student/lesson`` rows whose total differs from the
        lesson's own run (which matched nbgrader's).
    """
    expected = {}
    for lesson, lesson_root in lesson_roots.items():
        shutil.copytree(lesson_root / "course" / "submitted", root / "submitted", dirs_exist_ok=True)
        with open(lesson_root / "graded" / "grades.csv", newline="") as stream:
            expected.update({(row["student_id"], lesson): row["total"] for row in csv.DictReader(stream)})
    seconds = _grade_with_ours("submitted", root)
    with open(root / "graded" / "grades.csv", newline="") as stream:
        found = {(row["student_id"], row["lesson"]): row["total"] for row in csv.DictReader(stream)}
    differing = sorted(f"{student}/{lesson}" for student, lesson in expected.keys() | found.keys()
                       if expected.get((student, lesson)) != found.get((student, lesson)))  # fmt: skip
    return seconds, differing


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tfrs_course.benchmarks grading")
    parser.add_argument("size", nargs="?", type=int, default=DEFAULT_SIZE, help="submissions per lesson")
    parser.add_argument("--lesson", action="append", help="only this lesson (repeatable; default: all)")
    parser.add_argument("--full-notebooks", action="store_true", help="nbgrader runs the lessons' own parameters")
    options = parser.parse_args(sys.argv[2:] if argv is None else argv)
    lessons = options.lesson or lesson_names()
    ensure_twin(paths.default_data_dir())  # nbgrader runs the lessons' data cells too
    print(
        f"Grading {options.size} submissions per lesson (right, wrong and broken answers) on "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; nbgrader on "
        f"{'notebooks as the lessons ship them' if options.full_notebooks else 'notebooks cut to 300 users, 1 epoch'}"
    )
    header = (
        f"{'lesson':<24}{'ours s':>8}{'nbgrader s':>12}{'ratio':>8}{'ours s/sub':>12}{'warm s/sub':>12}  same scores"
    )
    print(header, flush=True)
    figures = []
    with tempfile.TemporaryDirectory(prefix="tfrs-course-bench-") as scratch:
        lesson_roots = {lesson: Path(scratch) / lesson for lesson in lessons}
        for lesson, lesson_root in lesson_roots.items():
            result = measure_lesson(lesson, options.size, lesson_root, full_notebooks=options.full_notebooks)
            figures.append(result)
            same = "yes" if not result.differing else f"NO: {', '.join(result.differing)}"
            print(
                f"{lesson:<24}{result.ours:>8.1f}{result.theirs:>12.1f}{result.theirs / result.ours:>7.1f}x"
                f"{result.ours / result.size:>12.2f}{result.warm:>12.2f}  {same}  (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        ours, theirs = sum(f.ours for f in figures), sum(f.theirs for f in figures)
        count = sum(f.size for f in figures)
        print(
            f"{'lesson by lesson':<24}{ours:>8.1f}{theirs:>12.1f}{theirs / ours:>7.1f}x{ours / count:>12.2f}"
            f"{statistics.median(f.warm for f in figures):>12.2f}  "
            f"{'yes' if not any(f.differing for f in figures) else 'NO'}"
        )
        course_root = Path(scratch) / "course"
        course_root.mkdir()
        together, differing = measure_course(lesson_roots, course_root)
    same = "yes" if not differing else f"NO: {', '.join(differing)}"
    print(
        f"{'course, one command':<24}{together:>8.1f}{theirs:>12.1f}{theirs / together:>7.1f}x"
        f"{together / count:>12.2f}{'':>12}  {same}  (load {os.getloadavg()[0]:.1f})"
    )
    print(
        "(course, one command: every lesson's submissions graded by one `tfrs-course grade --jobs 2`, as an "
        "instructor grades a course, against nbgrader's autograde of each lesson, which is one command per "
        "assignment; its scores are checked against the lesson-by-lesson run)"
    )
