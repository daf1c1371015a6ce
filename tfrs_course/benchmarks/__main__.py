"""Run one benchmark by name: ``python -m tfrs_course.benchmarks data``."""

from __future__ import annotations

import importlib
import sys

# Benchmark name -> module with a main(); imported only when chosen, so one
# benchmark's heavy imports (TensorFlow, say) never slow down another.
BENCHMARKS: dict[str, str] = {
    "data": "tfrs_course.benchmarks.data",
    "grading": "tfrs_course.benchmarks.grading",
    "grading-breakdown": "tfrs_course.benchmarks.grading_breakdown",
    "serving": "tfrs_course.benchmarks.serving",
    "lessons": "tfrs_course.benchmarks.lessons",
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the benchmark named in ``argv[1]``.

    Args:
        argv: the command line, ``sys.argv`` if not given.

    Returns:
        The process exit code: 0 on success, 2 for an unknown or missing name.
    """
    argv = sys.argv if argv is None else argv
    if len(argv) < 2 or argv[1] not in BENCHMARKS:
        print(f"usage: python -m tfrs_course.benchmarks {{{','.join(BENCHMARKS)}}}", file=sys.stderr)
        return 2
    importlib.import_module(BENCHMARKS[argv[1]]).main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
