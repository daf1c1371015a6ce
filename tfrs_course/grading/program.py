"""Read notebooks and build the program that grading runs from them.

What runs when a notebook is graded (the rule students are told):

1. the lesson's setup cell and its parameters cell, from the instructor's copy
   (so ``NUM_USERS`` and the like have the lesson's values);
2. then, in notebook order, each answer cell and each cell the student added
   before the last answer cell (or before the last added cell that defines an
   exercise's function or class: an answer retyped into a new cell). In those
   cells every import, function and class
   definition, assignment (``K = 10``, ``helper = lambda x: x``,
   ``BIG = compute()``), ``try``/``if``/``with`` block runs, one top-level
   statement at a time; a statement that fails is reported and the rest still
   run. Bare expressions (a line that only shows a value), loops, magics
   (``%time``, ``%matplotlib``) and shell lines (``!pip ...``) are skipped; the
   body of a ``%%time``, ``%%timeit`` or ``%%capture`` cell runs as Python, and a
   cell in another language (``%%bash``) does not run.

The lesson's own cells (loading data, training) never run, which keeps
grading fast. Student code is only ever parsed and run in the grading worker,
never in the grader's own process: this module only selects cells.
"""

from __future__ import annotations

import ast
import json
import linecache
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

SETUP_CELL_ID = "setup"
PARAMETERS_CELL_ID = "parameters"
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
# Parsed, each JSON object or list costs the grader 60 bytes or more, whatever its size in the
# file: 50 MB of "{}," would take over a GB. Lesson notebooks hold a few thousand.
MAX_JSON_STRUCTURES = 2_000_000
# Lessons have about a hundred cells. Upgrading an old notebook takes the grader's time
# per cell, outside any submission's limits, so a notebook of many tiny cells is refused.
MAX_CELLS = 5_000
# Cell magics whose body is Python: the body defines the answer, the magic is dropped.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "memit", "debug"})
# Top-level statements that define things. Everything else at top level (bare
# expressions, loops, asserts, raise) is the notebook's exploring, not the answer.
_RUNS = (
    ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
    ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Try, ast.TryStar, ast.If, ast.With,
)  # fmt: skip


class NotebookError(ValueError):
    """A notebook cannot be read or lacks what grading needs. The message names the file."""


@dataclass
class AnswerCell:
    """A cell whose code grading runs: an answer cell (its nbgrader id) or a cell the student added."""

    grade_id: str
    source: str


@dataclass
class Program:
    """What grading executes: the instructor's setup, then the student's cells.

    Attributes:
        setup: the instructor's setup and parameters cells' source (trusted).
        answers: the student's answer cells and added cells, in notebook order,
            as written (IPython syntax included); see :func:`run_cell`.
        problems: per cell, why some or all of it could not be used; reported
            in feedback next to the failing tests.
        lesson: the lesson being graded, if known.
    """

    setup: str
    answers: list[AnswerCell]
    problems: dict[str, str] = field(default_factory=dict)
    lesson: str = ""


