"""A scratch nbgrader course for one lesson: how the kit runs real nbgrader beside its own grader.

The agreement tests and the grading benchmark grade the same submissions with
``nbgrader autograde`` and with ``tfrs-course grade`` and compare the scores.
nbgrader wants a course folder (its ``nbgrader_config.py``, the master under
``solutions/``, submissions under ``submitted/<student>/<lesson>/``);
:class:`NbgraderCourse` builds one and runs nbgrader's commands in it, as
subprocesses with the kit's environment (legacy Keras, the venv's ``bin/``
first on PATH).
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from tfrs_course import layout
from tfrs_course.environment import subprocess_environment
from tfrs_course.notebooks import write_notebook

# nbgrader executes whole notebooks, training included. These parameters make that
# minutes instead of hours; the graded functions do not depend on them.
FAST_PARAMETERS = {"NUM_USERS": 300, "EPOCHS": 1}
# How much of a failed command's output an error shows.
OUTPUT_TAIL_CHARS = 3000


class NbgraderFailed(RuntimeError):
    """An nbgrader command exited with an error; the message holds the end of its output."""


def with_fast_parameters(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Append :data:`FAST_PARAMETERS` to the notebook's parameters cell (those it defines), in place.

    Args:
        notebook: a lesson notebook, with a cell tagged ``parameters``.

    Returns:
        The same notebook, for chaining.
    """
    for cell in notebook.cells:
        if "parameters" in cell.metadata.get("tags", []):
            overrides = [
                f"{name} = {value!r}"
                for name, value in FAST_PARAMETERS.items()
                if re.search(rf"^{name} =", cell.source, re.M)
            ]
            cell.source += "\n" + "\n".join(overrides)
    return notebook


def run_nbgrader(args: list[str], cwd: Path, data_dir: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m nbgrader ARGS`` in ``cwd``; the completed process, whatever its exit status.

    Args:
        args: nbgrader's command and options, e.g. ``["validate", "lesson.ipynb"]``.
        cwd: the folder to run in (a course folder for every command but ``validate``).
        data_dir: where the executed notebooks find (or build) the data; the kit's default if None.
    """
    environment = subprocess_environment()
    if data_dir is not None:
        environment["TFRS_COURSE_DATA_DIR"] = str(data_dir)
    return subprocess.run(  # noqa: S603 - the running interpreter, fixed arguments
        [sys.executable, "-m", "nbgrader", *args], cwd=cwd, capture_output=True, text=True, env=environment,
        check=False,
    )  # fmt: skip


class NbgraderCourse:
    """A course folder for one lesson under ``root``, ready for nbgrader's commands.

    Args:
        root: an empty or new folder.
        lesson: the lesson's folder name, e.g. ``"03_id_embeddings"``.
        data_dir: passed to :func:`run_nbgrader`.
    """

    def __init__(self, root: Path, lesson: str, data_dir: Path | None = None):
        self.root, self.lesson, self.data_dir = Path(root), lesson, data_dir
        shutil.copytree(layout.lesson(lesson).solutions_dir, self.root / "solutions" / lesson)
        shutil.copy(layout.course().root / "nbgrader_config.py", self.root)

    def submission_path(self, student: str) -> Path:
        """Where nbgrader looks for ``student``'s notebook (the layout ``tfrs-course grade`` reads too)."""
        return self.root / "submitted" / student / self.lesson / f"{self.lesson}.ipynb"

    def submit(self, student: str, notebook: nbformat.NotebookNode) -> Path:
        """Write ``notebook`` as ``student``'s submission; returns its path."""
        path = self.submission_path(student)
        write_notebook(notebook, path)
        return path

    def run(self, *args: str) -> float:
        """Run one nbgrader command in the course folder; returns its wall-clock seconds.

        Raises:
            NbgraderFailed: the command exited with an error (its output's end is in the message).
        """
        started = time.perf_counter()
        completed = run_nbgrader(list(args), self.root, self.data_dir)
        if completed.returncode != 0:
            raise NbgraderFailed(
                f"nbgrader {' '.join(args)} failed in {self.root}:\n"
                f"{completed.stdout[-OUTPUT_TAIL_CHARS:]}\n{completed.stderr[-OUTPUT_TAIL_CHARS:]}"
            )
        return time.perf_counter() - started

    def autograde(self) -> float:
        """Generate the assignment, then autograde every submission; returns autograde's seconds."""
        self.run("generate_assignment", self.lesson, "--force")
        return self.run("autograde", self.lesson, "--force")

    def scores(self, file_name: str = "grades.csv") -> dict[str, float]:
        """Export the gradebook to ``file_name`` in the course folder; student id -> score."""
        self.run("export", "--to", file_name)
        with open(self.root / file_name, newline="") as stream:
            return {row["student_id"]: float(row["score"]) for row in csv.DictReader(stream)}
