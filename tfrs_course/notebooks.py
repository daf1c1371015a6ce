"""Lesson notebooks: write them reproducibly, fill in answers, execute them with injected parameters."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from tfrs_course import layout
from tfrs_course.environment import subprocess_environment

PARAMETERS_TAG = "parameters"


@dataclass(frozen=True)
class ExecutedNotebook:
    """A notebook after execution.

    Attributes:
        notebook: the executed notebook, with outputs.
        seconds: wall time of the execution (kernel start included).
    """

    notebook: nbformat.NotebookNode
    seconds: float


def inject_parameters(notebook: nbformat.NotebookNode, parameters: dict[str, Any]) -> None:
    """Insert a cell after the one tagged ``parameters`` that overrides its values.

    Args:
        notebook: modified in place.
        parameters: name -> a value whose ``repr`` is valid Python (numbers, str, tuples...).

    Raises:
        ValueError: parameters were given but the notebook has no parameters cell.
    """
    if not parameters:
        return
    for position, cell in enumerate(notebook.cells):
        if PARAMETERS_TAG in cell.metadata.get("tags", []):
            source = "# Injected parameters\n" + "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
            injected = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
            notebook.cells.insert(position + 1, injected)
            return
    raise ValueError("the notebook has no cell tagged 'parameters' to override")


def execute_notebook(
    path: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    output_path: str | Path | None = None,
    timeout: int = 900,
) -> ExecutedNotebook:
    """Run a notebook top to bottom in a fresh kernel.

    Args:
        path: the notebook.
        parameters: values to override in its parameters cell.
        output_path: where to save the executed copy (outputs are not written back to ``path``).
        timeout: seconds allowed per cell.

    Returns:
        An :class:`ExecutedNotebook`.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; the message shows the cell and the error.
    """
    from nbclient import NotebookClient

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    inject_parameters(notebook, parameters or {})
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.perf_counter()
    try:
        client.execute(env=subprocess_environment())
    finally:
        if output_path is not None:
            write_notebook(notebook, Path(output_path))
    return ExecutedNotebook(notebook, time.perf_counter() - started)


def solution_notebook(lesson: str) -> Path:
    return layout.lesson(lesson).master_notebook


def write_notebook(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Write a notebook the same way every time (sorted keys, one-space indent, newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(notebook)
    text = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def solution_source(lesson: str, exercise: str) -> str:
    """The master's answer cell for an exercise, without the solution markers."""
    master = nbformat.read(layout.lesson(lesson).master_notebook, as_version=4)
    for cell in master.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == exercise:
            markers = ("### BEGIN SOLUTION", "### END SOLUTION")
            return "\n".join(line for line in cell.source.splitlines() if not line.strip().startswith(markers))
    raise KeyError(f"{lesson} has no answer cell {exercise!r}")


def student_copy_with_answers(lesson: str, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The released student copy of a lesson with some answer cells filled in.

    Used to validate the tests both ways and to build example submissions.

    Args:
        lesson: the lesson's folder name.
        answers: exercise -> the code to put in its answer cell. Use
            :func:`solution_source` for a correct answer.

    Returns:
        A notebook, as a student would submit it.
    """
    student = nbformat.read(layout.lesson(lesson).student_notebook, as_version=4)
    remaining = dict(answers)
    for cell in student.cells:
        exercise = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and exercise in remaining:
            cell.source = remaining.pop(exercise)
    if remaining:
        raise KeyError(f"{lesson} has no answer cells for {sorted(remaining)}")
    return student
