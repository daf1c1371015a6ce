"""Where one submission's grading time goes: ``python -m tfrs_course.benchmarks grading-breakdown``.

For each lesson (default: 1, 3 and 5) a fresh process grades the solved
submission twice with :func:`tfrs_course.grading.batch.grade_submission` under
``cProfile``: the first time as the first submission a grading process sees
(cold), the second as every later one (warm). The profile is cut into:

- worker start and load: starting the sandboxed worker, which starts Python,
  imports the kit and runs the lesson's setup cell (TensorFlow's import) and the
  student's answer cells;
- student calls: waiting for the worker to answer the tests' calls;
- reference: the master notebook loaded in the grader and the reference
  solution's calls (the drivers run there too, on the same inputs);
- serialisation: plain-data encoding and decoding of arguments and results;
- listing tests, reading notebooks, and pytest with the rest.

Then it times what a worker pays at start, each in a fresh interpreter, and
what starting a worker would cost if a template process that has imported
TensorFlow forked it instead.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tfrs_course.environment import subprocess_environment

LESSONS = ("01_baseline_metrics", "03_id_embeddings", "05_hybrid")
# (module file, function) -> the profile's cumulative seconds for it.
PARTS = {
    "load": ("grading/isolated.py", "_ensure_loaded"),
    "requests": ("grading/isolated.py", "_request"),
    "reference_load": ("grading/runner.py", "reference_code"),
    "reference_run": ("grading/submission.py", "run"),
    "reference_call": ("grading/submission.py", "call"),
    "encode": ("grading/boundary.py", "encode"),
    "decode": ("grading/boundary.py", "decode"),
    "list_tests": ("grading/batch.py", "_lesson_points"),
    "read_notebook": ("grading/notebook.py", "read_notebook"),
    "build_program": ("grading/notebook.py", "build_program"),
    "run_tests": ("grading/runner.py", "run_tests"),
}
# What a worker imports before the student's code runs, timed in fresh interpreters.
IMPORTS = {
    "Python alone": "pass",
    "import tfrs_course": "import tfrs_course",
    "+ pandas": "import tfrs_course, pandas",
    "+ TensorFlow and TFRS": "import tfrs_course, pandas, tensorflow, tensorflow_recommenders",
}


def _cumulative(stats: pstats.Stats, file_end: str, function: str) -> float:
    return sum(
        row[3]
        for (file_name, _, name), row in stats.stats.items()  # type: ignore[attr-defined]
        if name == function and file_name.endswith(file_end)
    )


def profile_lesson(lesson: str) -> list[dict[str, float]]:
    """Grade the lesson's solved submission twice in this process; the parts of each, in seconds."""
    import tfrs_course  # noqa: F401 - legacy Keras before the reference imports TensorFlow
    from tfrs_course.grading.batch import SubmittedFile, grade_submission
    from tfrs_course.grading.isolated import Limits
    from tfrs_course.grading.validation import solved_copy
    from tfrs_course.lessons import write_notebook

    with tempfile.TemporaryDirectory(prefix="tfrs-course-breakdown-") as scratch:
        notebook = Path(scratch) / "submitted" / "solved" / lesson / f"{lesson}.ipynb"
        write_notebook(solved_copy(lesson), notebook)
        figures = []
        for _ in range(2):
            profile = cProfile.Profile()
            started = time.perf_counter()
            profile.enable()
            grade = grade_submission(SubmittedFile("solved", lesson, notebook), Limits())
            profile.disable()
            total = time.perf_counter() - started
            stats = pstats.Stats(profile)
            parts = {name: _cumulative(stats, *where) for name, where in PARTS.items()}
            parts["total"] = total
            parts["score"] = grade.total
            figures.append(parts)
    return figures