def read_notebook(path: str | Path) -> dict:
    """Load a notebook's JSON with errors that say what is wrong with the file.

    Args:
        path: an ``.ipynb`` file. A symbolic link or anything but a regular file is refused.

    Returns:
        The notebook as a dict, nbformat 4 (older formats are upgraded).

    Raises:
        NotebookError: missing, a link, too large, not UTF-8, not JSON, or not a notebook.
    """
    path = Path(path)
    try:
        info = os.lstat(path)
    except OSError:
        raise NotebookError(f"{path}: no such notebook") from None
    if stat.S_ISLNK(info.st_mode):
        raise NotebookError(f"{path}: a symbolic link, not a notebook; submit the notebook file itself")
    if not stat.S_ISREG(info.st_mode):
        raise NotebookError(f"{path}: not a regular file; submit the notebook file itself")
    if info.st_size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(
            f"{path}: {info.st_size:,} bytes is larger than the {MAX_NOTEBOOK_BYTES:,} bytes allowed; "
            "clear the outputs (Edit > Clear Outputs of All Cells) and save again"
        )
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(descriptor, "rb") as stream:
            data = stream.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as error:
        raise NotebookError(f"{path}: cannot be read ({error.strerror})") from error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NotebookError(f"{path}: not UTF-8 text (byte {error.start}); is it really a notebook?") from error
    structures = data.count(b"{") + data.count(b"[")  # an upper bound: text may hold them too
    if structures > MAX_JSON_STRUCTURES:
        raise NotebookError(
            f"{path}: {structures:,} JSON objects and lists, more than the {MAX_JSON_STRUCTURES:,} a notebook "
            "can have; clear the outputs (Edit > Clear Outputs of All Cells) and save again"
        )
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotebookError(
            f"{path}: not valid notebook JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from error
    except ValueError as error:  # a number of more digits than Python reads, say
        raise NotebookError(f"{path}: not valid notebook JSON ({error})") from None
    except RecursionError:
        raise NotebookError(f"{path}: not a notebook (its JSON is nested too deeply)") from None
    if not isinstance(notebook, dict):
        raise NotebookError(f"{path}: not a notebook (the JSON is not an object)")
    cells = _cell_count(notebook)
    if cells > MAX_CELLS:
        raise NotebookError(f"{path}: {cells:,} cells, more than the {MAX_CELLS:,} a lesson notebook can have")
    sheets = notebook.get("worksheets")
    if isinstance(sheets, list) and len(sheets) > MAX_CELLS:  # each costs the upgrade as a cell does
        raise NotebookError(f"{path}: {len(sheets):,} worksheets, where an old notebook has one")
    version = notebook.get("nbformat")
    if isinstance(version, int) and not isinstance(version, bool) and 1 <= version < 4:
        notebook = _upgraded(notebook, path)
    elif version != 4:
        raise NotebookError(f"{path}: nbformat {version!r}; save it with Jupyter 4 or newer (nbformat 4)")
    _check_structure(notebook, path)
    return notebook


def _cell_count(notebook: dict) -> int:
    """How many cells a notebook holds, in nbformat 4's list or in an older format's worksheets."""
    listed = notebook.get("cells")
    count = len(listed) if isinstance(listed, list) else 0
    worksheets = notebook.get("worksheets")
    for sheet in worksheets if isinstance(worksheets, list) else []:
        cells = sheet.get("cells") if isinstance(sheet, dict) else None
        count += len(cells) if isinstance(cells, list) else 0
    return count


def _upgraded(notebook: dict, path: Path) -> dict:
    """An older notebook (nbformat 1-3) converted to nbformat 4, as Jupyter would on opening it."""
    import nbformat

    try:
        converted = nbformat.convert(nbformat.from_dict(_without_outputs(notebook)), 4)
        return json.loads(nbformat.writes(converted, version=4))
    except Exception as error:  # noqa: BLE001 - any failure means the file is not a usable old notebook
        raise NotebookError(
            f"{path}: nbformat {notebook.get('nbformat')} notebook that could not be upgraded to nbformat 4 "
            f"({type(error).__name__}); open and save it in Jupyter, then submit again"
        ) from None


def _without_outputs(notebook: dict) -> dict:
    """An old notebook with only what grading reads: no outputs, and no metadata but nbgrader's.

    Upgrading validates every output against nbformat's schema, one by one, and copies
    every metadata value: a notebook of a few MB of tiny outputs took the grader's
    process minutes, outside any limit.
    """

    def bare(cells: object) -> object:
        if not isinstance(cells, list):
            return cells
        return [_bare_cell(cell) if isinstance(cell, dict) else cell for cell in cells]

    stripped = dict(notebook, metadata={}) if "metadata" in notebook else dict(notebook)
    if "cells" in notebook:
        stripped["cells"] = bare(notebook["cells"])
    sheets = notebook.get("worksheets")
    if isinstance(sheets, list):
        stripped["worksheets"] = [
            dict(sheet, cells=bare(sheet["cells"])) if isinstance(sheet, dict) and "cells" in sheet else sheet
            for sheet in sheets
        ]
    return stripped


def _bare_cell(cell: dict) -> dict:
    bare = dict(cell, metadata=_nbgrader_only(cell["metadata"])) if "metadata" in cell else dict(cell)
    if "outputs" in cell:
        bare["outputs"] = []
    return bare


def _nbgrader_only(metadata: object) -> object:
    if not isinstance(metadata, dict):
        return metadata  # refused by _check_structure, after the upgrade
    return {"nbgrader": metadata["nbgrader"]} if "nbgrader" in metadata else {}


def _check_structure(notebook: dict, path: Path) -> None:
    """Every field grading reads has the type nbformat 4 gives it, or a NotebookError naming the cell."""
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise NotebookError(f"{path}: not a notebook (no list of cells)")
    if not isinstance(notebook.get("metadata", {}), dict):
        raise NotebookError(f"{path}: not a notebook (its metadata is not an object)")
    for number, cell in enumerate(cells, start=1):
        where = f"{path}: cell {number}"
        if not isinstance(cell, dict):
            raise NotebookError(f"{where} is not a cell (a {type(cell).__name__}, not an object)")
        if not isinstance(cell.get("cell_type", ""), str) or not isinstance(cell.get("id", ""), str):
            raise NotebookError(f"{where}: its cell_type or id is not text")
        if not isinstance(cell.get("metadata", {}), dict):
            raise NotebookError(f"{where}: its metadata is not an object")
        source = cell.get("source", "")
        if not isinstance(source, str) and not (
            isinstance(source, list) and all(isinstance(line, str) for line in source)
        ):
            raise NotebookError(f"{where}: its source is not text")


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _nbgrader(cell: dict) -> dict:
    metadata = cell.get("metadata", {})
    nbgrader = metadata.get("nbgrader", {}) if isinstance(metadata, dict) else {}
    return nbgrader if isinstance(nbgrader, dict) else {}


def grade_id(cell: dict) -> str | None:
    value = _nbgrader(cell).get("grade_id")
    return value if isinstance(value, str) else None


def is_answer_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and bool(_nbgrader(cell).get("solution"))


def _cell_with_id(master: dict, cell_id: str) -> dict | None:
    for cell in master["cells"]:
        if grade_id(cell) == cell_id or (cell.get("id") == cell_id and not _nbgrader(cell)):
            return cell
    return None


def setup_source(master: dict, master_path: Path) -> str:
    """The master notebook's setup cell (nbgrader grade_id ``setup``), then its parameters cell."""
    setup = _cell_with_id(master, SETUP_CELL_ID)
    if setup is None:
        raise NotebookError(f"{master_path}: no cell with nbgrader grade_id {SETUP_CELL_ID!r}")
    parameters = _cell_with_id(master, PARAMETERS_CELL_ID)
    return cell_source(setup) + ("\n\n" + cell_source(parameters) if parameters is not None else "")


def answer_ids(master: dict) -> list[str]:
    """The grade ids of the master notebook's answer cells, in order."""
    return [grade_id(cell) for cell in master["cells"] if is_answer_cell(cell)]


def normalised_source(source: str) -> str:
    """A cell's source without trailing spaces and outer blank lines: how cells are compared."""
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def build_program(submission: dict, master: dict, master_path: Path, lesson: str = "") -> Program:
    """The program that grades ``submission``: master's setup, the student's answer and added cells.

    Answer cells are found by their nbgrader grade id. If a notebook lost its cell
    metadata (some editors drop it), cells that define one of the exercises'
    functions or classes are the answer cells. A cell the student added is a
    code cell before the last answer cell that is neither a graded cell nor one
    of the lesson's own cells (by cell id or by identical source), or after it up
    to the last such cell that defines an exercise's function or class (an answer
    retyped into a new cell). Nothing here parses student code: that happens in
    the grading worker.

    Args:
        submission: the student's notebook (as from :func:`read_notebook`).
        master: the instructor's notebook of the same lesson.
        master_path: where ``master`` was read from, for messages.
        lesson: the lesson's name, passed on to the worker.

    Returns:
        A :class:`Program`.
    """
    setup = setup_source(master, master_path)
    wanted = answer_ids(master)
    cells = submission["cells"]
    answer_at = {
        position: grade_id(cell)
        for position, cell in enumerate(cells)
        if is_answer_cell(cell) and grade_id(cell) in wanted
    }
    seen: set[str] = set()
    for label in answer_at.values():
        if label in seen:
            raise NotebookError(
                f"the answer cell {label!r} appears more than once (a copied cell?); keep one copy of it and submit again"
            )
        seen.add(label)
    if not answer_at:
        names = _exercise_names(master, wanted)
        answer_at = {
            position: f"cell {position + 1}"
            for position, cell in enumerate(cells)
            if cell.get("cell_type") == "code" and _defines_any(cell_source(cell), names)
        }
    lesson_ids = {cell.get("id") for cell in master["cells"] if cell.get("id")}
    lesson_sources = {
        normalised_source(cell_source(cell)) for cell in master["cells"] if cell.get("cell_type") == "code"
    }
    last = max(answer_at, default=-1)
    # An answer retyped into a new cell (no metadata), in place of its answer cell or below it,
    # runs even after the last answer cell, as it does in Jupyter and nbgrader.
    if answer_at:
        names = _exercise_names(master, wanted)
        last = max(
            [last]
            + [
                position
                for position, cell in enumerate(cells)
                if _is_added(cell, lesson_ids, lesson_sources) and _defines_any(cell_source(cell), names)
            ]
        )
    answers = []
    for position, cell in enumerate(cells[: last + 1]):
        if position in answer_at:
            answers.append(AnswerCell(answer_at[position], cell_source(cell)))
        elif _is_added(cell, lesson_ids, lesson_sources):
            answers.append(AnswerCell(f"cell {position + 1}", cell_source(cell)))
    return Program(setup=setup, answers=answers, lesson=lesson)


def _is_added(cell: dict, lesson_ids: set, lesson_sources: set[str]) -> bool:
    if cell.get("cell_type") != "code" or _nbgrader(cell):
        return False
    if cell.get("id") in lesson_ids:
        return False
    source = normalised_source(cell_source(cell))
    return bool(source) and source not in lesson_sources


def _exercise_names(master: dict, wanted: list[str]) -> set[str]:
    names: set[str] = set()
    for cell in master["cells"]:
        if grade_id(cell) in wanted:
            names |= set(_DEFINITION.findall(cell_source(cell)))
    return names


# A top-level ``def name`` or ``class name``; a regular expression, so that nothing
# in the grader's process parses student code.
_DEFINITION = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)


