"""Which global names an answer reads, and which of them a skipped statement changes.

Grading runs only some top-level statements of a student's cells (see
:mod:`tfrs_course.grading.program`). An answer that reads a global filled by a
loop, or by a bare call such as ``RANKS.update(...)``, works in the notebook and
fails when graded. Both ``check()`` (in the student's kernel) and the grading
worker use these functions to say so.
"""

from __future__ import annotations

import ast
import dis
import inspect
from typing import Any

from tfrs_course.grading.program import python_source, top_level_runs

# Methods that change the object they are called on (lists, dicts, sets, arrays, DataFrames).
CHANGING_METHODS = frozenset(
    {
        "add", "append", "clear", "discard", "extend", "fill", "insert", "pop", "popitem",
        "put", "remove", "reverse", "setdefault", "sort", "update", "__setitem__",
    }
)  # fmt: skip
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def global_reads(value: Any) -> set[str]:
    """The global names a function, or the methods of a class, read when they run."""
    if inspect.isclass(value):
        members = list(vars(value).values())
        functions = [f for m in members for f in (m, getattr(m, "__func__", None), getattr(m, "fget", None))]
    else:
        functions = [value]
    codes = [function.__code__ for function in functions if inspect.isfunction(function)]
    reads: set[str] = set()
    while codes:
        code = codes.pop()
        reads.update(
            instruction.argval
            for instruction in dis.get_instructions(code)
            if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME")
        )
        codes.extend(constant for constant in code.co_consts if inspect.iscode(constant))
    return reads


def names_read(name: str, namespace: dict[str, Any]) -> set[str]:
    """The global names ``namespace[name]`` reads, and those read by the notebook's own functions it calls.

    Args:
        name: a function or class in ``namespace`` (nothing is read if it is missing).
        namespace: the notebook's globals; its ``__name__`` tells the notebook's own
            functions and classes from imported ones.

    Returns:
        The names, including names the namespace does not (yet) define.
    """
    module = namespace.get("__name__")
    found: set[str] = set()
    seen: set[int] = set()
    pending = [namespace[name]] if name in namespace else []
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        for read in global_reads(value):
            found.add(read)
            called = namespace.get(read)
            if (inspect.isfunction(called) or inspect.isclass(called)) and called.__module__ == module:
                pending.append(called)
    return found


def skipped_changes(source: str) -> dict[str, tuple[int, str]]:
    """The global names that a cell's skipped top-level statements change.

    A statement changes a name when it binds or deletes it (a loop's target, an
    assignment inside a loop), assigns to an item or attribute of it
    (``RANKS[user] = ...``), or calls one of :data:`CHANGING_METHODS` on it
    (``RANKS.update(...)``) or a method with ``inplace=True``. Code inside
    functions and classes defined there is not the cell's.

    Returns:
        Each name -> ``(line, what)``: the first skipped statement that changes it,
        as its line in the cell and a few words ("a for loop", "a bare expression").
        Empty for a cell that does not parse.
    """
    try:
        tree = ast.parse(python_source(source))
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return {}
    changes: dict[str, tuple[int, str]] = {}
    for statement in tree.body:
        if top_level_runs(statement):
            continue
        what = _kind(statement)
        for name in _changed_names(statement):
            changes.setdefault(name, (statement.lineno, what))
    return changes


def _kind(statement: ast.stmt) -> str:
    kinds = {
        ast.For: "a for loop", ast.AsyncFor: "a for loop", ast.While: "a while loop",
        ast.Expr: "a bare expression", ast.Delete: "a del statement", ast.Match: "a match statement",
    }  # fmt: skip
    return kinds.get(type(statement), f"a top-level {type(statement).__name__.lower()} statement")


def _changed_names(statement: ast.stmt) -> set[str]:
    names: set[str] = set()
    pending: list[ast.AST] = [statement]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _SCOPES):
                # Defined by the skipped statement; what its body binds is its own.
                names.update([child.name] if not isinstance(child, ast.Lambda) else [])
                continue
            pending.append(child)
            if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
                names.add(child.id)
            elif isinstance(child, (ast.Subscript, ast.Attribute)) and isinstance(child.ctx, (ast.Store, ast.Del)):
                names.update(_base_name(child.value))
            elif isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                in_place = any(
                    keyword.arg == "inplace" and isinstance(keyword.value, ast.Constant) and keyword.value.value is True
                    for keyword in child.keywords
                )
                if child.func.attr in CHANGING_METHODS or in_place:
                    names.update(_base_name(child.func.value))
    return names


def _base_name(node: ast.AST) -> set[str]:
    """``RANKS`` for ``RANKS``, ``RANKS[k]``, ``RANKS.table[k]``...; nothing for anything else."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return {node.id} if isinstance(node, ast.Name) else set()


def skipped_change_note(reader: str, name: str, where: str, what: str) -> str:
    """One sentence: a skipped statement changes ``name``, which ``reader`` uses, and what to do instead."""
    return (
        f"{reader} uses `{name}`, which is changed by {what} at {where}. Grading skips top-level loops, bare "
        "expressions and del statements (it runs imports, definitions, assignments and if/try/with blocks), "
        f"so `{name}` will not be filled when graded: fill it inside a function, or in one assignment "
        "(a comprehension, say)."
    )
