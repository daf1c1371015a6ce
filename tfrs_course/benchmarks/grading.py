"""Batch grading speed: ``tfrs-course grade --jobs 2`` against ``nbgrader autograde``.

Run ``python -m tfrs_course.benchmarks grading [N]``. It builds N lesson-1
submissions (a mix of right and wrong answers), grades them both ways in a
scratch folder, checks that the scores are identical, and prints seconds, the
ratio, and the per-submission latency of the batch grader.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tfrs_course import paths
from tfrs_course.data.synthetic import ensure_twin
from tfrs_course.environment import subprocess_environment
from tfrs_course.grading.batch import Submission as BatchSubmission
from tfrs_course.grading.batch import grade_submission
from tfrs_course.grading.isolated import Limits
from tfrs_course.lessons import solution_source, student_copy_with_answers, write_notebook

LESSON = "01_baseline_metrics"
EXERCISES = ("select_top_users", "most_popular_items", "top_k_accuracy")
# A wrong answer (ascending popularity) for every third student, so scores differ.
WRONG_POPULARITY = '''def most_popular_items(train, k):
    counts = train.groupby("item_no").size().rename("count").reset_index()
    return counts.sort_values(["count", "item_no"])["item_no"].head(k).tolist()
'''


def build_class(submitted: Path, size: int) -> None:
    """Write ``size`` lesson-1 submissions in nbgrader's layout."""
    for index in range(size):
        answers = {exercise: solution_source(LESSON, exercise) for exercise in EXERCISES}
        if index % 3 == 2:
            answers["most_popular_items"] = WRONG_POPULARITY
        notebook = student_copy_with_answers(LESSON, answers)
        write_notebook(notebook, submitted / f"student{index:03d}" / LESSON / f"{LESSON}.ipynb")


def _run(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=subprocess_environment(), check=False)  # noqa: S603
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[2:] if argv is None else argv
    size = int(argv[0]) if argv else 12
    ensure_twin(paths.default_data_dir())  # nbgrader runs the lessons' data cells too
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="tfrs-course-bench-") as scratch:
        root = Path(scratch)
        build_class(root / "submitted", size)

        ours = _run([str(bin_dir / "tfrs-course"), "grade", "submitted", "--out", "graded", "--jobs", "2", "--quiet"], root)
        with open(root / "graded" / "grades.csv", newline="") as stream:
            our_scores = {row["student_id"]: float(row["total"]) for row in csv.DictReader(stream)}

        shutil.copytree(paths.solutions_dir() / LESSON, root / "solutions" / LESSON)
        shutil.copy(paths.course_root() / "nbgrader_config.py", root)
        nbgrader = [sys.executable, "-m", "nbgrader"]
        _run([*nbgrader, "generate_assignment", LESSON, "--force"], root)
        theirs = _run([*nbgrader, "autograde", LESSON, "--force"], root)
        _run([*nbgrader, "export", "--to", "nbgrader_grades.csv"], root)
        with open(root / "nbgrader_grades.csv", newline="") as stream:
            their_scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(stream)}

        latencies = []
        for index in range(min(size, 5)):
            notebook = root / "submitted" / f"student{index:03d}" / LESSON / f"{LESSON}.ipynb"
            started = time.perf_counter()
            grade_submission(BatchSubmission(f"student{index:03d}", LESSON, notebook), Limits())
            latencies.append(time.perf_counter() - started)

    same = our_scores == their_scores
    print(f"Grading {size} lesson-1 submissions on this machine:")
    print(f"  tfrs-course grade --jobs 2 : {ours:7.1f} s  ({ours / size:.2f} s per submission)")
    print(f"  nbgrader autograde         : {theirs:7.1f} s  ({theirs / size:.2f} s per submission)")
    print(f"  speed-up                   : {theirs / ours:7.1f}x")
    print(f"  identical scores           : {'yes' if same else 'NO'}")
    print(
        f"  one submission, sandboxed worker, warm grader: median "
        f"{sorted(latencies)[len(latencies) // 2]:.2f} s (min {min(latencies):.2f}, max {max(latencies):.2f})"
    )
    if not same:
        differing = sorted(k for k in our_scores.keys() | their_scores.keys() if our_scores.get(k) != their_scores.get(k))
        print(f"  differing students: {differing}")
