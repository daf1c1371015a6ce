"""check() and grading warn when an answer reads a variable grading will not have filled.

Grading runs the setup and parameters cells and the answer cells, not the lesson's
cells (loading data, training). An answer that reads ``train`` from a lesson cell
passes check() in the notebook and fails when graded, unless check() says so.
"""

import pandas as pd
import pytest

from tfrs_course.grading import check as check_module
from tfrs_course.grading import reads
from tfrs_course.grading.check import Checker, bound_names, lesson_only_names, lesson_variables_used
from tfrs_course.grading.program import AnswerCell, Program, build_program, read_notebook, run_cell, runnable_statements
from tfrs_course.grading.student_code import StudentCode, StudentCodeError, skipped_change_notes
from tfrs_course.layout import course
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


# --- globals that a statement grading skips fills ---------------------------------------------

# A helper cell the student added: the assignment runs when graded, the loop does not.
LOOP_FILLED_HELPER = """
RANK_KEYS = {}
for name in ("count", "id"):
    RANK_KEYS[name] = name == "count"
"""
ANSWER_READING_IT = """
def most_popular_items(train, k):
    counts = train.groupby("item_no").size().rename("count").reset_index().rename(columns={"item_no": "id"})
    order = counts.sort_values(list(RANK_KEYS), ascending=[not RANK_KEYS["count"], not RANK_KEYS["id"]])
    return order["id"].head(k).tolist()
"""


def test_skipped_changes_finds_what_loops_bare_calls_and_del_change():
    source = (
        "import numpy as np\n"
        "TABLE = {}\n"  # runs when graded: not a change grading skips
        "for key in 'ab':\n    TABLE[key] = 1\n"
        "SEEN.update({1})\n"
        "frame.drop(columns=['x'], inplace=True)\n"
        "print(LOOKED_AT)\n"  # reads, changes nothing
        "del GONE[0]\n"
        "while False:\n    def helper():\n        INSIDE = 1\n"  # a function's own names are not the cell's
        "%time WARM.append(1)\n"
    )
    changes = reads.skipped_changes(source)
    assert changes == {
        "key": (3, "a for loop"),
        "TABLE": (3, "a for loop"),
        "SEEN": (5, "a bare expression"),
        "frame": (6, "a bare expression"),
        "GONE": (8, "a del statement"),
        "helper": (9, "a while loop"),
    }
    assert reads.skipped_changes("this is not Python") == {}
    # Lines are the cell's own, blank lines it starts with included.
    assert reads.skipped_changes("\n\nfor i in x:\n    pass\n") == {"i": (3, "a for loop")}
    assert runnable_statements("\n\nx = (")[1].startswith("syntax error on line 3")


def test_grading_says_which_skipped_loop_an_answer_depended_on():
    program = Program(
        setup="import pandas as pd",
        answers=[AnswerCell("cell 4", LOOP_FILLED_HELPER), AnswerCell("most_popular_items", ANSWER_READING_IT)],
    )
    student = StudentCode.from_program(program)
    assert list(student.problems) == ["cell 4"]
    assert student.problems["cell 4"].startswith(
        "most_popular_items uses `RANK_KEYS`, which is changed by a for loop at line 3"
    )
    with pytest.raises(StudentCodeError) as raised:
        student.call("most_popular_items", pd.DataFrame({"user_no": ["u"], "item_no": ["i"]}), 1)
    # The failure itself now says why RANK_KEYS is empty, naming the added cell once.
    assert "raised KeyError" in str(raised.value) and "cell 4: most_popular_items uses `RANK_KEYS`" in str(raised.value)
    assert "cell cell" not in str(raised.value)


def test_the_reference_answers_depend_on_no_skipped_statement():
    for lesson in course().lesson_names():
        master = read_notebook(course().lesson(lesson).master_notebook)
        program = build_program(master, master, course().lesson(lesson).master_notebook)
        namespace = {"__name__": "student_answers"}
        exec(compile(program.setup, "<setup>", "exec"), namespace)  # noqa: S102 - the course's own code
        for answer in program.answers:
            run_cell(answer.source, namespace, answer.grade_id)
        assert skipped_change_notes(program.answers, namespace) == {}, lesson


def test_check_passes_and_warns_about_a_loop_filled_global(monkeypatch, capsys):
    namespace = _notebook(LOOP_FILLED_HELPER + ANSWER_READING_IT)
    # IPython keeps every cell the kernel ran in In; the lesson's own cells are left out.
    namespace["In"] = ["", solution_source(LESSON, "select_top_users"), LOOP_FILLED_HELPER, ANSWER_READING_IT]
    monkeypatch.setattr(check_module, "_notebook_namespace", lambda: namespace)
    result = Checker(LESSON)("most_popular_items")
    report = capsys.readouterr().out
    assert result == result.possible > 0, report
    assert (
        "Note: most_popular_items uses `RANK_KEYS`, which is changed by a for loop at line 3 of the cell numbered [2] when it ran"
        in report
    )
    assert "fill it inside a function, or in one assignment" in report
    # Filled by one assignment instead, nothing to say.
    namespace["In"][2] = 'RANK_KEYS = {name: name == "count" for name in ("count", "id")}'
    Checker(LESSON)("most_popular_items")
    assert "Note:" not in capsys.readouterr().out
