"""Each realistic mistake, checked as a student checks it: ``check()`` in a real Jupyter kernel.

The lesson validation (tests/test_lesson_validation.py) decides whether the visible
tests catch a mistake from the batch grader's run of them, in a sandboxed worker.
A student runs the same tests through ``check("<exercise>")`` in a Jupyter kernel,
and the two can differ. In a kernel, IPython keeps each cell's source in ``linecache``,
so AutoGraph can read and convert a function a cell defines (``len`` of a tensor
works there); a grader that runs the same code without its source leaves it
unconverted. A mistake the grader catches then passes the student's own check, and
its ``visible`` flag promises a warning the student never gets.

Lessons 1 and 6 are NumPy and pandas, but a kernel differs from the grading worker there
too: lesson 6's memory test measures ``blocked_top_k`` with ``tracemalloc`` in the process
that runs it, which is the kernel itself for ``check()``, with IPython's own allocations and
history around it.

So for each lesson, one kernel runs the lesson's setup and parameters cells and
every answer cell with the reference solution, then, for every entry of the lesson's
mistakes.toml (mistakes and honest alternatives alike): a cell with the entry's answer,
a ``check("<exercise>")`` cell, and a cell that puts the reference solution back, so
that the next entry starts from a solved notebook. Each entry's visible tests that fail
in the kernel must be exactly the visible ones among its ``failing_tests``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import nbformat
import pytest

from tfrs_course import layout
from tfrs_course.grading.check import bound_names
from tfrs_course.grading.runner import exercise_points, run_tests
from tfrs_course.grading.validation import Mistake, load_mistakes
from tfrs_course.notebooks import execute_notebook, solution_source, student_copy_with_answers

# Every lesson: 2-5 for graph mode and AutoGraph, 1 and 6 for what a kernel's process changes
# (lesson 6 measures memory in it).
LESSONS = (
    "01_baseline_metrics",
    "02_keras_retrieval",
    "03_id_embeddings",
    "04_content_based",
    "05_hybrid",
    "06_evaluation_serving",
)
MISTAKES = {lesson: load_mistakes(layout.lesson(lesson).fixtures) for lesson in LESSONS}

# The cells grading runs besides the answers (tfrs_course/grading/program.py). The lessons'
# setup cells load no data, so the parameters stay the lesson's own: answers may read them,
# and the grader runs them unchanged.
SETUP_CELLS = ("setup", "parameters")

# One line per test in a check's report (tfrs_course/grading/check.py, format_report).
TEST_LINE = re.compile(r"^  (PASS|FAIL)  (\S+) \(", re.MULTILINE)


def _marks(lesson: str) -> list[pytest.MarkDecorator]:
    """A lesson's cases share its kernel run: keep them on one xdist worker. Kernels are slow tests."""
    return [pytest.mark.xdist_group(f"kernel-{lesson}"), pytest.mark.slow]


BY_LESSON = [pytest.param(lesson, marks=_marks(lesson)) for lesson in LESSONS]
CASES = [pytest.param(lesson, name, marks=_marks(lesson)) for lesson in LESSONS for name in sorted(MISTAKES[lesson])]


def visible_tests(lesson: str) -> dict[str, frozenset[str]]:
    """Exercise -> the names of its visible tests, as ``check()`` selects them.

    The grader's own selection (visible tests only), for a student whose code is never
    built: every selected test then fails at its set-up, which names it without running it.
    """

    def never_built():
        raise LookupError("only the names of the tests are wanted")

    run = run_tests(lesson, {"names only": never_built}, visible=True, hidden=False)
    names: dict[str, set[str]] = {}
    for result in run.results:
        assert not result.hidden and not result.passed, result
        names.setdefault(result.exercise, set()).add(result.test)
    assert set(names) == set(exercise_points(lesson)), f"{lesson}: an exercise has no visible test"
    return {exercise: frozenset(tests) for exercise, tests in names.items()}


def _cell(source: str, name: str, *, may_raise: bool = False) -> nbformat.NotebookNode:
    # A check that earns no points raises; the run must go on past it, as nbgrader's does.
    tags = ["raises-exception"] if may_raise else []
    return nbformat.v4.new_code_cell(source, metadata={"name": name, "tags": tags})


def kernel_notebook(lesson: str) -> nbformat.NotebookNode:
    """The solved lesson's setup and answer cells, the reference checked, then each entry in turn."""
    exercises = list(exercise_points(lesson))
    solved = {exercise: solution_source(lesson, exercise) for exercise in exercises}
    notebook = student_copy_with_answers(lesson, solved)
    notebook.cells = [
        cell
        for cell in notebook.cells
        if cell.id in SETUP_CELLS or cell.metadata.get("nbgrader", {}).get("grade_id") in solved
    ]
    # The reference itself, first: an entry's result means nothing if the reference fails in the kernel.
    notebook.cells += [
        _cell(f"check({exercise!r})", f"reference/{exercise}/check", may_raise=True) for exercise in exercises
    ]
    for name, mistake in sorted(MISTAKES[lesson].items()):
        sources = {"answer": mistake.answer.read_text()}
        if mistake.helper_cell is not None:
            sources = {"helper": mistake.helper_cell.read_text(), **sources}
        # A wrong answer may raise where it is defined; grading records that and goes on.
        notebook.cells += [_cell(source, f"{name}/{part}", may_raise=True) for part, source in sources.items()]
        notebook.cells.append(_cell(f"check({mistake.exercise!r})", f"{name}/check", may_raise=True))
        # Its exercise's reference, and any other exercise's its cells redefine; a restore must not raise.
        redefined = {mistake.exercise}.union(*map(bound_names, sources.values()))
        notebook.cells += [
            _cell(solved[exercise], f"{name}/restore {exercise}") for exercise in exercises if exercise in redefined
        ]
    return notebook