def _row(parts: dict[str, float]) -> dict[str, float]:
    """The profile's parts as disjoint shares of the total."""
    reference = parts["reference_load"] + parts["reference_run"] + parts["reference_call"]
    calls = parts["requests"] - parts["load"]
    serialisation = parts["encode"] + parts["decode"]
    reading = parts["read_notebook"] + parts["build_program"]
    pytest_rest = parts["total"] - parts["load"] - calls - reference - parts["list_tests"] - reading
    return {
        "total": parts["total"],
        "worker start+load": parts["load"],
        "student calls": calls,
        "reference": reference,
        "list tests": parts["list_tests"],
        "read notebooks": reading,
        "pytest+rest": pytest_rest,
        "(serialisation)": serialisation,
    }


def _fresh_import_seconds(statement: str, repeats: int = 2) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", statement], env=subprocess_environment(), check=True)  # noqa: S603
        times.append(time.perf_counter() - started)
    return min(times)


def fork_from_template(repeats: int = 3) -> tuple[float, float]:
    """Seconds for a child forked from a process that imported TensorFlow to run a Keras layer.

    Returns:
        ``(child seconds, fresh-interpreter seconds)`` for the same work: forking,
        then an embedding lookup and a matrix product; against starting a new
        interpreter that imports everything first.
    """
    work = (
        "import tensorflow as tf\n"
        "tf.keras.layers.Embedding(10, 4)(tf.constant([1, 2]))\n"
        "tf.linalg.matmul(tf.ones((8, 4)), tf.ones((4, 8)))\n"
    )
    template = (
        "import os, sys, time\n"
        "import tfrs_course, pandas, tensorflow, tensorflow_recommenders\n"
        f"repeats = {repeats}\n"
        "times = []\n"
        "for _ in range(repeats):\n"
        "    started = time.perf_counter()\n"
        "    child = os.fork()\n"
        "    if child == 0:\n"
        f"        exec({work!r})\n"
        "        os._exit(0)\n"
        "    _, status = os.waitpid(child, 0)\n"
        "    assert status == 0, status\n"
        "    times.append(time.perf_counter() - started)\n"
        "print(min(times))\n"
    )
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "-I", "-c", template], env=subprocess_environment(), capture_output=True, text=True, check=True
    )
    forked = float(completed.stdout.strip().splitlines()[-1])
    fresh = _fresh_import_seconds("import tfrs_course, pandas, tensorflow_recommenders\n" + work, repeats=1)
    return forked, fresh


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[2:] if argv is None else argv
    lessons = argv or list(LESSONS)
    print(f"One solved submission, graded in a fresh grading process; load average {os.getloadavg()[0]:.1f}")
    columns = ["total", "worker start+load", "student calls", "reference", "list tests", "read notebooks", "pytest+rest", "(serialisation)"]  # fmt: skip
    print(f"{'lesson':<22}{'':<6}" + "".join(f"{name:>19}" for name in columns))
    for lesson in lessons:
        completed = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "tfrs_course.benchmarks.grading_breakdown", "--child", lesson],
            env=subprocess_environment(), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if completed.returncode != 0:
            print(f"{lesson}: the profile failed:\n{completed.stderr[-2000:]}")
            continue
        for label, parts in zip(("cold", "warm"), json.loads(completed.stdout.strip().splitlines()[-1]), strict=True):
            row = _row(parts)
            print(f"{lesson:<22}{label:<6}" + "".join(f"{row[name]:>19.2f}" for name in columns), flush=True)
    print(f"What a worker imports, each in a fresh interpreter (load average {os.getloadavg()[0]:.1f}):")
    for label, statement in IMPORTS.items():
        print(f"  {label:<28}{_fresh_import_seconds(statement):6.2f} s", flush=True)
    forked, fresh = fork_from_template()
    print(
        f"A Keras layer and a matrix product: in a child forked from a template that imported TensorFlow "
        f"{forked:.2f} s; in a fresh interpreter {fresh:.2f} s (load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(profile_lesson(sys.argv[2])))
    else:
        main(sys.argv[1:])