def _defines_any(source: str, names: set[str]) -> bool:
    return bool(set(_DEFINITION.findall(source)) & names)


# --- running a cell (in the worker) ---------------------------------------------------


class _NoShell:
    """Stands in for IPython while grading: magics and shell lines do nothing and return None."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def python_source(source: str) -> str:
    """A cell's code as plain Python: magics and shell lines become no-op calls.

    A ``%%time`` (``%%timeit``, ``%%capture``...) cell keeps its body; a cell in
    another language (``%%bash``, ``%%writefile``...) becomes empty.
    """
    from IPython.core.inputtransformer2 import TransformerManager

    lines = source.splitlines(keepends=True)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("%%"):
            magic = stripped[2:].split(maxsplit=1)[0] if stripped[2:].strip() else ""
            if magic not in PYTHON_CELL_MAGICS:
                return ""
            lines[index] = "# " + line  # a comment, not a blank line, which IPython would drop: line numbers stay
        break
    transformed = TransformerManager().transform_cell("".join(lines))
    # IPython drops the blank lines a cell starts with; put them back so that line numbers are the cell's.
    blank = next((index for index, line in enumerate(lines) if line.strip()), len(lines))
    return "\n" * blank + transformed


def runnable_statements(source: str) -> tuple[list[ast.stmt], str | None]:
    """The top-level statements of a cell that grading runs (see the module's rule).

    Returns:
        ``(statements, problem)``: the statements, and a one-line description of
        why the cell could not be used (a syntax error, say), or ``None``.
    """
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError as error:
        where = f" on line {error.lineno}" if error.lineno else ""  # a NUL byte has no line
        return [], f"syntax error{where}: {error.msg}"
    except (RecursionError, MemoryError, ValueError) as error:
        return [], f"the cell could not be parsed ({type(error).__name__}: {error})"
    return [node for node in tree.body if top_level_runs(node)], None


def top_level_runs(statement: ast.stmt) -> bool:
    """Whether grading runs this top-level statement of a cell (see the module's rule)."""
    return isinstance(statement, _RUNS)


def definitions_only(source: str) -> tuple[str, str | None]:
    """The statements of a cell that grading runs, as source, and a problem or ``None``."""
    statements, problem = runnable_statements(source)
    return ast.unparse(ast.Module(body=statements, type_ignores=[])), problem


def _remembered_source(source: str, filename: str) -> str:
    """Keep a cell's source where ``inspect.getsource`` finds it, as IPython does; returns its file name.

    ``model.fit`` runs a layer's ``call`` through AutoGraph, which rewrites Python
    ``if`` and ``for`` on tensors into graph operations, but only when it can read
    the method's source. In Jupyter it can; without this, grading would run the
    same ``call`` unconverted, and a tower that trains in the lesson would fail
    its tests. A name already taken by a different source gets a number, so that
    one process can hold several notebooks' cells.
    """
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    name, copy = filename, 1
    while name in linecache.cache and linecache.cache[name][2] != lines:
        copy += 1
        name = f"{filename[:-1]} ({copy})>"
    # A modification time of None tells linecache.checkcache that no file backs the entry.
    linecache.cache[name] = (len(source), None, lines, name)
    return name


# The number _remembered_source adds to a cell's file name when the name was taken.
_COPY_NUMBER = re.compile(r"<(cell [^<>\n]*?) \(\d+\)>")


def without_copy_numbers(text: str) -> str:
    """``text`` with cells named as the student knows them: ``<cell NAME>``, not ``<cell NAME (2)>``."""
    return _COPY_NUMBER.sub(r"<\1>", text)


def cell_name(label: str) -> str:
    """How messages name a cell: ``cell select_top_users`` for an answer cell, ``cell 7`` for an added one."""
    return label if label.startswith("cell ") else f"cell {label}"


def run_cell(source: str, namespace: dict, label: str) -> str | None:
    """Run a cell's runnable statements in ``namespace``, one at a time.

    Returns:
        A one-line description of the first problem (a syntax error, or the first
        statement that raised), or ``None``. Statements after a failing one still run.
    """
    namespace.setdefault("get_ipython", _NoShell)
    statements, problem = runnable_statements(source)
    filename = _remembered_source(python_source(source), f"<{cell_name(label)}>") if statements else ""
    for statement in statements:
        try:
            code = compile(ast.Module(body=[statement], type_ignores=[]), filename, "exec")
            exec(code, namespace)  # noqa: S102 - student code, in the grading worker
        except Exception as error:  # noqa: BLE001 - any failure is the student's to see
            problem = problem or (f"line {statement.lineno} raised {type(error).__name__}: {error}")
    return problem