@dataclass(frozen=True)
class Checked:
    """What an entry's ``check()`` cell showed, its tests by outcome, and errors of the cells that define its answer."""

    report: str
    passed: frozenset[str]
    failed: frozenset[str]
    errors: dict[str, str]


def _shown(cell: nbformat.NotebookNode) -> str:
    """What a cell printed, and the report or traceback of an error it raised (as Jupyter shows it)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            # For NoPointsYet, the report itself (its _render_traceback_); otherwise the traceback, error included.
            parts.append("\n".join(output.traceback))
    return "".join(parts)


def _error(cell: nbformat.NotebookNode) -> str:
    return next((f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"), "")


@pytest.fixture(scope="module")
def kernel_checks(tmp_path_factory):
    """Runs each lesson's kernel once, on first use: check name -> :class:`Checked`."""
    done: dict[str, dict[str, Checked]] = {}

    def checked(lesson: str) -> dict[str, Checked]:
        if lesson not in done:
            path = tmp_path_factory.mktemp(lesson) / f"{lesson}.ipynb"
            nbformat.write(kernel_notebook(lesson), path)
            started = time.perf_counter()
            run = execute_notebook(path)
            print(f"{lesson}: kernel with {len(MISTAKES[lesson])} entries ran in {time.perf_counter() - started:.1f} s")
            cells = {cell.metadata["name"]: cell for cell in run.notebook.cells if "name" in cell.metadata}
            results = {}
            for name in [*(f"reference/{exercise}" for exercise in exercise_points(lesson)), *MISTAKES[lesson]]:
                report = _shown(cells[f"{name}/check"])
                outcomes = TEST_LINE.findall(report)
                around = [f"{name}/{part}" for part in ("helper", "answer")]
                results[name] = Checked(
                    report=report,
                    passed=frozenset(test for mark, test in outcomes if mark == "PASS"),
                    failed=frozenset(test for mark, test in outcomes if mark == "FAIL"),
                    errors={cell: _error(cells[cell]) for cell in around if cell in cells and _error(cells[cell])},
                )
            done[lesson] = results
        return done[lesson]

    return checked


@pytest.fixture(scope="module")
def visible():
    """Each lesson's visible tests by exercise, read once per lesson."""
    done: dict[str, dict[str, frozenset[str]]] = {}

    def of(lesson: str) -> dict[str, frozenset[str]]:
        if lesson not in done:
            done[lesson] = visible_tests(lesson)
        return done[lesson]

    return of


@pytest.mark.parametrize("lesson", BY_LESSON)
def test_the_reference_passes_every_visible_test_in_the_kernel(kernel_checks, visible, lesson):
    for exercise, tests in visible(lesson).items():
        checked = kernel_checks(lesson)[f"reference/{exercise}"]
        assert (checked.passed, checked.failed) == (tests, frozenset()), (
            f"{lesson}: the reference {exercise} in a kernel passed {sorted(checked.passed)}, failed "
            f"{sorted(checked.failed)}; its visible tests are {sorted(tests)}. The report:\n{checked.report}"
        )


@pytest.mark.parametrize(("lesson", "name"), CASES)
def test_check_in_the_kernel_fails_the_visible_tests_the_grader_fails(kernel_checks, visible, lesson, name):
    mistake: Mistake = MISTAKES[lesson][name]
    tests = visible(lesson)[mistake.exercise]
    checked = kernel_checks(lesson)[name]
    where = f"{lesson}, [{name}] ({mistake.exercise})"
    assert not checked.errors, f"{where}: a cell that defines its answer raised in the kernel: {checked.errors}"
    assert checked.passed | checked.failed == tests, (
        f"{where}: check() reported the tests {sorted(checked.passed | checked.failed)}, not the exercise's visible "
        f"tests {sorted(tests)}. The report:\n{checked.report}"
    )
    expected = mistake.failing_tests & tests
    if mistake.is_alternative:
        what = "an honest alternative must fail no visible test"
    elif mistake.visible:
        what = "flagged visible = true: check() must fail at least one visible test, those the grader fails"
    else:
        what = "caught by hidden tests only: every visible test must pass"
    assert checked.failed == expected, (
        f"{where}: {what}. In a Jupyter kernel check() failed {sorted(checked.failed) or 'no visible test'}; "
        f"mistakes.toml expects {sorted(expected) or 'none'} (its visible failing tests). The report:\n"
        f"{checked.report}"
    )
    assert checked.failed or not mistake.visible, f"{where}: flagged visible, but mistakes.toml names no visible test"
