"""The course's claims, checked on what the lessons record when `tfrs-course demo` runs them.

The demo executes every solution notebook on the default synthetic twin, in a
scratch data folder, and prints the comparison table; the lessons' records are
then read back and the claims the lessons make are checked on them.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tfrs_course import records
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
    for approach in (POPULARITY, ID_MODEL, CONTENT, HYBRID):
        assert approach in table


@pytest.mark.slow
def test_test_accuracy_orders_popularity_ids_content_hybrid(demo):
    _, data_dir = demo
    table = records.comparison_table(data_dir)
    top_100 = table["top-100"]
    assert top_100[POPULARITY] < top_100[ID_MODEL] < top_100[CONTENT] < top_100[HYBRID], top_100.to_dict()


@pytest.mark.slow
def test_id_embeddings_overfit(demo):
    _, data_dir = demo
    row = records.comparison_table(data_dir).loc[ID_MODEL]
    assert row["train top-100"] > 3 * row["top-100"] and row["train top-100"] - row["top-100"] > 0.3, row.to_dict()


@pytest.mark.slow
def test_every_lesson_records_its_metrics_where_the_demo_said(demo):
    _, data_dir = demo
    recorded = records.load_results(data_dir)
    assert sorted(recorded) == lesson_names()
    for lesson, record in recorded.items():
        for approach, splits in record["approaches"].items():
            test = [splits["test"][str(k)] for k in records.KS]
            assert test == sorted(test) and 0.0 <= test[0] and test[-1] < 1.0, (lesson, approach, test)
