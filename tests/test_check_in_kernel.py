"""check() as a student uses it: in a real Jupyter kernel, on the functions the notebook defines."""

import time

import nbformat
import pytest

from tfrs_course import layout
from tfrs_course.notebooks import execute_notebook, solution_source, student_copy_with_answers

# Its tests share one expensive module fixture: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("check-in-kernel")

LESSON = "01_baseline_metrics"
FIXTURES = layout.lesson("01_baseline_metrics").fixtures


def _self_check_notebook(answers: dict[str, str]) -> nbformat.NotebookNode:
    """The lesson's setup, answer and visible-test cells: what a student runs to check work."""
    notebook = student_copy_with_answers(LESSON, answers)
    keep = []
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id == "setup" or grade_id in answers or grade_id.endswith("-visible-tests"):
            keep.append(cell)
    notebook.cells = keep
    # The same failing check again (the code-level hint now appears), and on request;
    # then an answer that raises inside the student's own code.
    extra = {
        "again": 'check("most_popular_items")',
        "asked": 'check("select_top_users", hint=True)',
        "define_raising": (FIXTURES / "top_users_numeric_tie_break.py").read_text(),
        "raising": 'check("select_top_users")',
    }
    for name, source in extra.items():
        notebook.cells.append(nbformat.v4.new_code_cell(source, metadata={"name": name}))
    # A check with no points raises; let the run go on past it, as nbgrader does.
    for cell in notebook.cells:
        if cell.source.startswith("check("):
            cell.metadata.setdefault("tags", []).append("raises-exception")
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
        "select_top_users": (FIXTURES / "top_users_no_tie_break.py").read_text(),
        "most_popular_items": (FIXTURES / "popular_ascending.py").read_text(),
        "top_k_accuracy": solution_source(LESSON, "top_k_accuracy"),
    }
    path = tmp_path_factory.mktemp("check") / "check.ipynb"
    nbformat.write(_self_check_notebook(answers), path)
    started = time.perf_counter()
    run = execute_notebook(path)
    print(f"kernel start + setup + 4 checks: {time.perf_counter() - started:.1f} s")
    named = {
        cell.metadata.get("nbgrader", {}).get("grade_id") or cell.metadata.get("name"): cell
        for cell in run.notebook.cells
    }
    return {name: cell for name, cell in named.items() if name}, run


def _error(cell):
    """The report of a check that raised NoPointsYet, as Jupyter shows it."""
    errors = [output for output in cell.outputs if output.output_type == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "NoPointsYet", cell.outputs
    return "\n".join(errors[0]["traceback"])


def _text(cell, kind):
    return "".join(
        output.get("text", "") if kind == "stream" else output.get("data", {}).get("text/plain", "")
        for output in cell.outputs
        if output.output_type == kind
    )


def test_check_reports_passes_with_the_points_as_the_cell_value(executed):
    cells, _ = executed
    cell = cells["top_k_accuracy-visible-tests"]
    # nbgrader reads partial credit from the plain text; people read the rich form.
    assert _text(cell, "execute_result") == "2.0"
    (result,) = [output for output in cell.outputs if output.output_type == "execute_result"]
    assert "top_k_accuracy: 2 of 2 points on the visible tests" in result["data"]["text/html"]
    assert "PASS" in _text(cell, "stream") and "FAIL" not in _text(cell, "stream")


def test_partial_credit_is_the_number_labelled_for_people(executed):
    cells, _ = executed
    cell = cells["select_top_users-visible-tests"]
    assert _text(cell, "execute_result") == "0.5"
    (result,) = [output for output in cell.outputs if output.output_type == "execute_result"]
    assert "0.5 of 1 point" in result["data"]["text/html"]
    report = _text(cell, "stream")
    assert "FAIL  test_select_top_users_breaks_ties_by_id_as_text" in report and "text order" in report
    assert "more help:" not in report and 'check("select_top_users", hint=True)' in report


def test_a_check_with_no_points_fails_with_expected_got_and_hint(executed):
    # An error, not "0.0": nbgrader and its Validate button report a failure, not partial credit.
    cells, _ = executed
    cell = cells["most_popular_items-visible-tests"]
    report = _error(cell)
    assert _text(cell, "execute_result") == ""
    assert "most_popular_items: 0 of 1 point" in report
    assert "FAIL" in report and "expected:" in report and "got:" in report and "ascending" in report
    assert "Traceback" not in report and "tfrs_course" not in report  # the report alone, not the kit's frames


def test_the_code_level_hint_comes_when_the_same_test_fails_again(executed):
    cells, _ = executed
    again, asked = cells["again"], cells["asked"]
    assert "more help:" not in _error(cells["most_popular_items-visible-tests"])
    assert "more help:" in _error(again) and "Stuck?" not in _error(again)
    assert "more help:" in _text(asked, "stream")


def test_an_exception_is_reported_with_the_call_the_students_frames_and_the_hint(executed):
    cells, _ = executed
    report = _error(cells["raising"])
    assert "select_top_users(DataFrame with 6 rows" in report  # the call with its inputs
    assert "raised ValueError: invalid literal for int()" in report
    assert "in select_top_users" in report and "hint: Rank users by their number of rows" in report
    assert "site-packages" not in report and "tfrs_course" not in report  # the student's frames only


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
