"""check() warns when an answer reads a variable that only the lesson's own cells define.

Grading runs the setup and parameters cells and the answer cells, not the lesson's
cells (loading data, training). An answer that reads ``train`` from a lesson cell
passes check() in the notebook and fails when graded, unless check() says so.
"""

import pytest

from tfrs_course.grading import check as check_module
from tfrs_course.grading.check import Checker, bound_names, lesson_only_names, lesson_variables_used
from tfrs_course.notebooks import solution_source

LESSON = "01_baseline_metrics"
# An answer in three cells of a notebook: a lesson cell's variable, a helper that reads
# it, and the answer that calls the helper. In the notebook every test passes.
NOTEBOOK_WITH_A_LESSON_VARIABLE = """
import numpy as np
import pandas as pd

train = "what a lesson cell loaded"


def _accuracy_at(ranks, k):
    assert train  # works in the notebook, where the lesson's cells ran
    return float(np.mean(np.asarray(ranks) < k)) if len(ranks) else 0.0
"""


def _notebook(source: str) -> dict:
    namespace = {"__name__": "__main__"}
    exec(compile(source, "<notebook cells>", "exec"), namespace)  # noqa: S102 - the test's own code
    return namespace


def test_bound_names_are_a_cells_top_level_names_only():
    source = (
        "import numpy as np\nimport os.path\nfrom math import log as ln\nx, (y, z) = 1, (2, 3)\n"
        "for row in []:\n    inner = row\nwith open('f') as handle:\n    pass\n"
        "def f(a):\n    local = a\nclass C:\n    attribute = 1\nsquares = [i * i for i in range(3)]\n%time q = 1\n"
    )
    assert bound_names(source) == {"np", "os", "ln", "x", "y", "z", "row", "inner", "handle", "f", "C", "squares"}
    # Grading skips line magics, so ``%time q = 1`` binds nothing there either.
    assert bound_names("this is not Python") == set()


def test_lesson_only_names_leave_out_what_grading_defines():
    names = lesson_only_names(LESSON)
    assert {"train", "test", "data"} <= names
    # The setup and parameters cells, and the answer cells, run when graded.
    assert not {"np", "pd", "check", "top_k_accuracy", "select_top_users", "NUM_USERS", "K"} & names


def test_an_answer_reading_a_lesson_variable_through_a_helper_is_found():
    namespace = _notebook(
        NOTEBOOK_WITH_A_LESSON_VARIABLE
        + "\ndef top_k_accuracy(retrieved, relevant, ks):\n    return {k: _accuracy_at([], k) for k in ks}\n"
    )
    assert lesson_variables_used("top_k_accuracy", namespace, LESSON) == ["train"]


def test_the_reference_answer_reads_no_lesson_variable():
    namespace = _notebook(NOTEBOOK_WITH_A_LESSON_VARIABLE + "\n" + solution_source(LESSON, "top_k_accuracy"))
    assert lesson_variables_used("top_k_accuracy", namespace, LESSON) == []
    assert lesson_variables_used("not_defined_yet", namespace, LESSON) == []


def test_a_class_answer_is_read_through_its_methods():
    namespace = _notebook(
        "train = 1\nclass Model:\n    def call(self):\n        return train\n    @property\n    def size(self):\n"
        "        return len(data)\ndata = []\n"
    )
    assert lesson_variables_used("Model", namespace, LESSON) == ["data", "train"]


def test_check_passes_and_warns(monkeypatch, capsys):
    namespace = _notebook(
        NOTEBOOK_WITH_A_LESSON_VARIABLE + "\n" + solution_source(LESSON, "top_k_accuracy") + "\n"
        "_reference = top_k_accuracy\n"
        "def top_k_accuracy(retrieved, relevant, ks):\n    assert train\n    return _reference(retrieved, relevant, ks)\n"
    )
    monkeypatch.setattr(check_module, "_notebook_namespace", lambda: namespace)
    result = Checker(LESSON)("top_k_accuracy")
    report = capsys.readouterr().out
    assert result == result.possible > 0, report
    assert "Note: top_k_accuracy uses `train`, which only the lesson's own cells define" in report, report
    assert "answer cell" in report


@pytest.mark.parametrize("exercise", ["top_k_accuracy", "select_top_users"])
def test_check_of_a_clean_answer_has_no_note(monkeypatch, capsys, exercise):
    namespace = _notebook(NOTEBOOK_WITH_A_LESSON_VARIABLE + "\n" + solution_source(LESSON, exercise))
    monkeypatch.setattr(check_module, "_notebook_namespace", lambda: namespace)
    Checker(LESSON)(exercise)
    assert "Note:" not in capsys.readouterr().out
