"""The benchmarks' own logic: which submissions they grade, how they read cell times. No timings."""

import nbformat
import pytest

from tfrs_course.benchmarks import __main__ as benchmarks
from tfrs_course.benchmarks.grading import BROKEN, build_class
from tfrs_course.benchmarks.lessons import cell_seconds
from tfrs_course.grading.validation import SOLVED, UNTOUCHED
from tfrs_course.nbgrader_course import FAST_PARAMETERS

LESSON = "03_id_embeddings"


def _answer_cells(notebook):
    return [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("solution")]


def _parameters(notebook):
    return next(cell.source for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))


# Building a class lists the lesson's tests once per submission kind (pytest runs): slow.
@pytest.mark.slow
def test_a_class_takes_turns_between_right_untouched_broken_and_wrong_answers():
    notebooks = build_class(LESSON, 7)
    kinds = [name.split("_", 1)[1] for name in notebooks]
    assert kinds[:3] == [SOLVED, UNTOUCHED, BROKEN]
    assert len(notebooks) == 7 and len(set(kinds)) >= 4  # at least one submission of wrong answers
    solved, broken = notebooks["s000_" + SOLVED], notebooks["s002_" + BROKEN]
    # The broken copy is the solved one with its first answer cell made unparsable.
    with pytest.raises(SyntaxError):
        compile(_answer_cells(broken)[0].source, "cell", "exec")
    assert [cell.source for cell in _answer_cells(broken)[1:]] == [cell.source for cell in _answer_cells(solved)[1:]]
    for name, value in FAST_PARAMETERS.items():
        assert f"{name} = {value!r}" in _parameters(solved)
    # --full-notebooks leaves the parameters as the lesson ships them.
    solved = build_class(LESSON, 1, full_notebooks=True)["s000_" + SOLVED]
    assert all(f"{name} = {value!r}" not in _parameters(solved) for name, value in FAST_PARAMETERS.items())


def test_cell_seconds_reads_the_kernels_timestamps():
    notebook = nbformat.v4.new_notebook()
    timed = nbformat.v4.new_code_cell("\n\nmodel.fit(data)\nprint(1)")
    timed.metadata["execution"] = {
        "iopub.status.busy": "2026-01-01T10:00:00.500000Z",
        "shell.execute_reply": "2026-01-01T10:00:03.000000Z",
    }
    never_run = nbformat.v4.new_code_cell("x = 1")
    notebook.cells = [nbformat.v4.new_markdown_cell("# Title"), timed, never_run]
    assert cell_seconds(notebook) == [(2, 2.5, "model.fit(data)")]


def test_an_unknown_benchmark_is_refused_with_the_list():
    assert benchmarks.main(["benchmarks", "no-such-benchmark"]) == 2
