"""The ``tfrs-course`` command: data, lessons, grading and the demo."""

from __future__ import annotations

import argparse
import sys
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


def _grade(args: argparse.Namespace) -> int:
    from tfrs_course.grading import batch
    from tfrs_course.grading.isolated import Limits

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


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        return int(index), int(count)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected i/n, e.g. 1/4, got {text!r}") from error


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

    grade = commands.add_parser(
        "grade", help="grade SUBMITTED/<student>/<lesson>/<notebook>.ipynb into OUT"
    )
    grade.add_argument("submitted", type=Path, help="folder of submissions, in nbgrader's layout")
    grade.add_argument("--out", type=Path, required=True, help="where grades.csv and feedback go")
    grade.add_argument("--lesson", action="append", help="grade only this lesson (repeatable)")
    grade.add_argument("--jobs", type=int, default=1, help="grade this many submissions at once")
    grade.add_argument("--shard", type=_shard, default=None, help="grade only part i of n, e.g. 2/4")
    grade.add_argument("--call-timeout", type=float, default=120.0, help="seconds allowed per test's call")
    grade.add_argument("--submission-timeout", type=float, default=1200.0, help="seconds allowed per submission")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    grade.set_defaults(handler=_grade)

    merge = commands.add_parser("grade-merge", help="join the outputs of several --shard runs")
    merge.add_argument("parts", nargs="+", type=Path, help="the OUT folders of the shards")
    merge.add_argument("--out", type=Path, required=True)
    merge.set_defaults(handler=_grade_merge)

    demo = commands.add_parser("demo", help="run the course's lessons end to end and print the results")
    demo.add_argument("lessons", nargs="*", help="lesson folder names (default: all)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (OSError, ValueError, RuntimeError) as error:
        # Bad input (a missing folder, a failed download, a malformed file) is
        # reported in one line that names it; a bug still shows its traceback.
        print(f"tfrs-course: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
