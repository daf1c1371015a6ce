"""Build the course's notebooks: masters from their text form, student copies with nbgrader.

Each lesson has one source of truth, ``solutions/<lesson>/<lesson>.py``: a
jupytext "percent" script that reads well in review. Authoring tags on its cells
say what they are:

- ``setup``: the first code cell; grading runs the instructor's copy of it. The
  build puts a folded "Colab only" cell (:mod:`tfrs_course.colab`) just before
  it and an "Open in Colab" badge above the lesson, so the first code a student
  reads is the lesson's own.
- ``parameters``: values that tests and the demo may override.
- ``answer:<exercise>``: the student writes this cell; solution code sits between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``.
- ``visible-tests:<exercise>`` / ``hidden-tests:<exercise>``: left empty by the
  author; the build writes the ``check(...)`` call and takes the points from the
  tests in ``autograder/``.

``build`` writes ``solutions/<lesson>/<lesson>.ipynb`` (nbgrader's source format)
and then ``lessons/<lesson>/<lesson>.ipynb`` through ``nbgrader
generate_assignment``. ``check`` rebuilds into a temporary folder and fails if
the committed notebooks differ or a student copy leaks a solution.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from tfrs_course import layout
from tfrs_course.colab import (
    Repository,
    badge_markdown,
    colab_cell_source,
    github_https_url,
    load_repository,
    save_repository,
)
from tfrs_course.environment import subprocess_environment
from tfrs_course.grading.results import ExercisePoints
from tfrs_course.grading.runner import exercise_points
from tfrs_course.notebooks import write_notebook

LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
NBGRADER_SCHEMA = 3


class LessonBuildError(RuntimeError):
    """A lesson's source is malformed; the message names the file and the cell."""


def lesson_names(root: Path | None = None) -> list[str]:
    """Every lesson with a master script, in course order (of the course in ``root``, default the kit's)."""
    return layout.course(root).lesson_names()


