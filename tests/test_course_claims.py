"""The course's claims, checked on what the lessons record when `tfrs-course demo` runs them.

The demo executes every solution notebook on the default synthetic twin, in a
scratch data folder, and prints the comparison table. Every sentence a lesson
states as a result sits next to a `tfrs_course.claims.claim` that checks it on
the run; the demo fails when one does not hold, and so does this test. The
fast tests below show that a false claim is caught.
"""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tfrs_course import claims, records
from tfrs_course import demo as demo_module
from tfrs_course.environment import subprocess_environment
from tfrs_course.lessons import lesson_names

# Its tests share one expensive module fixture: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("demo")

POPULARITY, ID_MODEL, CONTENT, HYBRID = "Most popular 100 items", "ID embeddings", "Content-based", "Hybrid"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("demo-data")
    environment = {**subprocess_environment(), "TFRS_COURSE_DATA_DIR": str(data_dir)}
    environment.pop("TFRS_COURSE_DATA_SOURCE", None)
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "tfrs-course"), "demo"],
        capture_output=True, text=True, env=environment, check=False, timeout=1800,
    )  # fmt: skip
    print(completed.stdout)
    return completed, data_dir


@pytest.mark.slow
def test_demo_runs_every_lesson_and_prints_the_table(demo):
    completed, _ = demo
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "Data: the synthetic twin" in completed.stdout
    for lesson in lesson_names():
        assert lesson in completed.stdout.split("Lesson run times:")[1]
    table = completed.stdout.split("Results (synthetic data)")[1]
    assert records.PROTOCOL in table
    for approach in (POPULARITY, ID_MODEL, CONTENT, HYBRID):
        assert approach in table


@pytest.mark.slow
def test_every_claim_the_lessons_make_holds_on_the_default_twin(demo):
    completed, _ = demo
    assert "NOT SHOWN" not in completed.stderr, completed.stderr[-3000:]
    held, _, total = completed.stdout.split("Claims: ")[1].split(" held")[0].partition(" of ")
    assert int(total) >= 20 and held == total, completed.stdout[-2000:]


@pytest.mark.slow
def test_test_accuracy_orders_popularity_ids_content_hybrid(demo):
    _, data_dir = demo
    table = records.comparison_table(data_dir)
    top_100 = table["top-100"]
    assert top_100[POPULARITY] < top_100[ID_MODEL] < top_100[CONTENT] < top_100[HYBRID], top_100.to_dict()


@pytest.mark.slow
def test_id_embeddings_memorise(demo):
    _, data_dir = demo
    row = records.comparison_table(data_dir).loc[ID_MODEL]
    assert row["train top-100"] >= 5 * row["top-100"], row.to_dict()


@pytest.mark.slow
def test_every_lesson_records_its_metrics_where_the_demo_said(demo):
    _, data_dir = demo
    recorded = records.load_results(data_dir)
    assert sorted(recorded) == lesson_names()
    for lesson, record in recorded.items():
        for approach, splits in record["approaches"].items():
            test = [splits["test"][str(k)] for k in records.KS]
            assert test == sorted(test) and 0.0 <= test[0] and test[-1] < 1.0, (lesson, approach, test)


@pytest.mark.slow
def test_every_approach_says_which_candidates_its_lists_come_from(demo):
    _, data_dir = demo
    table = records.comparison_table(data_dir)
    assert (table["candidates"].str.len() > 0).all(), table["candidates"].to_dict()


# --- the claim machinery, without running the lessons -------------------------------


def _executed(*verdicts: bool) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("claim(...)")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": "..."},
            metadata={claims.METADATA_KEY: {"statement": f"statement {number}", "holds": holds, "evidence": "0.1"}},
        )
        for number, holds in enumerate(verdicts)
    ]
    notebook.cells.append(cell)
    return notebook


def test_a_false_claim_is_reported_and_a_true_one_is_not(capsys):
    claims.claim("one is less than two", 1 < 2)
    claims.claim("two is less than one", 2 < 1, evidence="2 vs 1")
    printed = capsys.readouterr().out
    assert "Checked on this run: one is less than two" in printed
    assert "NOT SHOWN BY THIS RUN: two is less than one (2 vs 1)" in printed
    notebook = _executed(True, False, True)
    assert claims.summary(claims.claims_in(notebook)) == (2, 3)
    assert claims.failed_claims(notebook) == ["statement 1 (0.1)"]


def test_the_demo_fails_when_a_lesson_claim_does_not_hold(monkeypatch, tmp_path, capsys):
    class Run:
        def __init__(self, notebook):
            self.notebook, self.seconds = notebook, 1.0

    runs = {"01_first": Run(_executed(True)), "02_second": Run(_executed(True, False))}
    monkeypatch.setenv("TFRS_COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(demo_module, "solution_notebook", lambda lesson: lesson)
    monkeypatch.setattr(demo_module, "execute_notebook", lambda lesson, output_path: runs[lesson])

    class Data(str):
        source = "stand-in"

    monkeypatch.setattr(demo_module, "load_babyshop", lambda: Data("Data: a stand-in"))
    assert demo_module.main(["01_first"]) == 0
    assert demo_module.main(["01_first", "02_second"]) == 1
    captured = capsys.readouterr()
    assert "Claims: 2 of 3 held" in captured.out
    assert "NOT SHOWN in 02_second: statement 1 (0.1)" in captured.err
