"""Class-scale grading on schedulers: `grade --shard auto` under Slurm job arrays and Kubernetes indexed Jobs.

The shipped scripts in deploy/ run here as local processes with the variables each
scheduler sets, and their merged grades.csv must equal one unsharded run's.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from tfrs_course import layout
from tfrs_course.cli import SHARD_COUNT_VARIABLE, shard_from_scheduler
from tfrs_course.notebooks import solution_source, student_copy_with_answers

REPO = Path(__file__).resolve().parents[1]
LESSON = "01_baseline_metrics"
EXERCISES = ("select_top_users", "most_popular_items", "top_k_accuracy")
TFRS_COURSE = str(Path(sys.executable).parent / "tfrs-course")
WRONG_TOP_USERS = (layout.lesson("01_baseline_metrics").fixtures / "top_users_no_tie_break.py").read_text()


@pytest.mark.parametrize(
    ("environ", "shard"),
    [
        ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, (1, 4)),
        ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"}, (4, 4)),
        ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"}, (3, 3)),
        ({"JOB_COMPLETION_INDEX": "0", SHARD_COUNT_VARIABLE: "2"}, (1, 2)),
        ({"JOB_COMPLETION_INDEX": "1", SHARD_COUNT_VARIABLE: "2"}, (2, 2)),
    ],
)
def test_shard_from_scheduler_variables(environ, shard):
    assert shard_from_scheduler(environ) == shard


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "neither is set"),
        ({"JOB_COMPLETION_INDEX": "0"}, f"{SHARD_COUNT_VARIABLE} is not"),
        ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"}, "whole numbers"),
        # --array=0-6:2 gives ids 0, 2, 4, 6 and a count of 4: id 6 is out of range.
        ({"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, "without steps"),
    ],
)
def test_shard_auto_explains_what_is_missing(environ, message):
    with pytest.raises(ValueError, match=message):
        shard_from_scheduler(environ)


def test_the_kubernetes_manifest_tells_each_pod_the_jobs_size():
    job = yaml.safe_load((REPO / "deploy" / "kubernetes" / "grade-job.yaml").read_text())
    assert job["spec"]["completionMode"] == "Indexed"
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert int(env[SHARD_COUNT_VARIABLE]) == job["spec"]["completions"]
    assert "auto" in container["args"] and "/class/graded/part-$(JOB_COMPLETION_INDEX)" in container["args"]


def _class_of_students(submitted: Path) -> None:
    correct = {exercise: solution_source(LESSON, exercise) for exercise in EXERCISES}
    students = {
        "ada": correct,
        "ben": {**correct, "select_top_users": WRONG_TOP_USERS},
        "cy": {},  # handed in the lesson untouched
        "dee": correct,
        "eve": {"most_popular_items": correct["most_popular_items"]},
    }
    for student, answers in students.items():
        path = submitted / student / LESSON / f"{LESSON}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(student_copy_with_answers(LESSON, answers), path)


def _run_all(commands: list[tuple[list[str], dict]]) -> None:
    """Start every command at once, as a scheduler starts its tasks, and wait for all of them."""
    running = [
        subprocess.Popen(
            command, env={**os.environ, **extra}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for command, extra in commands
    ]
    for process, (command, _) in zip(running, commands, strict=True):
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, f"{command} failed:\n{output[-3000:]}"


@pytest.mark.slow
def test_sharded_runs_under_slurm_and_kubernetes_merge_to_the_unsharded_grades(tmp_path):
    submitted = tmp_path / "submitted"
    _class_of_students(submitted)
    _run_all([([TFRS_COURSE, "grade", str(submitted), "--out", str(tmp_path / "whole"), "--quiet"], {})])
    expected = (tmp_path / "whole" / "grades.csv").read_text()
    rows = {row["student_id"]: row for row in csv.DictReader(io.StringIO(expected))}
    assert sorted(rows) == ["ada", "ben", "cy", "dee", "eve"], expected
    assert rows["ada"]["total"] == rows["ada"]["max_score"] and rows["cy"]["total"] == "0", expected
    assert 0 < float(rows["ben"]["total"]) < float(rows["ben"]["max_score"]), expected

    # Slurm: the shipped batch scripts, as array tasks 1-2 (ids need not start at 0), then the merge.
    slurm = {"COURSE_DIR": str(REPO), "SUBMITTED": str(submitted), "GRADED": str(tmp_path / "slurm")}
    tasks = [
        {**slurm, "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "2"}
        for task in (1, 2)
    ]
    _run_all([(["bash", str(REPO / "deploy" / "slurm" / "grade.sbatch")], task) for task in tasks])
    parts = sorted((tmp_path / "slurm").glob("part-*/grades.csv"))
    assert [path.parent.name for path in parts] == ["part-1", "part-2"]
    assert all(path.read_text() != expected for path in parts), "a shard graded the whole class"
    _run_all([(["bash", str(REPO / "deploy" / "slurm" / "merge.sbatch")], slurm)])
    assert (tmp_path / "slurm" / "all" / "grades.csv").read_text() == expected

    # Kubernetes: the manifest's command for each index of a 3-pod indexed Job, then the merge's.
    job = yaml.safe_load((REPO / "deploy" / "kubernetes" / "grade-job.yaml").read_text())
    container = job["spec"]["template"]["spec"]["containers"][0]
    pods = []
    for index in range(3):
        args = [
            arg.replace("$(JOB_COMPLETION_INDEX)", str(index)).replace("/class", str(tmp_path / "class"))
            for arg in container["args"]
        ]
        args[1] = str(submitted)
        pods.append(([TFRS_COURSE, *args], {"JOB_COMPLETION_INDEX": str(index), SHARD_COUNT_VARIABLE: "3"}))
    _run_all(pods)
    merged = tmp_path / "class" / "graded"
    _run_all(
        [([TFRS_COURSE, "grade-merge", *map(str, sorted(merged.glob("part-*"))), "--out", str(merged / "all")], {})]
    )
    assert (merged / "all" / "grades.csv").read_text() == expected