def _nbgrader(grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> dict:
    metadata = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": NBGRADER_SCHEMA,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        metadata["points"] = points
    return metadata


def _cell_id(source: str, used: set[str]) -> str:
    """A stable id from the cell's content, so rebuilding never churns ids."""
    base = "c" + hashlib.sha1(source.encode("utf-8")).hexdigest()[:10]
    candidate, counter = base, 2
    while candidate in used:
        candidate, counter = f"{base}-{counter}", counter + 1
    return candidate


def build_master(lesson: str, root: Path | None = None) -> nbformat.NotebookNode:
    """The master notebook of a lesson, made from its percent script (in the course at ``root``).

    Raises:
        LessonBuildError: an unknown tag, a test cell for an exercise that has no
            answer cell or no tests in ``autograder/``, or a missing setup cell.
    """
    import jupytext

    script = layout.course(root).lesson(lesson).master_script
    notebook = jupytext.read(script)
    points = exercise_points(lesson)
    used_ids: set[str] = set()
    answers: set[str] = set()
    has_setup = False
    for position, cell in enumerate(notebook.cells, start=1):
        tags = list(cell.metadata.pop("tags", []))
        cell.metadata.pop("lines_to_next_cell", None)
        role, _, exercise = (tags[0] if tags else "").partition(":")
        where = f"{script}, cell {position}"
        if len(tags) > 1:
            raise LessonBuildError(f"{where}: one authoring tag per cell, got {tags}")
        if role == "setup":
            has_setup = True
            colab_position = position - 1
            cell.metadata["nbgrader"] = _nbgrader("setup", locked=True)
            cell.id = "setup"
        elif role == "parameters":
            cell.metadata["tags"] = ["parameters"]
            cell.id = "parameters"
        elif role == "answer":
            if "### BEGIN SOLUTION" not in cell.source:
                raise LessonBuildError(f"{where}: answer cell for {exercise!r} has no ### BEGIN SOLUTION")
            answers.add(exercise)
            cell.metadata["nbgrader"] = _nbgrader(exercise, solution=True)
            cell.id = exercise
        elif role in ("visible-tests", "hidden-tests"):
            hidden = role == "hidden-tests"
            if exercise not in answers:
                raise LessonBuildError(f"{where}: tests for {exercise!r} come before (or without) its answer cell")
            worth = getattr(points.get(exercise, ExercisePoints()), "hidden" if hidden else "visible")
            if worth <= 0:
                raise LessonBuildError(
                    f"{where}: {layout.lesson(lesson).tests} has no {role.split('-')[0]} tests for {exercise!r}"
                )
            cell.source = _test_cell_source(exercise, hidden)
            grade_id = f"{exercise}-{role}"
            cell.metadata["nbgrader"] = _nbgrader(grade_id, grade=True, locked=True, points=worth)
            cell.id = grade_id
        elif role:
            raise LessonBuildError(f"{where}: unknown authoring tag {tags[0]!r}")
        else:
            cell.id = _cell_id(cell.source, used_ids)
        used_ids.add(cell.id)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if not has_setup:
        raise LessonBuildError(f"{script}: no cell tagged 'setup'")
    missing_tests = sorted(set(points) - answers)
    if missing_tests:
        raise LessonBuildError(f"{script}: autograder tests exist for exercises with no answer cell: {missing_tests}")
    repository = load_repository()
    notebook.cells.insert(colab_position, _colab_cell(repository))
    badge = nbformat.v4.new_markdown_cell(badge_markdown(lesson, repository))
    badge.id = "colab-badge"
    notebook.cells.insert(0, badge)
    notebook.metadata.pop("jupytext", None)
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return notebook


def _colab_cell(repository: Repository) -> nbformat.NotebookNode:
    """The folded "Colab only" cell; locked, so grading always uses the instructor's copy."""
    cell = nbformat.v4.new_code_cell(colab_cell_source(repository))
    cell.id = "colab-setup"
    # JupyterLab and Colab each fold the cell by their own metadata.
    cell.metadata["jupyter"] = {"source_hidden": True}
    cell.metadata["cellView"] = "form"
    cell.metadata["nbgrader"] = _nbgrader("colab_setup", locked=True)
    return cell


def _test_cell_source(exercise: str, hidden: bool) -> str:
    if not hidden:
        return f'check("{exercise}")'
    return (
        f"# The hidden tests of {exercise} run here when your work is graded.\n"
        "### BEGIN HIDDEN TESTS\n"
        f'check("{exercise}", hidden=True)\n'
        "### END HIDDEN TESTS"
    )


def generate_student_copy(lesson: str, master_path: Path, output_path: Path) -> None:
    """Run ``nbgrader generate_assignment`` on a master, in a scratch course folder.

    The copy nbgrader writes keeps its cell metadata (nbgrader needs it to
    autograde submissions); the build then clears outputs and restores the
    master's cell ids so that regenerating gives identical bytes.
    """
    with tempfile.TemporaryDirectory(prefix="tfrs-course-build-") as scratch:
        root = Path(scratch)
        shutil.copy(layout.course().root / "nbgrader_config.py", root / "nbgrader_config.py")
        staged = layout.course(root).lesson(lesson)
        staged.solutions_dir.mkdir(parents=True)
        shutil.copy(master_path, staged.master_notebook)
        completed = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", lesson, "--force", "--log-level=WARN"],
            cwd=root, capture_output=True, text=True, check=False, env=subprocess_environment(),
        )  # fmt: skip
        released = staged.student_notebook
        if completed.returncode != 0 or not released.is_file():
            raise LessonBuildError(
                f"nbgrader generate_assignment failed for {lesson}:\n{completed.stdout}\n{completed.stderr}"
            )
        student = nbformat.read(released, as_version=4)
    master = nbformat.read(master_path, as_version=4)
    if len(student.cells) != len(master.cells):
        raise LessonBuildError(f"nbgrader changed the number of cells of {lesson}")
    for student_cell, master_cell in zip(student.cells, master.cells, strict=True):
        student_cell.id = master_cell.id
        if student_cell.cell_type == "code":
            student_cell.outputs, student_cell.execution_count = [], None
    write_notebook(student, output_path)


def build(lessons: list[str] | None = None, root: Path | None = None) -> list[Path]:
    """Build masters and student copies; returns the files written."""
    course = layout.course(root)
    written = []
    for lesson in lessons or course.lesson_names():
        master_path, student_path = course.lesson(lesson).master_notebook, course.lesson(lesson).student_notebook
        write_notebook(build_master(lesson, course.root), master_path)
        generate_student_copy(lesson, master_path, student_path)
        written += [master_path, student_path]
    return written


