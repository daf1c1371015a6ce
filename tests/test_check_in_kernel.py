"""check() as a student uses it: in a real Jupyter kernel, on the functions the notebook defines."""

import time
from pathlib import Path

import nbformat
import pytest

from tfrs_course.lessons import solution_source, student_copy_with_answers
from tfrs_course.notebooks import execute_notebook

# Its tests share one expensive module fixture: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("check-in-kernel")

LESSON = "01_baseline_metrics"
FIXTURES = Path(__file__).parent / "fixtures" / "lesson01"


def _self_check_notebook(answers: dict[str, str]) -> nbformat.NotebookNode:
    """The lesson's setup, answer and visible-test cells: what a student runs to check work."""
    notebook = student_copy_with_answers(LESSON, answers)
    keep = []
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id == "setup" or grade_id in answers or grade_id.endswith("-visible-tests"):
            keep.append(cell)
    notebook.cells = keep
    # Run check a second time in a timed cell: the "warm kernel" case.
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "import time\nstarted = time.perf_counter()\ncheck('top_k_accuracy')\n"
            "print(f'WARM CHECK SECONDS {time.perf_counter() - started:.2f}')"
        )
    )
    return notebook


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    answers = {
        "select_top_users": solution_source(LESSON, "select_top_users"),
        "most_popular_items": (FIXTURES / "popular_ascending.py").read_text(),
        "top_k_accuracy": solution_source(LESSON, "top_k_accuracy"),
    }
    path = tmp_path_factory.mktemp("check") / "check.ipynb"
    nbformat.write(_self_check_notebook(answers), path)
    started = time.perf_counter()
    run = execute_notebook(path)
    print(f"kernel start + setup + 4 checks: {time.perf_counter() - started:.1f} s")
    return {cell.metadata["nbgrader"]["grade_id"]: cell for cell in run.notebook.cells if "nbgrader" in cell.metadata}, run


def _text(cell, kind):
    return "".join(
        output.get("text", "") if kind == "stream" else output.get("data", {}).get("text/plain", "")
        for output in cell.outputs
        if output.output_type == kind
    )


def test_check_reports_passes_with_the_points_as_the_cell_value(executed):
    cells, _ = executed
    cell = cells["top_k_accuracy-visible-tests"]
    assert _text(cell, "execute_result") == "2.0"
    assert "PASS" in _text(cell, "stream") and "FAIL" not in _text(cell, "stream")


def test_check_explains_a_failure_with_expected_got_and_hint(executed):
    cells, _ = executed
    cell = cells["most_popular_items-visible-tests"]
    report = _text(cell, "stream")
    assert _text(cell, "execute_result") == "0.0"
    assert "FAIL" in report and "expected:" in report and "got:" in report and "ascending" in report


def test_check_never_writes_to_stderr(executed):
    # nbgrader gives zero points to a test cell with any stderr output.
    cells, _ = executed
    for grade_id, cell in cells.items():
        streams = [output for output in cell.outputs if output.output_type == "stream"]
        assert all(output.name == "stdout" for output in streams), grade_id


def test_check_does_not_show_hidden_tests(executed):
    cells, _ = executed
    for grade_id, cell in cells.items():
        assert "hidden" not in _text(cell, "stream").replace("Hidden tests run when", ""), grade_id


def test_a_second_check_in_the_same_kernel_runs_again(executed):
    _, run = executed
    printed = _text(run.notebook.cells[-1], "stream")
    assert "top_k_accuracy: 2 of 2 points on the visible tests" in printed
    print(f"warm check('top_k_accuracy'): {printed.split('WARM CHECK SECONDS ')[1].split()[0]} s")
