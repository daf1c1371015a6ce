"""The ``tfrs-course`` command: data, lessons, grading and the demo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import tfrs_course  # noqa: F401 - selects legacy Keras before anything imports TensorFlow


def _data_fetch(args: argparse.Namespace) -> int:
    from tfrs_course.data import download

    fetched = download.fetch_real_data(args.data_dir, args.base_url, timeout=args.timeout, retries=args.retries)
    for table, path in fetched.items():
        print(f"{table:>6}: {path} (verified)")
    return 0


def _data_synth(args: argparse.Namespace) -> int:
    from tfrs_course.data import synthetic
    from tfrs_course.paths import default_data_dir

    folder = synthetic.ensure_twin(args.data_dir or default_data_dir(), size=args.size, seed=args.seed)
    print(f"Synthetic twin (size {args.size!r}, seed {args.seed}) is in {folder}")
    return 0


def _data_info(args: argparse.Namespace) -> int:
    from tfrs_course.data import download, synthetic
    from tfrs_course.data.loader import SOURCE_VARIABLE, real_cache_is_valid
    from tfrs_course.paths import default_data_dir

    data_dir = Path(args.data_dir or default_data_dir())
    print(f"Data folder: {data_dir}")
    print(f"Real Babyshop files in {download.real_cache_dir(data_dir)}:")
    for table, state in download.real_cache_status(data_dir).items():
        print(f"  {table:>6}: {state}")
    twins = sorted(path.name for path in (data_dir / "synthetic").glob("*") if path.is_dir())
    print(f"Synthetic twins in {data_dir / 'synthetic'}: {', '.join(twins) if twins else 'none built yet'}")
    print(f"Available twin sizes: {', '.join(synthetic.SIZES)}")
    chosen = "real" if real_cache_is_valid(data_dir) else "synthetic"
    print(f"load_babyshop() with source='auto' uses: {chosen} (override with ${SOURCE_VARIABLE})")
    return 0


def _lessons_build(args: argparse.Namespace) -> int:
    from tfrs_course import lessons

    for path in lessons.build(args.lessons or None):
        print(f"wrote {path}")
    return 0


def _lessons_check(args: argparse.Namespace) -> int:
    from tfrs_course import lessons

    problems = lessons.check(args.lessons or None)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("lessons/ is current and contains no solutions or hidden tests.")
    return 1 if problems else 0


def _lessons_set_repository(args: argparse.Namespace) -> int:
    from tfrs_course import lessons

    repository = lessons.set_repository(args.url, args.branch)
    print(
        f"Colab badges and set-up cells now point at {repository.url} (branch {repository.branch}); "
        "lessons rebuilt. Commit tfrs_course/repository.toml, solutions/ and lessons/."
    )
    return 0


def _grade(args: argparse.Namespace) -> int:
    from tfrs_course.grading import batch
    from tfrs_course.grading.isolated import Limits

    if args.shard == "auto":
        args.shard = shard_from_scheduler(os.environ)
        print(f"Grading shard {args.shard[0]}/{args.shard[1]} (from the scheduler's variables)", file=sys.stderr)
    limits = Limits(call_seconds=args.call_timeout, submission_seconds=args.submission_timeout)
    summary = batch.grade_folder(
        args.submitted, args.out, lessons=args.lesson or None, jobs=args.jobs, shard=args.shard,
        limits=limits, progress=not args.quiet,
    )  # fmt: skip
    print(summary)
    return 0


def _grade_merge(args: argparse.Namespace) -> int:
    from tfrs_course.grading import batch

    print(batch.merge_outputs(args.parts, args.out))
    return 0


# Kubernetes gives an indexed Job's pods their index but not the Job's size: the
# manifest in deploy/ sets this to the Job's `completions`.
SHARD_COUNT_VARIABLE = "TFRS_COURSE_SHARD_COUNT"


def shard_from_scheduler(environ: Mapping[str, str]) -> tuple[int, int]:
    """``(i, n)``, 1-based, from a Slurm job array's or a Kubernetes indexed Job's variables.

    Slurm: ``SLURM_ARRAY_TASK_ID`` counted from ``SLURM_ARRAY_TASK_MIN`` (0 if unset),
    out of ``SLURM_ARRAY_TASK_COUNT``. Kubernetes: ``JOB_COMPLETION_INDEX`` (0-based),
    out of ``$TFRS_COURSE_SHARD_COUNT``.

    Raises:
        ValueError: neither scheduler's variables are set, or they are not whole numbers in range.
    """
    if "SLURM_ARRAY_TASK_ID" in environ:
        names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")
        first = environ.get("SLURM_ARRAY_TASK_MIN", "0")
    elif "JOB_COMPLETION_INDEX" in environ:
        names = ("JOB_COMPLETION_INDEX", SHARD_COUNT_VARIABLE)
        first = "0"
    else:
        raise ValueError(
            "--shard auto needs a Slurm job array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT) or a "
            f"Kubernetes indexed Job (JOB_COMPLETION_INDEX, {SHARD_COUNT_VARIABLE}); neither is set"
        )
    try:
        task, count, first_task = int(environ[names[0]]), int(environ[names[1]]), int(first)
    except KeyError as error:
        raise ValueError(f"--shard auto: {names[0]} is set but {error.args[0]} is not") from error
    except ValueError as error:
        raise ValueError(f"--shard auto: {names[0]} and {names[1]} must be whole numbers ({error})") from error
    index = task - first_task + 1
    if not 1 <= index <= count:
        raise ValueError(
            f"--shard auto: task {task} is not one of {count} consecutive tasks from {first_task} "
            "(give the job array a range without steps, e.g. --array=0-3)"
        )
    return index, count


def _shard(text: str) -> tuple[int, int] | str:
    if text == "auto":
        return text
    index, _, count = text.partition("/")
    try:
        return int(index), int(count)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected i/n (e.g. 1/4) or auto, got {text!r}") from error


def _seconds(text: str) -> float:
    """A time limit: a number of seconds above 0 (0, a negative number or nan would fail every call)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _gradescope(args: argparse.Namespace) -> int:
    from tfrs_course import gradescope

    bundle = gradescope.build_bundle(args.lesson, args.out)
    print(f"wrote {bundle}: upload it as the autograder of a Gradescope programming assignment")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tfrs_course import demo

    return demo.main(lessons=args.lessons or None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfrs-course", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="download, build or inspect the Babyshop data")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    fetch = data_commands.add_parser("fetch", help="download and verify the real Babyshop files")
    fetch.add_argument("--base-url", help="where the four CSV files are served (default: the original repository)")
    fetch.add_argument("--timeout", type=float, default=30.0, help="seconds without data before a try fails")
    fetch.add_argument("--retries", type=int, default=3, help="tries per file")
    synth = data_commands.add_parser("synth", help="build the offline synthetic twin")
    synth.add_argument("--size", default="default", help="twin size (see `data info`)")
    synth.add_argument("--seed", type=int, default=0)
    info = data_commands.add_parser("info", help="what is cached, its source and verification state")
    for sub in (fetch, synth, info):
        sub.add_argument("--data-dir", type=Path, default=None, help="cache folder (default: data/)")
    fetch.set_defaults(handler=_data_fetch)
    synth.set_defaults(handler=_data_synth)
    info.set_defaults(handler=_data_info)

    lessons = commands.add_parser("lessons", help="build or check the student notebooks")
    lesson_commands = lessons.add_subparsers(dest="lessons_command", required=True)
    build = lesson_commands.add_parser("build", help="regenerate solutions/*.ipynb and lessons/ from the scripts")
    check = lesson_commands.add_parser("check", help="fail if lessons/ is stale or leaks solutions")
    for sub in (build, check):
        sub.add_argument("lessons", nargs="*", help="lesson folder names (default: all)")
    build.set_defaults(handler=_lessons_build)
    check.set_defaults(handler=_lessons_check)
    repository = lesson_commands.add_parser(
        "set-repository", help="point the Colab badges and set-up cells at a GitHub repository; rebuild lessons"
    )
    repository.add_argument("url", nargs="?", help="GitHub address, https or ssh (default: the origin remote)")
    repository.add_argument("--branch", help="the branch Colab opens (default: keep the current one)")
    repository.set_defaults(handler=_lessons_set_repository)

    grade = commands.add_parser("grade", help="grade SUBMITTED/<student>/<lesson>/<notebook>.ipynb into OUT")
    grade.add_argument("submitted", type=Path, help="folder of submissions, in nbgrader's layout")
    grade.add_argument("--out", type=Path, required=True, help="where grades.csv and feedback go")
    grade.add_argument("--lesson", action="append", help="grade only this lesson (repeatable)")
    grade.add_argument("--jobs", type=int, default=1, help="grade this many submissions at once")
    grade.add_argument(
        "--shard",
        type=_shard,
        default=None,
        help="grade only part i of n, e.g. 2/4; `auto` takes i and n from a Slurm job array "
        "or a Kubernetes indexed Job (see deploy/)",
    )
    grade.add_argument("--call-timeout", type=_seconds, default=120.0, help="seconds allowed per test's call")
    grade.add_argument("--submission-timeout", type=_seconds, default=1200.0, help="seconds allowed per submission")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    grade.set_defaults(handler=_grade)

    merge = commands.add_parser("grade-merge", help="join the outputs of several --shard runs")
    merge.add_argument("parts", nargs="+", type=Path, help="the OUT folders of the shards")
    merge.add_argument("--out", type=Path, required=True)
    merge.set_defaults(handler=_grade_merge)

    bundle = commands.add_parser("gradescope", help="build a Gradescope autograder.zip for one lesson")
    bundle.add_argument("lesson", help="the lesson's folder name, e.g. 01_baseline_metrics")
    # A string, not a Path: a trailing slash says "a folder", and Path would drop it.
    bundle.add_argument(
        "--out", default="autograder.zip", help="the zip to write, or a folder to write <lesson>-autograder.zip into"
    )
    bundle.set_defaults(handler=_gradescope)

    demo = commands.add_parser("demo", help="run the course's lessons end to end and print the results")
    demo.add_argument("lessons", nargs="*", help="lesson folder names (default: all)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt as interrupt:
        # Ctrl-C: one line, no traceback, and the shell's exit status for SIGINT.
        print(f"tfrs-course: {interrupt or 'interrupted'}", file=sys.stderr)
        return 130
    except (OSError, ValueError, RuntimeError) as error:
        # Bad input (a missing folder, a failed download, a malformed file) is
        # reported in one line that names it; a bug still shows its traceback.
        print(f"tfrs-course: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
