"""Execute lesson notebooks with injected parameters, as tests and the demo do."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from tfrs_course.environment import subprocess_environment
from tfrs_course.lessons import write_notebook
from tfrs_course.paths import solutions_dir

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
    return solutions_dir() / lesson / f"{lesson}.ipynb"