def find_leaks(lesson: str, course: Path | None = None) -> list[str]:
    """What of a master's solutions or hidden tests appears in its student copy.

    Returns:
        One line per leak: a marker, or a line of solution code, found in the copy.
    """
    files = layout.course(course).lesson(lesson)
    master = nbformat.read(files.master_notebook, as_version=4)
    student_path = files.student_notebook
    student_text = student_path.read_text(encoding="utf-8")
    student = nbformat.reads(student_text, as_version=4)
    student_code = "\n".join(cell.source for cell in student.cells)
    leaks = [f"{student_path}: contains {marker!r}" for marker in LEAK_MARKERS if marker in student_text]
    for cell in master.cells:
        for line in _secret_lines(cell.source):
            if line in student_code:
                leaks.append(f"{student_path}: contains solution or hidden-test line {line!r}")
    return leaks


def _secret_lines(source: str) -> list[str]:
    """Lines between solution or hidden-test markers, long enough to be telling."""
    secret, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS")):
            inside = True
        elif stripped.startswith(("### END SOLUTION", "### END HIDDEN TESTS")):
            inside = False
        elif inside and len(stripped) >= 12 and not stripped.startswith("#"):
            secret.append(stripped)
    return secret


def check(lessons: list[str] | None = None) -> list[str]:
    """Problems with the committed notebooks: stale copies and leaks. Empty if all is well."""
    course = layout.course()
    names = lessons or course.lesson_names()
    problems = []
    with tempfile.TemporaryDirectory(prefix="tfrs-course-check-") as scratch:
        scratch_course = layout.course(Path(scratch))
        for lesson in names:
            shutil.copytree(course.lesson(lesson).solutions_dir, scratch_course.lesson(lesson).solutions_dir)
        shutil.copy(course.root / "nbgrader_config.py", scratch_course.root / "nbgrader_config.py")
        for lesson in names:
            committed, fresh = course.lesson(lesson), scratch_course.lesson(lesson)
            write_notebook(build_master(lesson, course.root), fresh.master_notebook)
            generate_student_copy(lesson, fresh.master_notebook, fresh.student_notebook)
            for kept, made in ((committed.master_notebook, fresh.master_notebook),
                               (committed.student_notebook, fresh.student_notebook)):  # fmt: skip
                relative = kept.relative_to(course.root).as_posix()
                if not kept.is_file():
                    problems.append(f"{relative} is missing: run `make lessons`")
                elif kept.read_bytes() != made.read_bytes():
                    problems.append(f"{relative} is stale: run `make lessons` and commit the result")
            if committed.student_notebook.is_file():
                problems += find_leaks(lesson, course.root)
    extra = sorted(
        path.relative_to(course.root).as_posix()
        for path in course.lessons_dir.rglob("*")
        if path.is_file() and path.suffix != ".ipynb" and ".ipynb_checkpoints" not in path.parts
    )
    problems += [f"{name}: only generated notebooks belong in lessons/" for name in extra]
    return problems


def origin_repository(course: Path | None = None) -> str:
    """The ``origin`` remote of the checkout, as ``https://github.com/OWNER/NAME``.

    Raises:
        ValueError: there is no ``origin`` remote, or it is not on GitHub.
    """
    course = course or layout.course().root
    completed = subprocess.run(
        ["git", "-C", str(course), "remote", "get-url", "origin"], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise ValueError(f"{course} has no git remote named origin; give the repository's GitHub address")
    remote = completed.stdout.strip()
    try:
        return github_https_url(remote)
    except ValueError as error:
        raise ValueError(f"the origin remote {remote!r} is not a GitHub repository; give its GitHub address") from error


def set_repository(url: str | None = None, branch: str | None = None) -> Repository:
    """Point the Colab badges and set-up cells at a GitHub repository, then rebuild the lessons.

    Args:
        url: a GitHub address (https or ssh form); default: the checkout's ``origin`` remote.
        branch: the branch Colab opens; default: the one already set.

    Returns:
        The new setting.
    """
    current = load_repository()
    repository = Repository(url=github_https_url(url) if url else origin_repository(), branch=branch or current.branch)
    save_repository(repository)
    build()
    return repository
