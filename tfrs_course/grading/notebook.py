"""Read notebooks and build the program that grading runs from them.

Grading runs the lesson's setup cell from the instructor's copy, then the
student's graded answer cells, keeping only imports, definitions and constant
assignments from those cells: a notebook full of training loops grades as fast
as one without, and nothing a student's cell does at top level (printing,
training, reading files) happens during grading.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

SETUP_CELL_ID = "setup"
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


class NotebookError(ValueError):
    """A notebook cannot be read or lacks what grading needs. The message names the file."""


@dataclass
class AnswerCell:
    """A graded answer cell: its nbgrader id and its code."""

    grade_id: str
    source: str


@dataclass
class Program:
    """What grading executes: the setup code, then each answer cell's definitions.

    Attributes:
        setup: the instructor's setup cell source.
        answers: answer cells in notebook order, each reduced to its definitions.
        problems: per answer cell, why some or all of it could not be used
            (a syntax error, say); reported in feedback next to the failing tests.
    """

    setup: str
    answers: list[AnswerCell]
    problems: dict[str, str] = field(default_factory=dict)


def read_notebook(path: str | Path) -> dict:
    """Load a notebook's JSON with errors that say what is wrong with the file.

    Args:
        path: an ``.ipynb`` file.

    Returns:
        The notebook as a dict (nbformat 4).

    Raises:
        NotebookError: missing, too large, not UTF-8, not JSON, or not nbformat 4.
    """
    path = Path(path)
    if not path.is_file():
        raise NotebookError(f"{path}: no such notebook")
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(
            f"{path}: {size / 1e6:.0f} MB is larger than the {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB allowed; "
            "clear the outputs (Edit > Clear Outputs of All Cells) and save again"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise NotebookError(f"{path}: not UTF-8 text (byte {error.start}); is it really a notebook?") from error
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotebookError(
            f"{path}: not valid notebook JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from error
    if not isinstance(notebook, dict):
        raise NotebookError(f"{path}: not a notebook (the JSON is not an object)")
    if notebook.get("nbformat") != 4:
        raise NotebookError(
            f"{path}: nbformat {notebook.get('nbformat')!r}; save it with Jupyter 4 or newer (nbformat 4)"
        )
    if not isinstance(notebook.get("cells"), list):
        raise NotebookError(f"{path}: not a notebook (no list of cells)")
    return notebook


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def grade_id(cell: dict) -> str | None:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None


def is_answer_cell(cell: dict) -> bool:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and isinstance(nbgrader, dict) and bool(nbgrader.get("solution"))


def setup_source(master: dict, master_path: Path) -> str:
    """The master notebook's setup cell (nbgrader grade_id ``setup``)."""
    for cell in master["cells"]:
        if grade_id(cell) == SETUP_CELL_ID:
            return cell_source(cell)
    raise NotebookError(f"{master_path}: no cell with nbgrader grade_id {SETUP_CELL_ID!r}")


def answer_ids(master: dict) -> list[str]:
    """The grade ids of the master notebook's answer cells, in order."""
    return [grade_id(cell) for cell in master["cells"] if is_answer_cell(cell)]


def build_program(submission: dict, master: dict, master_path: Path) -> Program:
    """The program that grades ``submission``: master's setup, student's answer definitions.

    Answer cells are found by their nbgrader grade id. If a notebook lost its cell
    metadata (some editors drop it), cells that define one of the exercises'
    functions are used instead.

    Args:
        submission: the student's notebook (as from :func:`read_notebook`).
        master: the instructor's notebook of the same lesson.
        master_path: where ``master`` was read from, for messages.

    Returns:
        A :class:`Program`.
    """
    setup = setup_source(master, master_path)
    wanted = answer_ids(master)
    cells = [cell for cell in submission["cells"] if is_answer_cell(cell) and grade_id(cell) in wanted]
    seen: set[str] = set()
    for cell in cells:
        if grade_id(cell) in seen:
            raise NotebookError(
                f"the answer cell {grade_id(cell)!r} appears more than once (a copied cell?); "
                "keep one copy of it and submit again"
            )
        seen.add(grade_id(cell))
    if not cells:
        exercise_names = _defined_names_of(master, wanted)
        cells = [
            cell
            for cell in submission["cells"]
            if cell.get("cell_type") == "code" and _defined_names(cell_source(cell)) & exercise_names
        ]
    answers: list[AnswerCell] = []
    problems: dict[str, str] = {}
    for position, cell in enumerate(cells):
        label = grade_id(cell) or f"cell {position + 1}"
        definitions, problem = definitions_only(cell_source(cell))
        if problem:
            problems[label] = problem
        answers.append(AnswerCell(label, definitions))
    return Program(setup=setup, answers=answers, problems=problems)


def _defined_names_of(master: dict, wanted: list[str]) -> set[str]:
    names: set[str] = set()
    for cell in master["cells"]:
        if grade_id(cell) in wanted:
            names |= _defined_names(cell_source(cell))
    return names


def _defined_names(source: str) -> set[str]:
    try:
        tree = ast.parse(_python_only(source))
    except SyntaxError:
        return set()
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


def definitions_only(source: str) -> tuple[str, str | None]:
    """Keep a cell's imports, function and class definitions and constant assignments.

    Args:
        source: a cell's code; IPython magics (``%time``, ``!pip``) are allowed.

    Returns:
        ``(code, problem)``: the kept statements as source, and a one-line
        description of why the cell could not be used, or ``None``.
    """
    try:
        tree = ast.parse(_python_only(source))
    except SyntaxError as error:
        return "", f"syntax error on line {error.lineno}: {error.msg}"
    kept = [node for node in tree.body if _is_definition(node)]
    return ast.unparse(ast.Module(body=kept, type_ignores=[])), None


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
        try:
            ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return False
        return True
    return False


def _python_only(source: str) -> str:
    """Turn IPython syntax (magics, shell escapes) into plain Python calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)
