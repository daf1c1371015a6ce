"""How long each solution notebook takes, top to bottom, on the default twin, and its slowest cells.

Run ``python -m tfrs_course.benchmarks lessons [LESSON ...]`` (``make bench-lessons``).
Lessons run in order in a scratch data folder (lesson 5 reads the records of
lessons 1-4), each in a fresh kernel; a lesson's figure includes the kernel's
start and TensorFlow's import. Cell times come from the timestamps the kernel
reports for each cell (``metadata.execution``, which nbclient records).
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import datetime

import nbformat

from tfrs_course.lessons import lesson_names
from tfrs_course.notebooks import execute_notebook, solution_notebook
from tfrs_course.paths import DATA_DIR_VARIABLE

GOAL_SECONDS_PER_LESSON = 45
GOAL_SECONDS_COURSE = 150
SLOWEST_CELLS = 3


def cell_seconds(notebook: nbformat.NotebookNode) -> list[tuple[int, float, str]]:
    """``(cell number, seconds, first line)`` of each executed code cell, in notebook order.

    Cell numbers count every cell from 1, as Jupyter shows them in order; the
    seconds run from the kernel turning busy with the cell to its reply.
    """
    timed = []
    for number, cell in enumerate(notebook.cells, start=1):
        execution = cell.metadata.get("execution", {})
        if cell.cell_type != "code" or not {"iopub.status.busy", "shell.execute_reply"} <= execution.keys():
            continue
        started = datetime.fromisoformat(execution["iopub.status.busy"].replace("Z", "+00:00"))
        ended = datetime.fromisoformat(execution["shell.execute_reply"].replace("Z", "+00:00"))
        first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
        timed.append((number, (ended - started).total_seconds(), first_line))
    return timed


def main(argv: list[str] | None = None) -> None:
    """Print each lesson's time and its slowest cells, then the course's total."""
    argv = sys.argv[2:] if argv is None else argv
    lessons = argv or lesson_names()
    load = os.getloadavg()[0]
    print(f"Solution notebooks on the default twin (seconds, kernel start included); load average {load:.1f}")
    timings = {}
    with tempfile.TemporaryDirectory(prefix="tfrs-course-bench-lessons-") as scratch:
        os.environ[DATA_DIR_VARIABLE] = scratch  # the kernels inherit it
        # Build the twin first, so the first lesson is not charged for it.
        from tfrs_course.data import load_babyshop

        load_babyshop(source="synthetic")
        for lesson in lessons:
            executed = execute_notebook(solution_notebook(lesson))
            timings[lesson] = executed.seconds
            flag = "" if executed.seconds <= GOAL_SECONDS_PER_LESSON else f"  over the {GOAL_SECONDS_PER_LESSON} s goal"
            print(f"  {lesson:<28} {executed.seconds:6.1f}{flag}  (load {os.getloadavg()[0]:.1f})", flush=True)
            cells = cell_seconds(executed.notebook)
            for number, seconds, first_line in sorted(cells, key=lambda cell: -cell[1])[:SLOWEST_CELLS]:
                print(f"      cell {number:>3} {seconds:6.1f} s  {first_line[:70]}")
            kernel_and_rest = executed.seconds - sum(seconds for _, seconds, _ in cells)
            print(f"      kernel start and between cells {kernel_and_rest:5.1f} s", flush=True)
    total = sum(timings.values())
    print(
        f"  {'course':<28} {total:6.1f}  (goal: {GOAL_SECONDS_PER_LESSON} s per lesson, {GOAL_SECONDS_COURSE} s in all)"
    )
